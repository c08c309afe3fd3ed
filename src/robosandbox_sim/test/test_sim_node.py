"""The sim node in its own process, checked through ROS only."""

import math
from pathlib import Path
import re

from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Duration
from control_msgs.action import FollowJointTrajectory
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
import yaml
import rclpy
from rclpy.action import ActionClient
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import SetBool
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.arm_interface import time_msg, to_seconds
from robosandbox_control import clients
from robosandbox_control.clients import trajectory_msg
from robosandbox_control.qos import LATCHED_QOS, TF_QOS
from robosandbox_control.robot_state import OPTICAL_FROM_GL
from robosandbox_control.spinning import spin_for, spin_until, wait_future
from robosandbox_description.robot import load_robot
from robosandbox_msgs.msg import TaskStatus
from robosandbox_msgs.srv import ResetSim, StepSim

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

JOINTS = list(load_robot('so101').joints)
Result = FollowJointTrajectory.Result


@pytest.fixture(scope='module')
def sim_process():
    sim = NodeProcess('robosandbox_sim', 'sim_node', 'camera_width:=160', 'camera_height:=120',
                      'cameras:=[front, wrist]')
    yield sim.output
    sim.close()
    assert sim.returncode == 0, sim.output.text()


@pytest.fixture(scope='module')
def client(sim_process):
    rclpy.init()
    node = rclpy.create_node('sim_test_client')
    node.msgs = {'joints': [], 'clock': [], 'status': [], 'image': [], 'info': []}
    node.create_subscription(JointState, 'joint_states', node.msgs['joints'].append, 50)
    node.create_subscription(Clock, '/clock', node.msgs['clock'].append, 50)
    node.create_subscription(TaskStatus, 'task_status', node.msgs['status'].append, 10)
    node.create_subscription(Image, 'cameras/front/image_raw', node.msgs['image'].append,
                             qos_profile_sensor_data)
    node.create_subscription(
        CameraInfo, 'cameras/front/camera_info', node.msgs['info'].append,
        QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL))
    node.action = ActionClient(node, FollowJointTrajectory, 'follow_joint_trajectory')
    node.reset = node.create_client(ResetSim, 'sim/reset')
    node.pause = node.create_client(SetBool, 'sim/pause')
    node.step = node.create_client(StepSim, 'sim/step')
    node.traj_pub = node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
    assert spin_until(node, lambda: node.msgs['joints'] and node.msgs['image'], 60.0), \
        sim_process.text()
    yield node
    node.destroy_node()
    rclpy.shutdown()


def latest_positions(node):
    msg = node.msgs['joints'][-1]
    return dict(zip(msg.name, msg.position))


def run_goal(node, names, points):
    goal = FollowJointTrajectory.Goal(trajectory=trajectory_msg(names, points))
    return clients.run_goal(node, node.action, goal, 30.0)


def test_joint_states_names_units_and_rate(client):
    client.msgs['joints'].clear()
    spin_for(client, 1.5)
    msgs = list(client.msgs['joints'])
    assert msgs[-1].name == JOINTS
    stamps = np.array([to_seconds(m.header.stamp) for m in msgs])
    # 100 Hz of sim time, every message, no gaps.
    np.testing.assert_allclose(np.diff(stamps), 0.01, atol=1e-6)
    assert len(msgs) >= 100
    position = np.array(msgs[-1].position)
    assert np.all(np.abs(position) < math.pi)  # radians
    assert len(msgs[-1].velocity) == 6 and len(msgs[-1].effort) == 6


def test_clock_runs_at_real_time_at_its_rate(client):
    client.msgs['clock'].clear()
    spin_for(client, 1.0)
    times = np.array([to_seconds(c.clock) for c in client.msgs['clock']])
    assert np.all(np.diff(times) > 0)
    assert np.median(np.diff(times)) == pytest.approx(0.01, abs=1e-6)     # clock_rate: 100 Hz
    assert 0.8 <= times[-1] - times[0] <= 1.2


def test_diagnostics_and_joint_states_share_the_sim_clock(client):
    """One clock per backend: diagnostics carry sim time, as joint_states do."""
    diagnostics = []
    client.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    assert spin_until(client, lambda: diagnostics, 5.0)
    diag = to_seconds(diagnostics[-1].header.stamp)
    joints = to_seconds(client.msgs['joints'][-1].header.stamp)
    assert abs(diag - joints) < 2.0          # sim time; wall-clock time would be ~1.7e9 s away
    # The delivered camera rates, per second of sim time: every frame of the 30 Hz front
    # camera (subscribed here) rendered and sent; the wrist camera, unread, not rendered.
    values = {v.key: v.value for v in diagnostics[-1].status[0].values}
    assert 27.0 <= float(values['camera_front_hz']) <= 33.0, values
    assert float(values['camera_wrist_hz']) == 0.0 and 'camera_front_hz_wall' in values


def test_camera_image_and_info(client):
    image = client.msgs['image'][-1]
    assert (image.width, image.height, image.encoding, image.step) == (160, 120, 'rgb8', 480)
    assert len(image.data) == 160 * 120 * 3
    assert image.header.frame_id == 'front_optical_frame'
    assert spin_until(client, lambda: client.msgs['info'], 5.0)
    info = client.msgs['info'][-1]
    fy = 60 / math.tan(math.radians(22.5))  # front camera fovy 45 degrees
    assert info.k[4] == pytest.approx(fy) and info.k[0] == pytest.approx(fy)
    assert (info.k[2], info.k[5]) == (79.5, 59.5)     # (W-1)/2, (H-1)/2: pixel centres at integers
    pixels = np.frombuffer(image.data, np.uint8).reshape(120, 160, 3)
    assert pixels.std() > 5


def _matrix(transform) -> np.ndarray:
    t, q = transform.translation, transform.rotation
    x, y, z, w = q.x, q.y, q.z, q.w
    m = np.eye(4)
    m[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                 [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                 [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    m[:3, 3] = t.x, t.y, t.z
    return m


def test_tf_puts_the_cube_where_the_front_camera_sees_it(client):
    """REP-103/105 end to end: world -> front_optical_frame (/tf_static) and
    world -> cube (/tf), projected through camera_info, land on the red cube in
    the image."""
    statics, tfs = [], []
    client.create_subscription(TFMessage, '/tf_static', statics.append, LATCHED_QOS)
    client.create_subscription(TFMessage, '/tf', tfs.append, TF_QOS)
    assert spin_until(client, lambda: statics and tfs and client.msgs['info'], 10.0)
    static = {t.child_frame_id: t for t in statics[-1].transforms}
    assert static['base_link'].header.frame_id == 'world'
    assert static['front_optical_frame'].header.frame_id == 'world'
    assert static['wrist_optical_frame'].header.frame_id == 'gripper_link'
    # The description's link mount (what the hardware node publishes) is where MuJoCo puts it.
    mount = next(c for c in load_robot('so101').cameras if c.name == 'wrist')
    np.testing.assert_allclose(_matrix(static['wrist_optical_frame'].transform),
                               mount.pose() @ OPTICAL_FROM_GL, atol=1e-5)
    cube = next(t for t in tfs[-1].transforms if t.child_frame_id == 'cube')
    assert cube.header.frame_id == 'world'
    camera = _matrix(static['front_optical_frame'].transform)
    x, y, z = (np.linalg.inv(camera) @ _matrix(cube.transform)[:, 3])[:3]
    assert z > 0.05                                   # in front of the camera: +z looks out
    k = client.msgs['info'][-1].k
    u, v = k[0] * x / z + k[2], k[4] * y / z + k[5]
    assert 0 <= u < 160 and 0 <= v < 120, (u, v)
    pixels = np.frombuffer(client.msgs['image'][-1].data, np.uint8).reshape(120, 160, 3).astype(int)
    r, g, b = pixels[round(v), round(u)]
    assert r > 100 and r > 2 * g and r > 2 * b, (u, v, (r, g, b))


def test_the_rviz_config_shows_topics_the_sim_publishes(client):
    """Every display of the shipped RViz config finds its topic, with a QoS that matches."""
    config = yaml.safe_load((Path(get_package_share_directory('robosandbox_bringup'))
                             / 'config' / 'robosandbox.rviz').read_text())
    displays = config['Visualization Manager']['Displays']
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == 'world'
    topics = {d['Name']: d.get('Topic', d.get('Description Topic')) for d in displays}
    assert spin_until(client, lambda: all(
        client.get_publishers_info_by_topic('/' + t['Value']) for t in topics.values() if t), 10.0)
    for name, topic in topics.items():
        if not topic:
            continue
        (publisher,) = client.get_publishers_info_by_topic('/' + topic['Value'])
        # A transient-local reader needs a transient-local writer; a reliable one a reliable writer.
        if topic['Durability Policy'] == 'Transient Local':
            assert publisher.qos_profile.durability == QoSDurabilityPolicy.TRANSIENT_LOCAL, name
        if topic['Reliability Policy'] == 'Reliable':
            assert publisher.qos_profile.reliability == QoSReliabilityPolicy.RELIABLE, name
    kinds = {d['Class'] for d in displays}
    assert {'rviz_default_plugins/RobotModel', 'rviz_default_plugins/TF',
            'rviz_default_plugins/MarkerArray', 'rviz_default_plugins/Image'} <= kinds


def test_action_reaches_the_commanded_pose(client):
    target = [0.4, -0.6, 0.7, 0.9, -0.3, 0.9]
    result = run_goal(client, JOINTS, [(1.5, target)])
    assert result.error_code == Result.SUCCESSFUL, result.error_string
    spin_for(client, 0.1)
    reached = latest_positions(client)
    np.testing.assert_allclose([reached[j] for j in JOINTS], target, atol=0.05)


def test_streamed_trajectory_is_interpolated(client):
    start = latest_positions(client)['shoulder_pan']
    goal = start - 0.6
    client.traj_pub.publish(JointTrajectory(joint_names=['shoulder_pan'], points=[
        JointTrajectoryPoint(positions=[goal], time_from_start=Duration(sec=2))]))
    spin_for(client, 1.0)
    halfway = latest_positions(client)['shoulder_pan']
    # Linear in time from the held target: about half way after 1 of 2 s.
    assert min(start, goal) + 0.15 < halfway < max(start, goal) - 0.15
    spin_for(client, 1.8)
    assert latest_positions(client)['shoulder_pan'] == pytest.approx(goal, abs=0.03)


def test_a_goal_stamped_with_wall_clock_time_is_refused_at_once(client):
    """A client without use_sim_time stamps wall-clock time: decades ahead of sim time."""
    before = latest_positions(client)
    goal = FollowJointTrajectory.Goal(trajectory=trajectory_msg(['shoulder_pan'], [(1.0, [0.3])]))
    goal.trajectory.header.stamp = rclpy.clock.Clock().now().to_msg()      # the system clock
    result = clients.run_goal(client, client.action, goal, 10.0)
    assert result.error_code == Result.INVALID_GOAL, result
    assert "ahead of this backend's clock" in result.error_string and 'use_sim_time' in result.error_string
    spin_for(client, 0.3)
    assert latest_positions(client)['shoulder_pan'] == pytest.approx(before['shoulder_pan'], abs=0.02)


@pytest.mark.parametrize('names, position, code, message', [
    (['shoulder_pan', 'elbow'], [0.0, 0.0], Result.INVALID_JOINTS, "unknown joint\\(s\\) \\['elbow'\\]"),
    (['shoulder_pan'], [math.nan], Result.INVALID_GOAL, 'NaN'),
    (['shoulder_pan'], [math.inf], Result.INVALID_GOAL, 'NaN or infinite'),
    (['elbow_flex'], [2.5], Result.INVALID_GOAL, 'outside its limits'),
])
def test_bad_goals_are_refused_and_the_arm_holds(client, names, position, code, message):
    before = latest_positions(client)
    result = run_goal(client, names, [(1.0, position)])
    assert result.error_code == code
    assert re.search(message, result.error_string)
    spin_for(client, 0.5)
    after = latest_positions(client)
    assert all(abs(after[j] - before[j]) < 0.01 for j in JOINTS)


def test_bad_streamed_commands_are_refused(client, sim_process):
    before = latest_positions(client)
    client.traj_pub.publish(JointTrajectory(joint_names=['shoulder_pan'], points=[
        JointTrajectoryPoint(positions=[0.1], time_from_start=Duration(sec=1)),
        JointTrajectoryPoint(positions=[0.2], time_from_start=Duration(sec=1))]))
    client.traj_pub.publish(JointTrajectory(joint_names=['wrist_roll'], points=[
        JointTrajectoryPoint(positions=[9.0], time_from_start=Duration(sec=1))]))
    spin_for(client, 1.0)
    after = latest_positions(client)
    assert all(abs(after[j] - before[j]) < 0.01 for j in JOINTS)
    log = sim_process.text()
    assert 'not strictly increasing' in log and 'outside its limits' in log


def cube_position(client):
    client.msgs['status'].clear()
    assert spin_until(client, lambda: client.msgs['status'], 5.0)
    status = client.msgs['status'][-1]
    pose = status.object_poses[status.object_names.index('cube')]
    return status, np.array([pose.position.x, pose.position.y])


def reset(client, task, seed):
    assert client.reset.wait_for_service(timeout_sec=10)
    return wait_future(client, client.reset.call_async(ResetSim.Request(task=task, seed=seed)))


def test_reset_is_deterministic_and_reports_errors(client):
    assert reset(client, 'pick_cube', 5).success
    status, first = cube_position(client)
    assert (status.task, status.seed, status.success) == ('pick_cube', 5, False)
    assert reset(client, 'pick_cube', 6).success
    _, other = cube_position(client)
    assert reset(client, '', 5).success  # empty task keeps the current one
    _, again = cube_position(client)
    np.testing.assert_allclose(first, again, atol=1e-4)
    assert np.linalg.norm(first - other) > 1e-3

    bad = reset(client, 'no_such_task', 1)
    assert not bad.success and 'unknown task' in bad.message


def test_pause_and_step(client):
    assert client.pause.wait_for_service(timeout_sec=10)
    assert wait_future(client, client.pause.call_async(SetBool.Request(data=True))).success
    spin_for(client, 0.2)
    client.msgs['clock'].clear()
    spin_for(client, 0.3)
    assert not client.msgs['clock']  # paused: time stands still
    before = wait_future(client, client.step.call_async(StepSim.Request(steps=0))).sim_time
    stepped = wait_future(client, client.step.call_async(StepSim.Request(steps=50)))
    assert stepped.success
    assert to_seconds(stepped.sim_time) - to_seconds(before) == pytest.approx(0.1, abs=1e-6)

    # Lockstep's request: a command, steps up to a time, then the observation stamped there.
    now = to_seconds(stepped.sim_time)
    before_pan = latest_positions(client)['shoulder_pan']
    target = dict(latest_positions(client), shoulder_pan=before_pan + 0.3)
    until = now + 0.0333                                    # not a whole number of 2 ms steps
    for kind in ('joints', 'status', 'image'):
        client.msgs[kind].clear()
    observed = wait_future(client, client.step.call_async(StepSim.Request(
        trajectory=trajectory_msg(list(target), [(0.5, list(target.values()))]),
        until=time_msg(until), observe=True)))
    assert observed.success, observed.message
    end = to_seconds(observed.sim_time)
    assert until <= end < until + 0.002 + 1e-9               # rounded up to a whole physics step
    for kind in ('joints', 'status', 'image'):   # each published at the final time, once
        assert spin_until(client, lambda k=kind: any(
            to_seconds(m.header.stamp) == pytest.approx(end, abs=1e-9) for m in client.msgs[k]), 5.0), kind
    spin_for(client, 0.2)
    assert [to_seconds(m.header.stamp) for m in client.msgs['joints']].count(
        pytest.approx(end, abs=1e-9)) == 1
    assert latest_positions(client)['shoulder_pan'] > before_pan + 1e-3    # the command runs
    # A refused command fails the request and nothing steps.
    bad = dict(target, shoulder_pan=float('nan'))
    refused = wait_future(client, client.step.call_async(StepSim.Request(
        trajectory=trajectory_msg(list(bad), [(0.5, list(bad.values()))]), steps=10)))
    assert not refused.success and 'trajectory refused' in refused.message
    assert to_seconds(refused.sim_time) == pytest.approx(end, abs=1e-9)
    assert wait_future(client, client.pause.call_async(SetBool.Request(data=False))).success
    refused = wait_future(client, client.step.call_async(StepSim.Request(steps=5)))
    assert not refused.success and 'only allowed while paused' in refused.message
