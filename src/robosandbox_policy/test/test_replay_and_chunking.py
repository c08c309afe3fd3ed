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
