"""The robot description alone: sidecar parsing, URDF checks and kinematics, cameras.

None of these needs MuJoCo; the MJCF side of the checks is in robosandbox_sim.
"""

import numpy as np
import pytest

from robosandbox_description.camera import Pinhole
from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import (
    available_robots, load_robot, ModelMismatchError, RobotDescriptionError, SidecarFormatError)
from robosandbox_description.testing import packaged_limits, sidecar_variant

SO101 = load_robot('so101')


def test_packaged_robots_load_with_lerobot_joint_names():
    assert {'so101', 'so_arm100'} <= set(available_robots())
    assert SO101.joints == ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                            'wrist_roll', 'gripper')
    assert SO101.urdf_path.is_file() and SO101.mjcf_path.is_file()
    assert np.all(SO101.lower < SO101.upper) and np.all(SO101.max_velocity > 0)
    assert np.all((SO101.lower <= SO101.home_positions) & (SO101.home_positions <= SO101.upper))
    assert SO101.gripper_range == (SO101.limits['gripper'].lower, SO101.limits['gripper'].upper)


def test_an_own_robot_loads_from_its_sidecar_path(tmp_path):
    robot = load_robot(sidecar_variant(tmp_path, name='mine'))
    assert robot.name == 'mine' and robot.joints == SO101.joints
    assert robot.sidecar == tmp_path / 'my_robot.yaml'


@pytest.mark.parametrize('changes, message', [
    ({'arm_joints': None}, "missing required key 'arm_joints'"),
    ({'gripper': {'joint': 'gripper', 'open': 1.0}}, "missing required key 'closed'"),
    ({'home': {'shoulder_pan': 0.0}}, 'home pose misses joint'),
    ({'end_effector': [1, 2]}, "'end_effector' must be a mapping"),
    ({'end_effector': {'frame': 'x'}}, 'unknown key'),
    ({'urdf': 'just-a-string', 'mjcf': None}, "a model must be a mapping"),
    ({'urdf': None, 'mjcf': None}, "needs a model: 'urdf', 'mjcf' or both"),
    ({'model': {'file': 'x.xml'}}, "'model' was split into 'urdf' and 'mjcf'"),
    ({'limits': {'shoulder_pan': {'lower': 0, 'upper': 1, 'velocity': 1}}}, 'limits misses joint'),
    ({'limits': packaged_limits(elbow_flex={'lower': 1, 'upper': -1, 'velocity': 1})}, 'is not below upper'),
    ({'limits': packaged_limits(wrist_flex={'lower': -1, 'upper': 1, 'velocity': 0})}, 'velocity must be positive'),
    ({'limits': packaged_limits(wrist_flex={'lower': float('nan'), 'upper': 1, 'velocity': 1})}, 'must be finite'),
    ({'gripper': {'joint': 'gripper', 'open': 3.0, 'closed': 0.0}}, 'gripper=3.0 is outside its limits'),
    ({'home': {**SO101.home, 'shoulder_pan': 5.0}}, 'shoulder_pan=5.0 is outside its limits'),
    ({'arm_joints': ['shoulder_pan', 'shoulder_pan', 'elbow_flex', 'wrist_flex', 'wrist_roll']},
     'named twice'),
])
def test_sidecar_format_errors_name_the_problem(tmp_path, changes, message):
    with pytest.raises(SidecarFormatError, match=message):
        load_robot(sidecar_variant(tmp_path, **changes))


def test_invalid_yaml_unknown_robots_and_missing_models(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('urdf: [unclosed')
    with pytest.raises(SidecarFormatError, match='invalid YAML'):
        load_robot(bad)
    with pytest.raises(RobotDescriptionError, match=r"unknown robot 'not_a_robot'.*so101"):
        load_robot('not_a_robot')
    with pytest.raises(RobotDescriptionError, match='does not exist'):
        UrdfKinematics(load_robot(sidecar_variant(tmp_path, urdf={'file': str(tmp_path / 'nope.urdf')})))
    with pytest.raises(RobotDescriptionError, match="has no urdf model"):
        UrdfKinematics(load_robot(sidecar_variant(tmp_path, urdf=None)))


@pytest.mark.parametrize('changes, message', [
    ({'arm_joints': ['shoulder_pan', 'shoulder_lift', 'elbow', 'wrist_flex', 'wrist_roll'],
      'home': {**{k: v for k, v in SO101.home.items() if k != 'elbow_flex'}, 'elbow': 0.0},
      'limits': {('elbow' if j == 'elbow_flex' else j): v for j, v in packaged_limits().items()}},
     "joint 'elbow' is not in the URDF"),
    ({'end_effector': {'link': 'tool0'}}, "end-effector link 'tool0' is not in the URDF"),
    ({'limits': packaged_limits(shoulder_pan={'lower': -3.0, 'upper': 1, 'velocity': 1})},
     r"limits of 'shoulder_pan' \[-3.0, 1.0\] go beyond the URDF"),
])
def test_urdf_mismatches_are_refused(tmp_path, changes, message):
    robot = load_robot(sidecar_variant(tmp_path, **changes))
    with pytest.raises(ModelMismatchError, match=message):
        UrdfKinematics(robot)


def test_urdf_forward_kinematics_follows_the_joints():
    fk = UrdfKinematics(SO101)
    assert set(SO101.joints) <= set(fk.moving_joints)
    zeros = dict.fromkeys(SO101.joints, 0.0)
    zero = fk.end_effector_pose(zeros)
    turned = fk.end_effector_pose({**zeros, 'shoulder_pan': np.pi / 2})
    # A quarter turn of the pan joint turns the tool a quarter turn about the
    # pan axis (through the shoulder link's origin) and keeps its height (to the
    # micrometre: the model's axes are rounded to 6 decimals).
    pivot = fk.link_poses(zeros)['shoulder_link'][:2, 3]
    before, after = zero[:2, 3] - pivot, turned[:2, 3] - pivot
    np.testing.assert_allclose(zero[2, 3], turned[2, 3], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(before), np.linalg.norm(after), atol=1e-5)
    assert abs(np.dot(before, after)) < 1e-4 * np.dot(before, before)
    # Rotations stay rotations.
    np.testing.assert_allclose(turned[:3, :3] @ turned[:3, :3].T, np.eye(3), atol=1e-9)
    # The gripper jaw does not move the tool frame, which is on the fixed jaw.
    opened = fk.end_effector_pose({**dict.fromkeys(SO101.joints, 0.0), 'gripper': 1.0})
    np.testing.assert_allclose(opened, zero, atol=1e-12)


def test_pinhole_from_a_field_of_view_uses_the_pixel_centre_convention():
    k = Pinhole.from_fov(320, 240, fovy_deg=90.0)
    assert k.fy == pytest.approx(120.0) and k.fx == k.fy
    # REP-104 / OpenCV: pixel centres at integers, so the optical axis is at (W-1)/2.
    assert (k.cx, k.cy) == (159.5, 119.5)
    assert k.project(0.0, 0.0, 1.0) == (159.5, 119.5)
    h = Pinhole.from_fov(640, 480, hfov_deg=90.0)
    assert h.fx == pytest.approx(320.0)
    with pytest.raises(ValueError, match='exactly one'):
        Pinhole.from_fov(320, 240)
    with pytest.raises(ValueError, match=r'\(0, 180\)'):
        Pinhole.from_fov(320, 240, fovy_deg=180.0)
