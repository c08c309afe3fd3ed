"""The scripted expert solves pick_cube on the MuJoCo model, in-process."""

import numpy as np
import pytest

from robosandbox_policy.expert import PickPlaceExpert
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError
from robosandbox_sim.simulation import Simulation

CONTROL_STEPS = 17   # 2 ms physics steps per 30 Hz tick


@pytest.fixture(scope='module')
def sim():
    sim = Simulation('so101', 'pick_cube')
    yield sim
    sim.close()


@pytest.fixture(scope='module')
def expert():
    return PickPlaceExpert('so101')


def run_episode(sim, expert, seed, seconds=8.0):
    sim.reset('pick_cube', seed)
    expert.reset()
    start = sim.time
    while sim.time - start < seconds:
        status = sim.status()
        if status.success and expert.phase == 'hold':
            return True
        obs = Observation(time=sim.time, joint_positions=sim.joint_positions(),
                          object_poses=status.object_poses)
        sim.set_targets(expert.act(obs))
        sim.step(CONTROL_STEPS)
    return sim.status().success


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4, 5])
def test_expert_picks_the_cube(sim, expert, seed):
    assert run_episode(sim, expert, seed)


def test_expert_targets_stay_within_limits_and_move_smoothly(sim, expert):
    sim.reset('pick_cube', 7)
    expert.reset()
    lo, hi = sim.joint_limits()
    # The arm keeps clear of its limits by the margin a learned imitation needs.
    margin = expert.config.limit_margin
    assert margin > 0
    arm = slice(0, 5)
    previous = None
    for _ in range(150):
        obs = Observation(time=sim.time, joint_positions=sim.joint_positions(),
                          object_poses=sim.status().object_poses)
        target = expert.act(obs)
        assert np.all(target >= lo) and np.all(target <= hi)
        assert np.all(target[arm] >= lo[arm] + margin - 1e-9), target
        assert np.all(target[arm] <= hi[arm] - margin + 1e-9), target
        if previous is not None:
            # Arm joints move at a bounded speed: no jumps between 30 Hz ticks.
            assert np.max(np.abs(target[:5] - previous[:5])) < 0.25
        previous = target
        sim.set_targets(target)
        sim.step(CONTROL_STEPS)


def test_expert_needs_the_object_pose(expert):
    expert.reset()
    with pytest.raises(PolicyError, match="pose of 'cube'"):
        expert.act(Observation(time=0.0, joint_positions=np.zeros(6)))


def grasp_wrist_roll(expert, xy, yaw):
    """The wrist_roll target with which the expert closes on a cube at ``xy``, ``yaw``."""
    expert.reset()
    quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    poses = {'cube': (np.array([xy[0], xy[1], 0.0125]), quat)}
    q = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])
    for tick in range(600):
        q = expert.act(Observation(time=tick / 30, joint_positions=q, object_poses=poses))
        if expert.phase == 'close':
            return q[4]
    raise AssertionError('the expert never reached the cube')


def test_expert_grasp_is_continuous_in_the_cube_yaw(expert):
    # A policy learns the grasp from the demonstrations: over the task's yaw range
    # the jaws' direction must follow the cube smoothly, never switch faces (a
    # quarter turn of the wrist between neighbouring yaws).
    yaws = np.linspace(-0.8, 0.8, 17)
    for xy in [(0.2, 0.07), (0.25, -0.07)]:
        rolls = np.array([grasp_wrist_roll(expert, xy, yaw) for yaw in yaws])
        steps = np.abs(np.diff(rolls))
        assert steps.max() < 0.2, (xy, rolls)
