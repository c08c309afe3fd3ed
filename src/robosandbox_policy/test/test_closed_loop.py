"""The learning loop at toy scale: record -> export -> lerobot-train -> robosandbox eval.

``bench/closed_loop.py --toy`` (2 expert episodes, 3 training steps, 1 evaluation
episode of 1 s) as a user runs it. What is checked is that each stage hands the next
what it needs, not that the policy succeeds.
"""

import json
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

PIPELINE = Path(__file__).resolve().parents[3] / 'bench' / 'closed_loop.py'


def test_each_stage_hands_the_next_what_it_needs(tmp_path):
    work = tmp_path / 'loop'
    process = subprocess.run([sys.executable, str(PIPELINE), '--toy', '--work', str(work)],
                             capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]

    # record -> export: two complete episode bags with the targets the export takes.
    from robosandbox_data.episodes.bag import read_info
    bags = sorted((work / 'runs').iterdir())
    assert len(bags) == 2 and all(read_info(b).complete and read_info(b).succeeded for b in bags)

    # export -> train: a dataset LeRobot loads, at the recorded 96x128.
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    dataset = LeRobotDataset('local/pick_cube', root=work / 'dataset')
    assert dataset.num_episodes == 2 and dataset.fps == 30
    assert tuple(dataset.meta.features['observation.images.front']['shape']) == (96, 128, 3)

    # train -> evaluate: a checkpoint whose inputs are the dataset's, and whose control
    # rate can be found (its dataset is at hand), with the loss logged.
    from robosandbox_policy.checkpoint import load
    checkpoint = work / 'train' / 'checkpoints' / 'last' / 'pretrained_model'
    loaded = load(str(checkpoint))
    assert loaded.fps == 30.0
    assert set(loaded.config.image_features) == {'observation.images.front', 'observation.images.wrist'}
    assert loaded.config.robot_state_feature.shape == (6,)
    result = json.loads((work / 'closed_loop.json').read_text())
    assert result['loss'] and result['training_steps'] == 3

    # evaluate: the checkpoint drove the sim through the policy node for the whole second.
    episode, = [json.loads(line) for line in (work / 'eval' / 'episodes.jsonl').read_text().splitlines()]
    assert episode['end_reason'] == '1 s' and episode['steps'] == 31 and episode['missed_ticks'] == 0
    assert result['evaluation']['episodes'] == 1
    assert 'closed loop (images): 2 expert episodes, 3 training steps' in process.stdout

    # The state-based loop on the same recording: joints and the cube's pose, no image,
    # its checkpoint chosen on a validation seed.
    process = subprocess.run([sys.executable, str(PIPELINE), '--toy', '--inputs', 'state', '--select', '1',
                              '--work', str(work)],
                             capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert '[record] already done' in process.stdout
    dataset = LeRobotDataset('local/pick_cube_state', root=work / 'dataset_state')
    assert dataset.meta.video_keys == [] and dataset.num_episodes == 2
    assert dataset.meta.features['observation.environment_state']['names'][:3] == ['cube.x', 'cube.y', 'cube.z']
    loaded = load(str(work / 'train_state' / 'checkpoints' / 'last' / 'pretrained_model'))
    assert not loaded.config.image_features and loaded.config.env_state_feature.shape == (7,)
    episode, = [json.loads(line) for line in (work / 'eval_state' / 'episodes.jsonl').read_text().splitlines()]
    assert episode['end_reason'] == '1 s' and episode['steps'] == 31 and episode['missed_ticks'] == 0
    # Every kept checkpoint (steps 1, 2, 3) was validated on its own seed, never a test one;
    # none can succeed in 1 s, so the tie goes to the last, the one evaluated above.
    result = json.loads((work / 'closed_loop_state.json').read_text())
    assert sorted(result['validation_success_by_step']) == ['1', '2', '3']
    assert result['evaluated_step'] == 3
    for step in (1, 2, 3):
        summary = json.loads((work / f'validate_state_{step}' / 'summary.json').read_text())
        assert summary['seeds'] == [200000], summary
