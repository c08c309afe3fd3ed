"""``robosandbox eval`` end to end: lockstep runs, their verdicts, their files.

Each test runs the sim_eval bringup as a user does (``robosandbox eval``), with
policies of ``user_policies`` loaded through the plugin point.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

HERE = Path(__file__).resolve().parent


def evaluate(out: Path, *options: str, timeout: float = 300.0) -> tuple[list[dict], dict, str]:
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(HERE), os.environ.get('PYTHONPATH')]))}
    process = subprocess.run(
        [sys.executable, '-m', 'robosandbox_cli.main', 'eval', '--out', str(out), *options],
        env=env, capture_output=True, text=True, timeout=timeout)
    output = process.stdout + process.stderr
    assert process.returncode == 0, output
    episodes = [json.loads(line) for line in (out / 'episodes.jsonl').read_text().splitlines()]
    return episodes, json.loads((out / 'summary.json').read_text()), output


def test_the_same_evaluation_twice_gives_the_same_verdicts(tmp_path):
    first, summary, output = evaluate(tmp_path / 'a', '--episodes', '2', '--seed', '7', '--video', 'front')
    again, _, _ = evaluate(tmp_path / 'b', '--episodes', '2', '--seed', '7')
    # Not only the verdicts: lockstep makes every tick the same.
    assert first == again
    assert [e['seed'] for e in first] == [7, 8] and all(e['missed_ticks'] == 0 for e in first)
    assert all(e['verdict'] == 'SUCCESS' and 0 < e['time_to_success'] < e['elapsed'] for e in first)
    assert summary['success_rate'] == 1.0 and summary['episodes'] == 2 and summary['policy'] == 'expert'
    assert summary['ci95'][0] < 1.0 == summary['ci95'][1]
    assert 'expert on pick_cube: 2/2 succeeded' in output and '[####################] episode 2/2' in output
    videos = sorted((tmp_path / 'a' / 'videos').glob('*.mp4'))
    assert [v.name for v in videos] == ['episode_0000_seed_7.mp4', 'episode_0001_seed_8.mp4']
    import av
    with av.open(str(videos[0])) as video:
        frames = sum(1 for _ in video.decode(video=0))
    assert frames >= 30 * first[0]['elapsed'] - 2              # a frame per tick, none lost


def test_lockstep_waits_for_a_slow_policy_where_real_time_misses_ticks(tmp_path):
    # 0.1 s per tick at 30 Hz: three times slower than real time.
    slow = ('--policy', 'user_policies:SlowHold', '--episodes', '1', 'max_duration:=1.0')
    (lockstep,), _, _ = evaluate(tmp_path / 'lockstep', *slow)
    assert lockstep['missed_ticks'] == 0 and lockstep['steps'] == 31        # ticks 0 .. 30 of 1 s
    assert lockstep['end_reason'] == '1 s' and lockstep['verdict'] == 'FAILURE'
    (real_time,), _, _ = evaluate(tmp_path / 'real_time', *slow, '--real-time')
    assert real_time['missed_ticks'] > 0 and real_time['steps'] < 31     # as many as the wall clock allowed


def test_a_run_stopped_on_a_bad_target_is_a_failure_even_with_the_cube_up(tmp_path):
    (episode,), summary, output = evaluate(
        tmp_path / 'r', '--policy', 'user_policies:OverreachOnceLifted', '--episodes', '1')
    assert episode['verdict'] == 'FAILURE' and not episode['success']
    assert "out-of-range targets {'wrist_flex': 3.0}" in episode['end_reason']
    assert episode['time_to_success'] is None and summary['successes'] == 0
    assert 'success=True' in output       # the task did report success: it did not hold


def robosandbox(*args: str, timeout: float = 300.0) -> str:
    process = subprocess.run([sys.executable, '-m', 'robosandbox_cli.main', *args],
                             capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout + process.stderr


def test_record_then_replay_the_bag_and_the_dataset_episode_reaches_the_same_success(tmp_path):
    # The original RoboSandbox tutorial: record a demonstration, replay it.
    robosandbox('launch', 'sim_record', 'episodes:=1', 'seed:=3', 'lockstep:=true',
                f'runs_dir:={tmp_path / "runs"}')
    bag, = (tmp_path / 'runs').iterdir()
    (replayed,), _, _ = evaluate(tmp_path / 'bag', '--policy', f'replay:{bag}', '--episodes', '1', '--seed', '3')
    assert replayed['verdict'] == 'SUCCESS', replayed
    # The same episode through a LeRobot dataset in LeRobot's SO-101 units (degrees, 0-100).
    robosandbox('export-lerobot', str(tmp_path / 'runs'), str(tmp_path / 'dataset'), '--units', 'lerobot_so101',
                '--no-progress')
    (from_dataset,), _, _ = evaluate(tmp_path / 'ds', '--policy', f'replay:{tmp_path / "dataset"}#0',
                                     '--episodes', '1', '--seed', '3')
    assert from_dataset['verdict'] == 'SUCCESS', from_dataset
    assert abs(from_dataset['time_to_success'] - replayed['time_to_success']) < 0.2
