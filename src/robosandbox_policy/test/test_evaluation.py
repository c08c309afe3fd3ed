"""Evaluation results, their statistics, verdicts and users' policies: ROS-free parts."""

import json
import sys

import numpy as np
import pytest

from robosandbox_description.robot import load_robot
from robosandbox_msgs.action import RunPolicy
from robosandbox_policy import evaluation
from robosandbox_policy.episode_runner import verdict
from robosandbox_policy.evaluation import (
    comparison, EpisodeResult, fisher_exact, mcnemar_exact, read_results, ResultsError,
    ResultsWriter, wilson_interval)
from robosandbox_policy.factory import make_policy
from robosandbox_policy.observation import Observation
from robosandbox_policy.plugins import PluginError
from robosandbox_policy.policy import PolicyError

Result = RunPolicy.Result


def test_wilson_interval_matches_published_values():
    # 5/20: the first ACT trial, "Wilson 95 % interval 11-47 %".
    low, high = wilson_interval(5, 20)
    assert (round(100 * low), round(100 * high)) == (11, 47)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_significance_tests():
    assert fisher_exact(1, 10, 9, 10) == pytest.approx(0.001093, rel=1e-3)
    assert fisher_exact(5, 10, 5, 10) == pytest.approx(1.0)
    assert fisher_exact(3, 10, 4, 10) == pytest.approx(fisher_exact(4, 10, 3, 10))
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(3, 3) == 1.0


@pytest.mark.parametrize('end_reason, success, known, expected', [
    (Result.SUCCEEDED, True, True, 'SUCCESS'),
    # Stopped on an out-of-limit target while the cube was up: not a success.
    (Result.POLICY_ERROR, True, True, 'FAILURE'),
    # Success reported at the end but not held for success_hold.
    (Result.MAX_DURATION, True, True, 'FAILURE'),
    (Result.MAX_DURATION, False, False, 'UNKNOWN'),      # no task status: a person judges
    (Result.POLICY_ERROR, False, False, 'FAILURE'),
])
def test_a_success_counts_only_when_it_held(end_reason, success, known, expected):
    assert verdict(Result(end_reason=end_reason, success=success, success_known=known)) == expected


def episode(i, success, seed=None):
    return EpisodeResult(episode=i, seed=100 + i if seed is None else seed, success=success,
                         verdict='SUCCESS' if success else 'FAILURE',
                         time_to_success=2.0 + i if success else None, elapsed=3.0, steps=90,
                         missed_ticks=0, end_reason='task succeeded' if success else '20 s')


def test_results_are_written_episode_by_episode_then_summarized(tmp_path):
    writer = ResultsWriter(tmp_path / 'a')
    for i, success in enumerate([True, False, True, True]):
        writer.add(episode(i, success))
    # An interrupted evaluation keeps the episodes it ran.
    assert len((tmp_path / 'a' / 'episodes.jsonl').read_text().splitlines()) == 4
    summary = writer.finish(policy='expert', task='pick_cube')
    again, episodes = read_results(tmp_path / 'a')
    assert again == json.loads(json.dumps(summary))
    assert summary['success_rate'] == 0.75 and summary['ci95'] == [round(v, 4) for v in wilson_interval(3, 4)]
    assert summary['median_time_to_success'] == 4.0   # of 2, 4 and 5 s and summary['seeds'] == [100, 101, 102, 103]
    assert {'python', 'robosandbox_policy', 'lerobot', 'torch', 'mujoco'} <= set(summary['versions'])
    assert [e['success'] for e in episodes] == [True, False, True, True]


def test_a_run_that_fails_at_its_start_leaves_no_results_directory(tmp_path):
    # A policy that does not load ends the run before its first episode: an empty
    # evals/<date-time> was left behind, and read as a result by nothing.
    ResultsWriter(tmp_path / 'never')
    assert not (tmp_path / 'never').exists()
    (tmp_path / 'again').mkdir()
    (tmp_path / 'again' / 'episodes.jsonl').write_text('{"old": 1}\n')
    writer = ResultsWriter(tmp_path / 'again')
    assert (tmp_path / 'again' / 'episodes.jsonl').read_text() == '{"old": 1}\n'    # until an episode ends
    writer.add(episode(0, True))
    assert len((tmp_path / 'again' / 'episodes.jsonl').read_text().splitlines()) == 1
    ResultsWriter(tmp_path / 'none').finish(policy='expert', task='pick_cube')       # --episodes 0
    assert read_results(tmp_path / 'none')[0]['episodes'] == 0


def test_compare_prints_both_runs_and_the_significance(tmp_path, capsys):
    for name, outcomes in (('a', [False] * 9 + [True]), ('b', [True] * 9 + [False])):
        writer = ResultsWriter(tmp_path / name)
        for i, success in enumerate(outcomes):
            writer.add(episode(i, success))
        writer.finish(policy=f'policy_{name}', task='pick_cube')
    text = comparison(tmp_path / 'a', tmp_path / 'b')
    assert 'policy_a' in text and 'policy_b' in text
    assert '1/10 = 10 %' in text and '9/10 = 90 %' in text
    assert 'difference: +80 points; Fisher exact p = 0.00109 (significant at 5 %)' in text
    assert 'on the 10 shared seeds: 1 succeeded only in the first, 9 only in the second' in text
    from robosandbox_cli.main import main
    assert main(['eval', '--compare', str(tmp_path / 'a'), str(tmp_path / 'b')]) == 0
    assert 'Fisher' in capsys.readouterr().out
    with pytest.raises(ResultsError, match='no summary.json'):
        comparison(tmp_path, tmp_path / 'b')
    assert main(['eval', '--compare', str(tmp_path), str(tmp_path / 'b')]) == 2


# --- users' policies -----------------------------------------------------------------

ROBOT = load_robot('so101')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / 'my_policies.py').write_text(
        'import numpy as np\n'
        'class Wave:\n'
        '    fps = 15.0\n'
        '    def __init__(self, robot):\n'
        '        self.home = np.array([robot.home[j] for j in robot.joints])\n'
        '    def act(self, obs):\n'
        '        return self.home + [0.1 * np.sin(obs.time), 0, 0, 0, 0, 0]\n'
        'class Broken:\n'
        '    def __init__(self, robot):\n'
        '        pass\n'
        '    def act(self, obs):\n'
        '        raise KeyError("cube")\n'
        'class NoAct:\n'
        '    def __init__(self, robot):\n'
        '        pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop('my_policies', None)


def test_a_users_class_is_a_policy_with_the_protocols_defaults(user_module):
    policy = make_policy('my_policies:Wave', ROBOT)
    assert policy.joint_names == ROBOT.joints and policy.image_topics == {}
    assert policy.fps == 15.0 and not policy.needs_object_poses and not policy.done
    policy.reset()
    action = policy.act(Observation(time=np.pi / 2, joint_positions=np.zeros(6)))
    assert action[0] == pytest.approx(ROBOT.home['shoulder_pan'] + 0.1)
    with pytest.raises(PolicyError, match=r"Broken.act failed: KeyError\('cube'\)"):
        make_policy('my_policies:Broken', ROBOT).act(Observation(time=0.0, joint_positions=np.zeros(6)))


@pytest.mark.parametrize('spec, message', [
    ('my_policies:NoAct', 'NoAct has no act(observation) method'),
    ('my_policies:Missing', "cannot load policy 'my_policies:Missing'"),
    ('no_such_module:Policy', "No module named 'no_such_module'"),
])
def test_a_users_class_that_cannot_serve_fails_at_configure(user_module, spec, message):
    with pytest.raises(PluginError, match=message.replace('(', r'\(').replace(')', r'\)')):
        make_policy(spec, ROBOT)


def test_policies_are_found_by_entry_point(user_module, monkeypatch):
    info = user_module / 'my_policies-1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: my-policies\nVersion: 1.0\n')
    (info / 'entry_points.txt').write_text('[robosandbox.policies]\nwave = my_policies:Wave\n')
    assert make_policy('wave', ROBOT).fps == 15.0


def test_an_unknown_policy_lists_what_is_accepted(tmp_path):
    from robosandbox_policy.checkpoint import CheckpointError
    (tmp_path / 'notes').mkdir()
    for spec in (str(tmp_path / 'nowhere'), str(tmp_path / 'notes')):
        with pytest.raises(CheckpointError, match='policy must be one of: expert; hold; replay:') as e:
            make_policy(spec, ROBOT)
        assert 'package.module:Class' in str(e.value) and 'robosandbox.policies' in str(e.value)
    from robosandbox_policy.replay import TrajectoryFileError
    with pytest.raises(TrajectoryFileError, match="'replay:' names no recording\npolicy must be one of"):
        make_policy('replay:', ROBOT)


def test_eval_passes_its_options_as_launch_arguments(monkeypatch, tmp_path):
    seen = {}

    def run_bringup(name, arguments):
        seen.update(arguments, bringup=name)
        ResultsWriter(arguments['results_dir']).finish(policy=arguments['policy'], task=arguments['task'])
        return 0
    import robosandbox_cli.main as cli
    monkeypatch.setattr(cli, 'run_bringup', run_bringup)
    assert cli.main(['eval', '--policy', 'hold', '--episodes', '4', '--out', str(tmp_path / 'r'),
                     '--video', 'front', 'torch_threads:=2']) == 0
    assert seen == {'bringup': 'sim_eval', 'policy': 'hold', 'task': 'pick_cube', 'episodes': '4',
                    'seed': '100000', 'results_dir': str(tmp_path / 'r'), 'lockstep': 'true',
                    'video': 'front', 'torch_threads': '2'}
    assert cli.main(['eval', '--real-time', '--out', str(tmp_path / 's')]) == 0
    assert seen['lockstep'] == 'false'
    assert evaluation.SUMMARY_FILE in {p.name for p in (tmp_path / 's').iterdir()}
