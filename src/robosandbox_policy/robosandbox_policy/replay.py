"""Open-loop replay of recorded joint targets.

Until episodes are recorded as bags, a trajectory file is CSV: a header
``time,<joint>,<joint>,...`` then one row per target, time in seconds from the
start of the episode and positions in radians. Targets between rows are
interpolated linearly; ``lookahead`` (s) commands each target that much early,
to make up for the servos' lag.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from robosandbox_policy.observation import Observation


class TrajectoryFileError(ValueError):
    """A trajectory file cannot be replayed; the message names the line."""


def read_trajectory(path: str | Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Joint names, times (n,) and positions (n, joints) of a trajectory file."""
    path = Path(path)
    try:
        with path.open(newline='') as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise TrajectoryFileError(f'cannot read trajectory {path}: {e}') from e
    if not rows or len(rows[0]) < 2 or rows[0][0].strip() != 'time':
        raise TrajectoryFileError(f'{path}: the first line must be "time,<joint>,..."')
    names = tuple(n.strip() for n in rows[0][1:])
    data = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            values = [float(v) for v in row]
        except ValueError as e:
            raise TrajectoryFileError(f'{path}:{line}: {e}') from e
        if len(values) != len(names) + 1:
            raise TrajectoryFileError(f'{path}:{line}: {len(values)} values, expected {len(names) + 1}')
        data.append(values)
    table = np.array(data, dtype=float).reshape(-1, len(names) + 1)
    if len(table) == 0:
        raise TrajectoryFileError(f'{path}: no targets')
    if not np.all(np.isfinite(table)):
        raise TrajectoryFileError(f'{path}: NaN or infinite values')
    if np.any(np.diff(table[:, 0]) <= 0):
        raise TrajectoryFileError(f'{path}: times must strictly increase')
    return names, table[:, 0], table[:, 1:]


def write_trajectory(path: str | Path, joint_names, times, positions) -> None:
    with Path(path).open('w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['time', *joint_names])
        for t, q in zip(times, positions):
            writer.writerow([f'{t:.6f}', *(f'{v:.6f}' for v in q)])


class ReplayPolicy:
    image_topics: dict[str, str] = {}
    needs_object_poses = False
    fps = None

    def __init__(self, path: str | Path, lookahead: float = 0.0):
        self.joint_names, self._times, self._positions = read_trajectory(path)
        self._times = self._times - self._times[0]
        self.lookahead = float(lookahead)
        self.reset()

    def reset(self) -> None:
        self.done = False
        self._start = None

    def act(self, obs: Observation) -> np.ndarray:
        if self._start is None:
            self._start = obs.time
        t = obs.time - self._start + self.lookahead
        if t >= self._times[-1]:
            self.done = obs.time - self._start >= self._times[-1]
            return self._positions[-1].copy()
        return np.array([np.interp(t, self._times, self._positions[:, j])
                         for j in range(self._positions.shape[1])])

    def close(self) -> None:
        pass
