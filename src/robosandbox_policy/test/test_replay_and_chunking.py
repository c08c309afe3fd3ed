"""Trajectory files, open-loop replay, and chunked inference off the control path."""

import threading

import numpy as np
import pytest

from robosandbox_policy.chunking import ChunkRunner
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError
from robosandbox_policy.replay import read_trajectory, ReplayPolicy, TrajectoryFileError, write_trajectory

JOINTS = ('a', 'b')


def obs(t, q=(0.0, 0.0)):
    return Observation(time=t, joint_positions=np.array(q, dtype=float))


def test_trajectory_files_round_trip(tmp_path):
    path = tmp_path / 'traj.csv'
    write_trajectory(path, JOINTS, [0.0, 0.5, 1.0], [[0, 0], [0.5, -0.5], [1, -1]])
    names, times, positions = read_trajectory(path)
    assert names == JOINTS
    np.testing.assert_allclose(times, [0, 0.5, 1.0])
    np.testing.assert_allclose(positions[2], [1, -1])


@pytest.mark.parametrize('text, message', [
    ('', 'first line'),
    ('time,a\n0,1\n0,2\n', 'strictly increase'),
    ('time,a\n0,nan\n', 'NaN'),
    ('time,a,b\n0,1\n', '2 values, expected 3'),
    ('time,a\n0,x\n', 'traj.csv:2'),
    ('time,a\n', 'no targets'),
])
def test_bad_trajectory_files_are_refused(tmp_path, text, message):
    path = tmp_path / 'traj.csv'
    path.write_text(text)
    with pytest.raises(TrajectoryFileError, match=message):
        read_trajectory(path)


def test_replay_interpolates_looks_ahead_and_ends(tmp_path):
    path = tmp_path / 'traj.csv'
    write_trajectory(path, JOINTS, [10.0, 11.0], [[0, 0], [1, 2]])   # times are made relative
    replay = ReplayPolicy(path)
    np.testing.assert_allclose(replay.act(obs(100.0)), [0, 0])
    np.testing.assert_allclose(replay.act(obs(100.5)), [0.5, 1.0])
    assert not replay.done
    np.testing.assert_allclose(replay.act(obs(101.0)), [1, 2])
    assert replay.done
    ahead = ReplayPolicy(path, lookahead=0.25)
    ahead.act(obs(0.0))
    np.testing.assert_allclose(ahead.act(obs(0.5)), [0.75, 1.5])
    replay.reset()
    assert not replay.done


def chunk_of(obs_):
    # Each chunk continues from the observation's first joint: action k is value + k.
    return obs_.joint_positions[0] + np.arange(10.0)[:, None] * np.ones((1, 2))


def test_chunks_skip_the_ticks_inference_took():
    gate = threading.Event()

    def slow(o):
        gate.wait(5.0)
        return chunk_of(o)

    runner = ChunkRunner(slow, period=0.01)
    try:
        assert runner.next(obs(0, (100, 0)), tick=0) is None      # inference started
        assert runner.next(obs(0, (999, 0)), tick=1) is None      # still busy: no second one
        gate.set()
        deadline = 200
        action = None
        tick = 2
        while action is None and deadline:
            threading.Event().wait(0.01)
            action = runner.next(obs(0, (999, 0)), tick=tick)
            tick += 1
            deadline -= 1
        # The chunk came from tick 0's observation; used at tick t, it starts at action t.
        assert action[0] == pytest.approx(100 + tick - 1)
    finally:
        runner.close()


def test_inference_errors_stop_the_run_and_reset_drops_stale_chunks():
    def broken(o):
        raise RuntimeError('bad weights')

    runner = ChunkRunner(broken, period=0.01)
    try:
        runner.next(obs(0), 0)
        with pytest.raises(PolicyError, match='bad weights'):
            for tick in range(1, 300):
                threading.Event().wait(0.01)
                runner.next(obs(0), tick)
    finally:
        runner.close()

    runner = ChunkRunner(chunk_of, period=0.01)
    try:
        runner.next(obs(0, (5, 0)), 0)
        threading.Event().wait(0.2)
        runner.reset()                       # a new run: the pending chunk is not used
        assert runner.next(obs(0, (7, 0)), 0) is None
        threading.Event().wait(0.2)
        assert runner.next(obs(0, (7, 0)), 1)[0] == pytest.approx(8)
    finally:
        runner.close()


def write_dataset(root, names, episodes):
    """A LeRobot v3 dataset's meta/info.json and one data file: ``episodes`` is
    ``{index: (timestamps, actions)}``."""
    import json
    import pyarrow as pa
    import pyarrow.parquet as pq
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'info.json').write_text(json.dumps({
        'codebase_version': 'v3.0', 'fps': 30, 'total_episodes': len(episodes),
        'features': {'action': {'dtype': 'float32', 'shape': [len(names)], 'names': names}}}))
    rows = [(i, t, a) for i, (times, actions) in episodes.items() for t, a in zip(times, actions)]
    (root / 'data' / 'chunk-000').mkdir(parents=True)
    pq.write_table(pa.table({'episode_index': [r[0] for r in rows], 'timestamp': [r[1] for r in rows],
                             'action': [list(r[2]) for r in rows]}),
                   root / 'data' / 'chunk-000' / 'file-000.parquet')


def test_a_lerobot_dataset_episode_replays_in_radians(tmp_path):
    from robosandbox_policy.replay import read_source
    names = ['shoulder_pan.pos', 'gripper.pos']
    write_dataset(tmp_path / 'd', names, {0: ([0.0, 1 / 30], [[0.0, 0.0], [1.0, 1.0]]),
                                          1: ([0.0, 1 / 30, 2 / 30], [[90.0, 0.0], [-90.0, 50.0], [0.0, 100.0]])})
    joints, times, positions = read_source(f'{tmp_path / "d"}#1', 'gripper', (-0.2, 1.8))
    assert joints == ('shoulder_pan', 'gripper')
    np.testing.assert_allclose(times, [0.0, 1 / 30, 2 / 30])
    np.testing.assert_allclose(positions[:, 0], [np.pi / 2, -np.pi / 2, 0.0])
    np.testing.assert_allclose(positions[:, 1], [-0.2, 0.8, 1.8])      # 0-100 across the gripper's range
    with pytest.raises(TrajectoryFileError, match='no episode 5'):
        read_source(f'{tmp_path / "d"}#5')
    with pytest.raises(TrajectoryFileError, match='must be an index'):
        read_source(f'{tmp_path / "d"}#first')
    with pytest.raises(TrajectoryFileError, match='needs a LeRobot dataset'):
        read_source(f'{tmp_path}#0')


def test_a_synchronous_runner_infers_in_line_once_the_chunk_is_spent():
    # Lockstep: every tick gets an action, chunks start at the tick that asked.
    calls = []

    def infer(obs):
        calls.append(obs.time)
        return np.arange(3)[:, None] + 10 * len(calls) + np.zeros((3, 2))
    runner = ChunkRunner(infer, 1 / 30, synchronous=True)
    actions = [runner.next(Observation(time=float(t), joint_positions=np.zeros(2)), t)[0] for t in range(7)]
    assert actions == [10, 11, 12, 20, 21, 22, 30] and calls == [0.0, 3.0, 6.0]
    runner.close()
