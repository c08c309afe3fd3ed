"""The arm contract, checked through ROS only, on every backend.

One suite, parametrised over the MuJoCo sim node and the SO-101 hardware node
on the emulated servo bus, each started by its executable's name (this
package sits below both and imports neither; a backend that is not installed
is skipped). It is also the check to run against your own backend (a real arm
lifted clear of obstacles, or another driver) before trusting it: start it, then

    ROBOSANDBOX_CONTRACT_BACKEND=running ROS_DOMAIN_ID=<yours> \\
        python -m pytest src/robosandbox_control/test/test_contract.py

and the suite talks to whatever answers on that ROS domain. It moves the arm
(to a pose, the gripper, home), at the speeds the backend allows.
"""

import os
from pathlib import Path
import re
import time

import numpy as np
import pytest
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from control_msgs.msg import JointTolerance
from robosandbox_cli.processes import NodeProcess, resolve_executable
from robosandbox_control.clients import ArmClient, run_goal, send_goal, trajectory_msg
from robosandbox_control.qos import LATCHED_QOS, TF_QOS
from robosandbox_control.robot_state import quaternion
from robosandbox_control.spinning import wait_future
from robosandbox_control.testing import write_camera_video
from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import load_robot

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

JOINTS = load_robot('so101').joints
POSE = np.array([0.3, -0.6, 0.7, 0.5, -0.4, 0.6])
CAMERA = (240, 320)               # height, width of every backend's front camera here
Result = FollowJointTrajectory.Result
RUNNING = os.environ.get('ROBOSANDBOX_CONTRACT_BACKEND') == 'running'


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope='module')
def robot():
    return load_robot('so101')


@pytest.fixture(scope='module')
def camera_video(tmp_path_factory):
    """A video file: a camera device for the hardware node without a camera."""
    return write_camera_video(tmp_path_factory.mktemp('camera') / 'front.avi', CAMERA[1], CAMERA[0])


def _installed(package: str, executable: str) -> None:
    try:
        resolve_executable(package, executable)
    except Exception as e:  # noqa: BLE001 - whatever the lookup raises, the backend is absent
        pytest.skip(f'{package} {executable} is not installed: {e}')


def _sim(tmp, video):
    _installed('robosandbox_sim', 'sim_node')
    process = NodeProcess('robosandbox_sim', 'sim_node', 'cameras:=[front]',
                          f'camera_width:={CAMERA[1]}', f'camera_height:={CAMERA[0]}')
    try:
        yield process
    finally:            # the fixture closes this generator: GeneratorExit arrives at the yield
        process.close()


def _running(tmp, video):
    yield None                    # the user's backend, already up


def _hw_emulated(tmp, video):
    """The servo-bus emulator node, then the hardware node on its port, as hw_emulated launches them."""
    _installed('robosandbox_hw', 'so101_node')
    port, calibration = tmp / 'ttySO101', tmp / 'so101.json'
    emulator = NodeProcess('robosandbox_hw', 'so101_emulator', f'port:={port}',
                           f'calibration_file:={calibration}')
    arm = NodeProcess(
        'robosandbox_hw', 'so101_node', f'port:={port}',
        f'calibration_file:={calibration}', 'first_motion_velocity:=0.6',
        'camera_names:=[front]', f'camera_devices:=[{video}]',
        f'camera_width:={CAMERA[1]}', f'camera_height:={CAMERA[0]}')
    try:
        yield arm
    finally:
        arm.close()         # torque off while the emulated bus still answers
        emulator.close()


@pytest.fixture(scope='module', params=['running'] if RUNNING else ['sim', 'hw_emulated'])
def backend(request, ros, camera_video, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    processes = {'sim': _sim, 'hw_emulated': _hw_emulated, 'running': _running}[request.param](tmp, camera_video)
    process = next(processes)
    client = ArmClient('contract_client', JOINTS)
    client.images, client.infos = [], []
    client.image_subscription = client.node.create_subscription(
        Image, 'cameras/front/image_raw', client.images.append, qos_profile_sensor_data)
    client.node.create_subscription(CameraInfo, 'cameras/front/camera_info', client.infos.append,
                                    qos_profile_sensor_data)
    try:
        client.wait(lambda: client.states, 90.0, process.output.text if process else 'no joint_states')
        yield client
    finally:
        client.close()
        processes.close()


def settle(client, seconds=0.5):
    client.spin(seconds)
    return client.position()


def test_joint_names_order_units_and_rate(backend, robot):
    backend.states.clear()
    backend.spin(2.0)
    assert tuple(backend.states[-1].name) == JOINTS
    stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in backend.states]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate >= 50.0, rate
    q = backend.position()
    assert np.all(np.isfinite(q))
    # Radians: every joint inside the model's limits (degrees or ticks would not be).
    assert np.all(q >= robot.lower - 0.05) and np.all(q <= robot.upper + 0.05), q


def test_a_commanded_pose_is_reached(backend):
    result = backend.follow(POSE, 2.0, time_tolerance=15.0)
    assert result.error_code == Result.SUCCESSFUL, result.error_string
    np.testing.assert_allclose(settle(backend), POSE, atol=0.05)


def test_the_gripper_opens_above_where_it_closes(backend, robot):
    g = JOINTS.index(robot.gripper_joint)
    target = settle(backend, 0.1)
    target[g] = robot.gripper_open
    backend.follow(target, 1.0, time_tolerance=15.0)
    opened = settle(backend)[g]
    target[g] = robot.gripper_closed
    backend.follow(target, 1.0, time_tolerance=15.0)
    closed = settle(backend)[g]
    assert opened > closed + 0.5, (opened, closed)


def test_home_reaches_the_home_pose(backend, robot):
    home = np.array([robot.home[j] for j in JOINTS])
    response = backend.call('home', timeout=90.0)
    assert response.success, response.message
    np.testing.assert_allclose(settle(backend), home, atol=0.05)


def _goal(positions, seconds, **point_fields):
    goal = FollowJointTrajectory.Goal(trajectory=trajectory_msg(JOINTS, [(seconds, positions)]))
    for name, value in point_fields.items():
        setattr(goal.trajectory.points[0], name, value)
    return goal


def test_a_goal_stamped_years_ahead_is_refused_not_left_hanging(backend):
    # A client on another clock (wall time against the sim's) must get an
    # answer, not a plan that starts in years.
    before = settle(backend)
    target = before.copy()
    target[0] += 0.2
    goal = _goal(target, 1.0)
    goal.trajectory.header.stamp.sec = 2_000_000_000          # 2033: ahead of every backend's clock
    result = run_goal(backend.node, backend.action, goal, 10.0)
    assert result.error_code == Result.INVALID_GOAL and 'ahead' in result.error_string, result
    streamed = goal.trajectory
    backend.trajectories.publish(streamed)
    np.testing.assert_allclose(settle(backend, 1.0), before, atol=0.02)


@pytest.mark.parametrize('field', ['velocities', 'accelerations'])
def test_velocities_or_accelerations_of_the_wrong_length_are_refused(backend, field):
    before = settle(backend)
    target = before.copy()
    target[0] += 0.2
    result = run_goal(backend.node, backend.action, _goal(target, 1.0, **{field: [0.0] * 3}), 10.0)
    assert result.error_code == Result.INVALID_GOAL and field in result.error_string, result
    backend.trajectories.publish(_goal(target, 0.5, **{field: [0.0] * 3}).trajectory)
    np.testing.assert_allclose(settle(backend, 1.0), before, atol=0.02)


def test_limits_are_enforced_and_bad_commands_refused(backend, robot):
    before = settle(backend)
    beyond = before.copy()
    beyond[1] = robot.upper[1] + 0.3
    assert backend.follow(beyond, 1.0).error_code == Result.INVALID_GOAL
    assert backend.follow(before[:1], 1.0, names=['elbow']).error_code == Result.INVALID_JOINTS
    nan = before.copy()
    nan[2] = float('nan')
    backend.stream(nan, 0.5)
    backend.stream(beyond, 0.5)
    np.testing.assert_allclose(settle(backend, 1.0), before, atol=0.02)


def test_a_long_streamed_trajectory_plays_to_its_end(backend):
    # One message lasting longer than the hardware watchdog's timeout: every
    # backend follows it to its last point (the watchdog counts from there).
    target = settle(backend)
    target[0] += 0.3
    backend.stream(target, 1.5)
    backend.wait(lambda: abs(backend.position()[0] - target[0]) < 0.03, 6.0,
                 lambda: f'stopped at {backend.position()[0]:.3f}, target {target[0]:.3f}')


def test_a_partial_joint_goal_moves_only_its_joints(backend):
    before = settle(backend)
    result = backend.follow([before[0] - 0.2], 0.5, names=[JOINTS[0]])
    assert result.error_code == Result.SUCCESSFUL, result.error_string
    after = settle(backend)
    assert after[0] == pytest.approx(before[0] - 0.2, abs=0.05)
    np.testing.assert_allclose(after[1:], before[1:], atol=0.03)


def _send(backend, positions, seconds, **goal_fields):
    goal = _goal(positions, seconds)
    for name, value in goal_fields.items():
        setattr(goal, name, value)
    handle = send_goal(backend.node, backend.action, goal)
    return handle, handle.get_result_async()


def test_a_new_goal_preempts_the_running_one(backend):
    start = settle(backend)
    first = start.copy()
    first[0] += 0.4
    second = start.copy()
    second[0] -= 0.2
    feedback = []
    goal = _goal(first, 3.0)
    handle = send_goal(backend.node, backend.action, goal, feedback_callback=feedback.append)
    first_result = handle.get_result_async()
    backend.wait(lambda: feedback, 5.0, 'no feedback')
    assert list(feedback[-1].feedback.joint_names) == list(JOINTS)
    preempted_at = time.monotonic()
    _, second_result = _send(backend, second, 1.0)
    wait_future(backend.node, first_result, 5.0)
    assert time.monotonic() - preempted_at < 1.0       # answered at once, not at its end
    assert first_result.result().status == GoalStatus.STATUS_CANCELED
    assert 'preempted' in first_result.result().result.error_string
    result = wait_future(backend.node, second_result, 20.0)
    assert result.status == GoalStatus.STATUS_SUCCEEDED, result.result.error_string
    assert settle(backend)[0] == pytest.approx(second[0], abs=0.05)


def test_cancel_holds_where_the_arm_is(backend):
    start = settle(backend)
    target = start.copy()
    target[0] += 0.6
    handle, result = _send(backend, target, 3.0)
    backend.spin(0.8)
    wait_future(backend.node, handle.cancel_goal_async(), 5.0)
    assert wait_future(backend.node, result, 5.0).status == GoalStatus.STATUS_CANCELED
    stopped = settle(backend, 0.5)
    assert start[0] + 0.05 < stopped[0] < target[0] - 0.1, (start[0], stopped[0])
    assert settle(backend, 0.7)[0] == pytest.approx(stopped[0], abs=0.01)


def test_a_goal_storm_is_all_answered_and_the_last_goal_runs(backend):
    start = settle(backend)
    sent = []
    for i in range(30):
        target = start.copy()
        target[0] += 0.01 * (i + 1)
        sent.append((target, _send(backend, target, 0.5)[1]))
    last_sent = time.monotonic()
    earlier = [future for _, future in sent[:-1]]
    backend.wait(lambda: all(f.done() for f in earlier), 10.0,
                 lambda: f'{sum(not f.done() for f in earlier)} of 29 goals unanswered')
    assert time.monotonic() - last_sent < 1.0
    assert all(f.result().status == GoalStatus.STATUS_CANCELED for f in earlier)
    result = wait_future(backend.node, sent[-1][1], 20.0)
    assert result.status == GoalStatus.STATUS_SUCCEEDED, result.result.error_string
    assert settle(backend)[0] == pytest.approx(sent[-1][0][0], abs=0.05)


def test_a_trajectory_that_ended_in_the_past_is_refused(backend):
    before = settle(backend)
    target = before.copy()
    target[0] += 0.2
    goal = _goal(target, 0.5)
    goal.trajectory.header.stamp.sec = 1          # ended 1.5 s after the clock's epoch
    result = run_goal(backend.node, backend.action, goal, 10.0)
    assert result.error_code == Result.OLD_HEADER_TIMESTAMP and 'ended' in result.error_string, result
    backend.trajectories.publish(goal.trajectory)
    np.testing.assert_allclose(settle(backend, 1.0), before, atol=0.02)


def test_a_path_tolerance_violation_aborts_and_holds(backend):
    start = settle(backend)
    target = start.copy()
    target[0] += 0.5
    tight = [JointTolerance(name=JOINTS[0], position=1e-4)]
    _, future = _send(backend, target, 1.0, path_tolerance=tight)
    result = wait_future(backend.node, future, 10.0)
    assert result.status == GoalStatus.STATUS_ABORTED
    assert result.result.error_code == Result.PATH_TOLERANCE_VIOLATED, result.result.error_string
    stopped = settle(backend, 0.5)
    assert stopped[0] < target[0] - 0.2
    assert settle(backend, 0.5)[0] == pytest.approx(stopped[0], abs=0.01)


def test_robot_description_and_tf_follow_the_joints(backend, robot):
    """What robot_state_publisher would give RViz: the URDF (latched: this
    subscriber comes late) and one transform per moving joint, stamped by the
    backend's clock like its joint_states."""
    listener = ArmClient('tf_listener')
    try:
        descriptions, statics, tfs = [], [], []
        listener.node.create_subscription(String, 'robot_description', descriptions.append, LATCHED_QOS)
        listener.node.create_subscription(TFMessage, '/tf_static', statics.append, LATCHED_QOS)
        listener.node.create_subscription(TFMessage, '/tf', tfs.append, TF_QOS)
        listener.wait(lambda: descriptions and statics and len(tfs) > 5 and listener.states, 20.0,
                      lambda: f'description {len(descriptions)}, static {len(statics)}, tf {len(tfs)}')
        urdf = descriptions[-1].data
        assert '<robot' in urdf and all(f'name="{j}"' in urdf for j in JOINTS)
        meshes = re.findall(r'filename="([^"]*)"', urdf)
        assert meshes and all(m.startswith('file://') and Path(m[len('file://'):]).is_file()
                              for m in meshes), meshes    # what RViz can load
        fixed = {(t.header.frame_id, t.child_frame_id) for t in statics[-1].transforms}
        assert ('gripper_link', 'gripper_frame_link') in fixed
        moving = {t.child_frame_id: t for t in tfs[-1].transforms}
        assert {'shoulder_link', 'upper_arm_link', 'lower_arm_link', 'wrist_link', 'gripper_link',
                'moving_jaw_so101_v1_link'} <= set(moving)
        assert moving['shoulder_link'].header.frame_id == 'base_link'
        # Stamped like the joint_states they come from, and equal to the kinematics at them.
        by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in listener.states}
        latest = next(m for m in reversed(tfs)
                      if (m.transforms[0].header.stamp.sec, m.transforms[0].header.stamp.nanosec) in by_stamp)
        stamp = latest.transforms[0].header.stamp
        joints = by_stamp[stamp.sec, stamp.nanosec]
        expected = UrdfKinematics(robot).joint_transforms(dict(zip(joints.name, joints.position)))
        got = {t.child_frame_id: t for t in latest.transforms}
        for parent, child, matrix in expected:
            assert got[child].header.frame_id == parent
            t, r = got[child].transform.translation, got[child].transform.rotation
            np.testing.assert_allclose([t.x, t.y, t.z], matrix[:3, 3], atol=1e-9)
            np.testing.assert_allclose([r.x, r.y, r.z, r.w], quaternion(matrix[:3, :3]), atol=1e-9)
    finally:
        listener.close()


def test_camera_topics_are_present(backend):
    backend.wait(lambda: backend.images and backend.infos, 20.0, 'no camera image or camera_info')
    image, info = backend.images[-1], backend.infos[-1]
    assert (image.height, image.width, image.encoding) == (*CAMERA, 'rgb8')
    assert (info.height, info.width) == CAMERA and info.k[0] > 0
    assert image.header.frame_id == info.header.frame_id


def test_camera_info_comes_without_an_image_subscriber(backend):
    # Last in the module: it drops the client's image subscription.
    backend.node.destroy_subscription(backend.image_subscription)
    listener = ArmClient('camera_info_only')
    try:
        infos = []
        listener.node.create_subscription(CameraInfo, 'cameras/front/camera_info', infos.append,
                                          qos_profile_sensor_data)
        listener.wait(lambda: len(infos) >= 3, 20.0, 'no camera_info without an image subscriber')
        assert (infos[-1].height, infos[-1].width) == CAMERA and infos[-1].k[0] > 0
    finally:
        listener.close()
