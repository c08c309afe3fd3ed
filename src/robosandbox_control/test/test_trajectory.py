import math

import numpy as np
import pytest

from robosandbox_control.trajectory import (
    JointLimits, plan_trajectory, TrajectoryError, TrajectoryFollower, UnknownJointError)

LIMITS = JointLimits(('a', 'b', 'c'), np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 1.5]))


def test_plan_maps_joint_order():
    plan = plan_trajectory(LIMITS, ['c', 'a'], [1.0], [[0.5, -0.5]])
    assert plan.joints.tolist() == [2, 0]
    assert plan.duration == 1.0


@pytest.mark.parametrize('names, times, positions, message', [
    (['a', 'x'], [1.0], [[0.0, 0.0]], 'unknown joint'),
    (['a', 'a'], [1.0], [[0.0, 0.0]], 'duplicates'),
    ([], [1.0], [[]], 'empty'),
    (['a'], [], [], 'no points'),
    (['a'], [1.0], [[math.nan]], 'NaN'),
    (['a'], [1.0], [[math.inf]], 'NaN or infinite'),
    (['a'], [math.nan], [[0.0]], 'time_from_start is NaN'),
    (['a'], [1.0], [[1.5]], 'outside its limits'),
    (['c'], [1.0], [[-0.1]], 'outside its limits'),
    (['a'], [1.0, 1.0], [[0.0], [0.1]], 'strictly increasing'),
    (['a'], [2.0, 1.0], [[0.0], [0.1]], 'strictly increasing'),
    (['a'], [-1.0], [[0.0]], 'negative'),
    (['a', 'b'], [1.0], [[0.0]], 'has 1 positions for 2 joints'),
])
def test_bad_trajectories_are_refused(names, times, positions, message):
    with pytest.raises(TrajectoryError, match=message):
        plan_trajectory(LIMITS, names, times, positions)


def test_unknown_joint_has_its_own_type():
    with pytest.raises(UnknownJointError):
        plan_trajectory(LIMITS, ['zz'], [1.0], [[0.0]])


def test_follower_interpolates_from_current_target_and_holds_the_end():
    follower = TrajectoryFollower(np.array([0.0, 0.0, 0.5]))
    follower.start(plan_trajectory(LIMITS, ['a'], [1.0, 2.0], [[1.0], [-1.0]]), start_time=10.0)
    assert follower.sample(10.0)[0] == pytest.approx(0.0)
    assert follower.sample(10.5)[0] == pytest.approx(0.5)
    assert follower.sample(11.5)[0] == pytest.approx(0.0)
    assert follower.sample(13.0).tolist() == pytest.approx([-1.0, 0.0, 0.5])
    assert not follower.active
    assert follower.sample(20.0)[0] == pytest.approx(-1.0)


def test_follower_hermite_uses_velocities():
    follower = TrajectoryFollower(np.zeros(3))
    plan = plan_trajectory(LIMITS, ['b'], [0.0, 1.0], [[0.0], [1.0]], [[0.0], [0.0]])
    follower.start(plan, start_time=0.0)
    # Zero end velocities: a smooth S curve, symmetric about the midpoint.
    assert follower.sample(0.25)[1] == pytest.approx(0.15625)
    assert follower.sample(0.5)[1] == pytest.approx(0.5)


def test_new_plan_replaces_running_one_and_hold_stops():
    follower = TrajectoryFollower(np.zeros(3))
    first = follower.start(plan_trajectory(LIMITS, ['a'], [1.0], [[1.0]]), 0.0)
    follower.sample(0.5)
    second = follower.start(plan_trajectory(LIMITS, ['a'], [1.0], [[-1.0]]), 0.5)
    assert second != first
    # Starts from where the first plan had got to, not from zero.
    assert follower.sample(1.0)[0] == pytest.approx(0.5 + 0.5 * (-1.0 - 0.5))
    follower.hold()
    held = follower.sample(5.0)[0]
    assert held == pytest.approx(-0.25)
