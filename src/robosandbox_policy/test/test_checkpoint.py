"""LeRobot checkpoints through LeRobot's own loading code: good, legacy and broken ones."""

import json
import shutil
import time

import numpy as np
import pytest

from robosandbox_description.robot import load_robot
from robosandbox_policy.checkpoint import CheckpointError, LegacyCheckpointError, load
from robosandbox_policy.embodiment import EmbodimentError, joint_units
from robosandbox_policy.lerobot_policy import CheckpointPolicy
from robosandbox_policy.migrate import migrate
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError
from robosandbox_policy.random_checkpoint import write_random_act

JOINTS = load_robot('so101').joints
GRIPPER_RANGE = (-0.17453, 1.74533)
HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])


def make_policy(ref, **kwargs):
    return CheckpointPolicy(str(ref), JOINTS, 'gripper', GRIPPER_RANGE, **kwargs)


def first_action(policy, image_shape=(240, 320, 3), timeout=30.0):
    obs = Observation(time=0.0, joint_positions=HOME.copy(),
                      images={'observation.images.front': np.full(image_shape, 128, np.uint8)})
    deadline = time.monotonic() + timeout
    tick = 0
    while time.monotonic() < deadline:
        action = policy.act(obs)
        tick += 1
        if action is not None:
            return action
        time.sleep(0.01)
    raise AssertionError('no action within the timeout')


def test_act_checkpoint_runs_with_resized_images_in_ros_units(act_checkpoint):
    policy = make_policy(act_checkpoint)
    try:
        assert policy.units.convention == 'ros'              # stats in radians
        assert policy.image_topics == {'observation.images.front': 'cameras/front/image_raw'}
        assert policy.image_shapes['observation.images.front'] == (3, 120, 160)
        action = first_action(policy)                       # 240x320 in, 120x160 expected
        assert action.shape == (6,) and np.all(np.isfinite(action))
        # Untrained, but denormalised around home with a 0.02 rad spread.
        assert np.max(np.abs(action - HOME)) < 0.5
    finally:
        policy.close()


def test_degree_checkpoints_are_converted_to_radians(tmp_path, write_act):
    units = joint_units('lerobot_so101', JOINTS, 'gripper', GRIPPER_RANGE)
    ckpt = write_act(tmp_path / 'deg', units.to_policy(HOME), spread=1.0)
    policy = make_policy(ckpt)
    try:
        assert policy.units.convention == 'lerobot_so101'
        # The state the policy sees is in degrees / 0-100...
        batch = policy.model.batch(Observation(0.0, HOME.copy(), {
            'observation.images.front': np.zeros((120, 160, 3), np.uint8)}))
        np.testing.assert_allclose(batch['observation.state'], units.to_policy(HOME), rtol=1e-5)
        # ...and its actions come back in radians, near home.
        assert np.max(np.abs(first_action(policy) - HOME)) < 0.3
    finally:
        policy.close()


def test_hub_repo_ids_load_from_the_cache_offline(hub_cache, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hub_cache))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    loaded = load('robosandbox-test/tiny-act')
    assert loaded.directory.parent.parent.name == 'models--robosandbox-test--tiny-act'
    with pytest.raises(CheckpointError, match='neither a local directory nor in the Hugging Face cache'):
        load('robosandbox-test/not-cached')


def test_legacy_checkpoints_are_detected_then_migrated(tmp_path, act_checkpoint, legacy_copy):
    legacy = legacy_copy(act_checkpoint, tmp_path / 'old_act')
    with pytest.raises(LegacyCheckpointError, match='robosandbox migrate-checkpoint'):
        make_policy(legacy)
    migrated = migrate(str(legacy))
    assert migrated == tmp_path / 'old_act_migrated'
    original, converted = make_policy(act_checkpoint), make_policy(migrated)
    try:
        obs = Observation(time=0.0, joint_positions=HOME.copy(), images={
            'observation.images.front': np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)})
        np.testing.assert_allclose(converted.predict_chunk(obs), original.predict_chunk(obs), atol=1e-5)
    finally:
        original.close()
        converted.close()
    with pytest.raises(CheckpointError, match='already exists'):
        migrate(str(legacy))


def test_migrate_checkpoint_command(tmp_path, act_checkpoint, legacy_copy, capsys):
    from robosandbox_cli.main import main
    legacy = legacy_copy(act_checkpoint, tmp_path / 'old')
    assert main(['migrate-checkpoint', str(legacy), '--output', str(tmp_path / 'new')]) == 0
    assert 'policy:=' in capsys.readouterr().out
    assert (tmp_path / 'new' / 'policy_preprocessor.json').is_file()
    assert main(['migrate-checkpoint', str(act_checkpoint)]) == 1
    assert 'needs no migration' in capsys.readouterr().err


def broken_copy(act_checkpoint, tmp_path, damage):
    ckpt = tmp_path / 'broken'
    shutil.copytree(act_checkpoint, ckpt)
    damage(ckpt)
    return ckpt


@pytest.mark.parametrize('damage, message', [
    (lambda d: shutil.rmtree(d), 'no checkpoint directory'),
    (lambda d: (d / 'config.json').write_text('{"type": "act", '), 'unreadable'),
    (lambda d: (d / 'config.json').write_text('{"type": "no_such_policy"}'), 'not a valid LeRobot config'),
    (lambda d: (d / 'model.safetensors').rename(d / 'pytorch_model.bin'), 'only safetensors'),
    (lambda d: (d / 'model.safetensors').write_bytes(b'\0' * 64), 'cannot load the weights'),
    (lambda d: (d / 'policy_preprocessor.json').unlink(), 'migrate-checkpoint'),
])
def test_broken_checkpoints_fail_with_the_reason(tmp_path, act_checkpoint, damage, message):
    with pytest.raises(CheckpointError, match=message):
        make_policy(broken_copy(act_checkpoint, tmp_path, damage))


def test_features_without_a_topic_fail_at_configure(tmp_path, act_checkpoint):
    with pytest.raises(EmbodimentError, match="'wrist'.*does not take"):
        make_policy(act_checkpoint, image_topics=['wrist=cameras/wrist/image_raw'])

    def add_env_state(d):
        config = json.loads((d / 'config.json').read_text())
        config['input_features']['observation.environment_state'] = {'type': 'ENV', 'shape': [3]}
        (d / 'config.json').write_text(json.dumps(config))
    with pytest.raises(EmbodimentError, match='observation.environment_state'):
        make_policy(broken_copy(act_checkpoint, tmp_path, add_env_state))


def test_a_state_based_checkpoint_takes_the_task_statuss_object_poses(tmp_path):
    from robosandbox_control.environment_state import environment_state
    ckpt = write_random_act(tmp_path / 'state', {}, HOME, environment_size=7, dim_model=32,
                            dim_feedforward=64, n_encoder_layers=1, chunk_size=5, n_action_steps=5)
    policy = make_policy(ckpt, synchronous=True)
    try:
        assert policy.needs_object_poses and policy.image_topics == {}
        cube = (np.array([0.2, 0.05, 0.015]), np.array([-0.9, 0.0, 0.0, 0.436]))
        obs = Observation(0.0, HOME.copy(), object_poses={'cube': cube})
        batch = policy.model.batch(obs)
        # The export's rule: the same vector, the quaternion's sign made qw >= 0.
        np.testing.assert_array_equal(batch['observation.environment_state'], environment_state({'cube': cube}))
        assert batch['observation.environment_state'][3] == pytest.approx(0.9)
        action = policy.act(obs)
        assert action.shape == (6,) and np.all(np.isfinite(action))
        two = Observation(0.0, HOME.copy(), object_poses={'cube': cube, 'bowl': cube})
        with pytest.raises(PolicyError, match=r"7 values .*2 object\(s\) \['bowl', 'cube'\], 14 values"):
            policy.model.batch(two)
    finally:
        policy.close()


def test_the_control_rate_comes_from_the_training_data_or_is_refused(tmp_path, act_checkpoint, monkeypatch):
    # LeRobot's train_config.json records no fps of its own: without an env, the rate
    # is the training dataset's, read from its meta/info.json when it is at hand.
    checkpoint = tmp_path / 'act'
    shutil.copytree(act_checkpoint, checkpoint)
    dataset = tmp_path / 'datasets' / 'me' / 'picks'
    (dataset / 'meta').mkdir(parents=True)
    (dataset / 'meta' / 'info.json').write_text(json.dumps({'fps': 15, 'codebase_version': 'v3.0'}))
    train = {'dataset': {'repo_id': 'me/picks', 'root': str(dataset)}, 'env': None}
    (checkpoint / 'train_config.json').write_text(json.dumps(train))
    policy = make_policy(checkpoint)
    assert policy.fps == 15.0 and policy.runner.period == pytest.approx(1 / 15)
    policy.close()
    # By repo id, in LeRobot's dataset cache.
    train['dataset']['root'] = None
    (checkpoint / 'train_config.json').write_text(json.dumps(train))
    monkeypatch.setenv('HF_LEROBOT_HOME', str(tmp_path / 'datasets'))
    assert load(str(checkpoint)).fps == 15.0
    # Dataset gone: refuse to guess, unless the user says.
    shutil.rmtree(dataset)
    with pytest.raises(CheckpointError, match=r'does not say the rate it was trained at .* rate:='):
        make_policy(checkpoint)
    policy = make_policy(checkpoint, rate=20.0)
    assert policy.fps is None and policy.runner.period == pytest.approx(1 / 20)
    policy.close()
