"""Joint trajectory checking and interpolation, free of ROS.

A backend (the MuJoCo simulation or the servo bus) owns one
:class:`TrajectoryFollower` and samples it every control tick; commands reach it
only through :func:`plan_trajectory`, which refuses anything unsafe instead of
clamping it, so a bad command leaves the arm holding its current target.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from collections.abc import Sequence

import numpy as np


class TrajectoryError(ValueError):
    """A trajectory command was refused; the message says why."""


class UnknownJointError(TrajectoryError):
    """The command names a joint the arm does not have."""


@dataclass(frozen=True)
class JointLimits:
    """Position limits (rad) of the joints a backend commands, in its joint order."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f'duplicate joint names: {self.names}')
        if not (len(self.names) == len(self.lower) == len(self.upper)):
            raise ValueError('names, lower and upper must have the same length')
        if np.any(np.asarray(self.lower) > np.asarray(self.upper)):
            raise ValueError('a lower limit is above its upper limit')

    def indices(self, joint_names: Sequence[str]) -> np.ndarray:
        """Indices of ``joint_names`` in this joint order; unknown names are an error."""
        if not joint_names:
            raise TrajectoryError('joint_names is empty')
        if len(set(joint_names)) != len(joint_names):
            raise TrajectoryError(f'joint_names has duplicates: {list(joint_names)}')
        unknown = [n for n in joint_names if n not in self.names]
        if unknown:
            raise UnknownJointError(
                f'unknown joint(s) {unknown}; this arm has {list(self.names)}')
        return np.array([self.names.index(n) for n in joint_names], dtype=np.intp)

    def clip(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(positions, self.lower, self.upper)


@dataclass(frozen=True)
class TrajectoryPlan:
    """A checked trajectory over a subset of the backend's joints."""

    joints: np.ndarray                # indices into JointLimits.names
    times: np.ndarray                 # (n,) seconds from the start, strictly increasing
    positions: np.ndarray             # (n, len(joints)) rad
    velocities: np.ndarray | None     # (n, len(joints)) rad/s, or None for linear

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def plan_trajectory(
    limits: JointLimits,
    joint_names: Sequence[str],
    times: Sequence[float],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]] | None = None,
) -> TrajectoryPlan:
    """Check a trajectory command and turn it into a plan.

    Refused, with a :class:`TrajectoryError` naming the problem: unknown or
    duplicate joints, no points, rows of the wrong length, NaN or infinite
    values, positions outside the joint limits, negative or non-increasing
    times. Velocities are used (cubic Hermite) only when every point has them.
    """
    joints = limits.indices(joint_names)
    if len(positions) == 0:
        raise TrajectoryError('trajectory has no points')
    if len(times) != len(positions):
        raise TrajectoryError('times and positions differ in length')
    for i, row in enumerate(positions):
        if len(row) != len(joints):
            raise TrajectoryError(
                f'point {i} has {len(row)} positions for {len(joints)} joints')
    pos = np.asarray(positions, dtype=float).reshape(len(positions), len(joints))
    t = np.asarray(times, dtype=float)
    if not np.all(np.isfinite(t)):
        raise TrajectoryError('time_from_start is NaN or infinite')
    if not np.all(np.isfinite(pos)):
        bad = sorted({joint_names[j] for j in np.argwhere(~np.isfinite(pos))[:, 1]})
        raise TrajectoryError(f'position is NaN or infinite for {bad}')
    if t[0] < 0.0:
        raise TrajectoryError('time_from_start of the first point is negative')
    if np.any(np.diff(t) <= 0.0):
        raise TrajectoryError('time_from_start is not strictly increasing')
    lower, upper = limits.lower[joints], limits.upper[joints]
    outside = (pos < lower - 1e-9) | (pos > upper + 1e-9)
    if np.any(outside):
        i, j = np.argwhere(outside)[0]
        raise TrajectoryError(
            f'point {i}: {joint_names[j]}={pos[i, j]:.4f} rad is outside its limits '
            f'[{lower[j]:.4f}, {upper[j]:.4f}]')

    vel = None
    if velocities is not None and len(velocities) == len(pos) and all(
            len(v) == len(joints) for v in velocities):
        vel = np.asarray(velocities, dtype=float).reshape(pos.shape)
        if not np.all(np.isfinite(vel)):
            raise TrajectoryError('velocity is NaN or infinite')
    return TrajectoryPlan(joints=joints, times=t, positions=pos, velocities=vel)


class TrajectoryFollower:
    """Turns plans into position targets over time.

    The plan starts from the target held when it arrives (not from the
    measured position), so the command stays continuous. A new plan replaces
    the running one, as control_msgs' trajectory controllers do.
    """

    def __init__(self, initial_target: np.ndarray):
        self._target = np.array(initial_target, dtype=float)
        self._plan: TrajectoryPlan | None = None
        self._start_time = 0.0
        self._start_positions = np.zeros(0)
        self.plan_id = 0

    @property
    def target(self) -> np.ndarray:
        return self._target.copy()

    @property
    def active(self) -> bool:
        return self._plan is not None

    def start(self, plan: TrajectoryPlan, start_time: float) -> int:
        """Follow ``plan`` from ``start_time``; returns an id that identifies it."""
        self._plan = plan
        self._start_time = start_time
        self._start_positions = self._target[plan.joints].copy()
        self.plan_id += 1
        return self.plan_id

    def hold(self, positions: np.ndarray | None = None) -> None:
        """Stop following; keep the current target, or hold ``positions``."""
        self._plan = None
        if positions is not None:
            self._target = np.array(positions, dtype=float)

    def end_time(self) -> float:
        return self._start_time + self._plan.duration if self._plan else math.nan

    def sample(self, now: float) -> np.ndarray:
        """Advance to ``now`` and return the full target vector."""
        plan = self._plan
        if plan is None:
            return self._target
        t = now - self._start_time
        if t <= 0.0:
            return self._target
        if t >= plan.duration:
            self._target[plan.joints] = plan.positions[-1]
            self._plan = None
            return self._target
        times = np.concatenate(([0.0], plan.times)) if plan.times[0] > 0 else plan.times
        points = (np.vstack((self._start_positions, plan.positions))
                  if plan.times[0] > 0 else plan.positions)
        k = int(np.searchsorted(times, t, side='right')) - 1
        t0, t1 = times[k], times[k + 1]
        p0, p1 = points[k], points[k + 1]
        s = (t - t0) / (t1 - t0)
        if plan.velocities is None:
            value = p0 + s * (p1 - p0)
        else:
            vels = (np.vstack((np.zeros(len(plan.joints)), plan.velocities))
                    if plan.times[0] > 0 else plan.velocities)
            h = t1 - t0
            v0, v1 = vels[k] * h, vels[k + 1] * h
            s2, s3 = s * s, s * s * s
            value = ((2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * v0
                     + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * v1)
        self._target[plan.joints] = value
        return self._target
