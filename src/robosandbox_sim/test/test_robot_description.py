from pathlib import Path

import pytest

from robosandbox_sim.robot import (
    load_robot, ModelMismatchError, RobotDescriptionError, SidecarFormatError)
from robosandbox_sim.scene import build_scene
from robosandbox_sim.task import load_task, TaskError

SO101 = load_robot('so101')


def write_sidecar(tmp_path: Path, text: str) -> Path:
    path = tmp_path / 'my_robot.yaml'
    path.write_text(text)
    return path


def own_robot(model_file: Path, **overrides) -> str:
    fields = {
        'model': f'{{file: {model_file}}}',
        'arm_joints': '[shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll]',
        'gripper': '{joint: gripper, open: 1.0, closed: 0.0}',
        'home': ('{shoulder_pan: 0, shoulder_lift: 0, elbow_flex: 0, wrist_flex: 0, '
                 'wrist_roll: 0, gripper: 0}'),
        'end_effector': 'gripperframe',
    }
    fields.update(overrides)
    return '\n'.join(f'{k}: {v}' for k, v in fields.items() if v is not None)


def test_packaged_so101_has_lerobot_joint_names():
    assert SO101.joints == ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                            'wrist_roll', 'gripper')
    assert SO101.model_path.is_file()


def test_own_robot_from_a_local_model_file(tmp_path):
    robot = load_robot(write_sidecar(tmp_path, own_robot(SO101.model_path)))
    scene = build_scene(robot, load_task('home'))
    assert len(scene.actuators) == 6


def test_model_override_is_the_path_for_unpackaged_models():
    # so_arm100 points at a local Menagerie copy; the override takes another file
    # through the same code path, and a model of another arm is a clear mismatch.
    robot = load_robot('so_arm100', model_file=SO101.model_path)
    with pytest.raises(ModelMismatchError, match=r"'(Rotation|Fixed_Jaw)' is not in"):
        build_scene(robot, load_task('home'))


def test_missing_model_file_is_reported(tmp_path):
    with pytest.raises(RobotDescriptionError, match='does not exist'):
        load_robot(write_sidecar(tmp_path, own_robot(tmp_path / 'nope.xml')))


@pytest.mark.parametrize('overrides, error, message', [
    ({'arm_joints': None}, SidecarFormatError, "missing required key 'arm_joints'"),
    ({'gripper': '{joint: gripper, open: 1.0}'}, SidecarFormatError, "'closed'"),
    ({'home': '{shoulder_pan: 0}'}, SidecarFormatError, 'home pose misses joint'),
    ({'end_effector': '[1, 2]'}, SidecarFormatError, "'end_effector' must name a site"),
    ({'model': 'just-a-string'}, SidecarFormatError, "'model' must be a mapping"),
])
def test_sidecar_format_errors(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        load_robot(write_sidecar(tmp_path, own_robot(SO101.model_path, **overrides)))


@pytest.mark.parametrize('overrides, message', [
    ({'arm_joints': '[shoulder_pan, shoulder_lift, elbow, wrist_flex, wrist_roll]',
      'home': ('{shoulder_pan: 0, shoulder_lift: 0, elbow: 0, wrist_flex: 0, '
               'wrist_roll: 0, gripper: 0}')},
     "joint 'elbow' is not in model"),
    ({'end_effector': 'tool0'}, "end-effector site 'tool0' is not in the model"),
    ({'gripper': '{joint: gripper, open: 3.0, closed: 0.0}'}, 'gripper=3.0 is outside its range'),
    ({'home': ('{shoulder_pan: 5, shoulder_lift: 0, elbow_flex: 0, wrist_flex: 0, '
               'wrist_roll: 0, gripper: 0}')}, 'shoulder_pan=5.0 is outside its range'),
    ({'cameras': '{hand: {body: no_such_body, pos: [0, 0, 0]}}'}, "unknown body 'no_such_body'"),
    ({'end_effector': '{body: no_such_body, pos: [0, 0, 0]}'}, "body 'no_such_body' is not in"),
])
def test_model_mismatches(tmp_path, overrides, message):
    robot = load_robot(write_sidecar(tmp_path, own_robot(SO101.model_path, **overrides)))
    with pytest.raises(ModelMismatchError, match=message):
        build_scene(robot, load_task('home'))


def test_invalid_yaml_and_unknown_names(tmp_path):
    with pytest.raises(SidecarFormatError, match='invalid YAML'):
        load_robot(write_sidecar(tmp_path, 'model: [unclosed'))
    with pytest.raises(RobotDescriptionError, match='unknown robot'):
        load_robot('not_a_robot')
    with pytest.raises(TaskError, match='unknown task'):
        load_task('not_a_task')


def test_task_file_errors(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('success: {lifted: {object: ball}}\nobjects: {}\n')
    with pytest.raises(TaskError, match="success names object 'ball'"):
        load_task(bad)
    bad.write_text('success: {teleported: {}}\n')
    with pytest.raises(TaskError, match='unknown success condition'):
        load_task(bad)


def test_own_robot_from_urdf_gets_stable_position_servos(tmp_path):
    import numpy as np
    from robosandbox_sim.simulation import Simulation
    urdf = SO101.model_path.with_name('so101_new_calib.urdf')
    robot = load_robot(write_sidecar(tmp_path, own_robot(
        urdf, end_effector='{body: gripper_link, pos: [0, 0, -0.1]}')))
    sim = Simulation(robot, 'home', 0)
    target = np.array([0.3, 0.2, 0.1, 0.2, 0.1, 0.5])
    sim.set_targets(target)
    sim.step(1500)
    np.testing.assert_allclose(sim.joint_positions(), target, atol=0.03)
    sim.close()
