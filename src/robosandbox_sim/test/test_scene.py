"""The robot description against the MJCF scene MuJoCo builds from it."""

import mujoco
import numpy as np
import pytest

from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import load_robot, ModelMismatchError
from robosandbox_description.testing import packaged_limits, sidecar_variant
from robosandbox_sim.scene import build_scene
from robosandbox_sim.simulation import Simulation
from robosandbox_sim.task import load_task, TaskError

SO101 = load_robot('so101')


@pytest.mark.parametrize('changes, message', [
    ({'arm_joints': ['shoulder_pan', 'shoulder_lift', 'elbow', 'wrist_flex', 'wrist_roll'],
      'home': {**{k: v for k, v in SO101.home.items() if k != 'elbow_flex'}, 'elbow': 0.0},
      'limits': {('elbow' if j == 'elbow_flex' else j): v for j, v in packaged_limits().items()}},
     "joint 'elbow' is not in model"),
    ({'end_effector': {'site': 'tool0'}}, "end-effector site 'tool0' is not in"),
    ({'end_effector': {'site': 'tool0', 'body': 'no_such_body', 'pos': [0, 0, 0]}},
     "end_effector body 'no_such_body' is not in"),
    ({'limits': packaged_limits(shoulder_pan={'lower': -3.0, 'upper': 1.0, 'velocity': 1.0})},
     r"limits of 'shoulder_pan' \[-3.0, 1.0\] go beyond its"),
    ({'cameras': {'hand': {'body': 'no_such_body', 'pos': [0, 0, 0]}}}, "unknown body 'no_such_body'"),
])
def test_mjcf_mismatches_are_refused(tmp_path, changes, message):
    robot = load_robot(sidecar_variant(tmp_path, **changes))
    with pytest.raises(ModelMismatchError, match=message):
        build_scene(robot, load_task('home'))


def test_model_override_of_another_arm_is_a_clear_mismatch():
    # so_arm100 points at a local Menagerie copy; the override takes another file
    # through the same path, and the SO-101's model is not that arm.
    robot = load_robot('so_arm100', mjcf_file=SO101.mjcf_path)
    with pytest.raises(ModelMismatchError, match=r"'(Rotation|Fixed_Jaw)' is not in"):
        build_scene(robot, load_task('home'))


def test_task_file_errors(tmp_path):
    with pytest.raises(TaskError, match='unknown task'):
        load_task('not_a_task')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('success: {lifted: {object: ball}}\nobjects: {}\n')
    with pytest.raises(TaskError, match="success names object 'ball'"):
        load_task(bad)
    bad.write_text('success: {teleported: {}}\n')
    with pytest.raises(TaskError, match='unknown success condition'):
        load_task(bad)


def test_own_robot_from_urdf_gets_stable_position_servos(tmp_path):
    robot = load_robot(sidecar_variant(tmp_path, mjcf=None, cameras={},
                                 end_effector={'link': 'gripper_frame_link', 'site': 'tool',
                                               'body': 'gripper_link', 'pos': [0, 0, -0.1]}))
    sim = Simulation(robot, 'home', 0)
    target = np.array([0.3, 0.2, 0.1, 0.2, 0.1, 0.5])
    sim.set_targets(target)
    sim.step(1500)
    np.testing.assert_allclose(sim.joint_positions(), target, atol=0.03)
    sim.close()


def test_urdf_and_mjcf_agree_on_the_end_effector():
    """TF (robot_state_publisher on the URDF) and the simulation place the tool in one spot."""
    fk, sim = UrdfKinematics(SO101), Simulation(SO101, 'home', 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(SO101.lower, SO101.upper)
        sim.data.qpos[sim.scene.joint_qpos] = q
        mujoco.mj_forward(sim.model, sim.data)
        position, rotation = sim.end_effector_pose()
        pose = fk.end_effector_pose(dict(zip(SO101.joints, q)))
        np.testing.assert_allclose(pose[:3, 3], position, atol=1e-4)      # 0.1 mm
        np.testing.assert_allclose(pose[:3, :3], rotation, atol=1e-4)
    sim.close()


def test_the_optical_axis_falls_on_the_published_principal_point():
    """A cube centred on the front camera's axis, a face towards it, images centred at (cx, cy)."""
    sim = Simulation(SO101, 'pick_cube', 0)
    m, d = sim.model, sim.data
    camera = m.camera('front').id
    mujoco.mj_forward(m, d)
    axis = -d.cam_xmat[camera].reshape(3, 3)[:, 2]       # MuJoCo cameras look along -z
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, d.cam_xmat[camera])
    cube = sim.scene.object_joint_qpos['cube']
    d.qpos[cube:cube + 3] = d.cam_xpos[camera] + 0.3 * axis
    d.qpos[cube + 3:cube + 7] = quat
    mujoco.mj_forward(m, d)
    width, height = 320, 240
    rgb = sim.render('front', width, height).astype(int)
    red = (rgb[..., 0] > 2 * rgb[..., 1] + 20) & (rgb[..., 0] > 2 * rgb[..., 2] + 20)
    assert red.sum() > 400, 'the cube is not in view'
    rows, cols = np.nonzero(red)
    k = sim.intrinsics('front', width, height)
    assert cols.mean() == pytest.approx(k.cx, abs=0.2)
    assert rows.mean() == pytest.approx(k.cy, abs=0.2)
    sim.close()
