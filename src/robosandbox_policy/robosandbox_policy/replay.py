"""Open-loop replay of recorded joint targets.

``replay:<source>`` names what to play back:

* an episode bag (a directory the recorder wrote): its commanded targets, the
  ``policy/action`` topic stamped with the observations they answered (else the
  ``joint_trajectory`` commands at their recording times);
* ``<LeRobot dataset dir>#<episode index>``: that episode's ``action`` column at
  its ``timestamp``s, ours or one LeRobot recorded; joint names ``<joint>.pos``
  mean LeRobot's SO-101 units (degrees, gripper 0-100), converted to radians;
* a CSV trajectory file: a header ``time,<joint>,<joint>,...`` then one row per
  target, time in seconds from the start of the episode and radians.

Targets between samples are interpolated linearly; ``lookahead`` (s) commands
each target that much early, to make up for the servos' lag.
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


def _checked(source: str, names, times: np.ndarray, positions: np.ndarray):
    if len(times) == 0:
        raise TrajectoryFileError(f'{source}: no targets')
    if not np.all(np.isfinite(positions)):
        raise TrajectoryFileError(f'{source}: NaN or infinite targets')
    keep = np.concatenate([[True], np.diff(times) > 0])      # one target per instant
    if np.any(np.diff(times) < 0):
        raise TrajectoryFileError(f'{source}: targets are not in time order')
    return tuple(names), times[keep], positions[keep]


def read_bag_episode(bag: Path):
    """Joint names, times and targets (rad) commanded in an episode bag."""
    from robosandbox_data.episodes.bag import decode, EpisodeBagError, open_reader
    try:
        reader = open_reader(bag, require_complete=False)
    except EpisodeBagError as e:
        raise TrajectoryFileError(str(e)) from None
    try:
        topics = {c.topic: c for c in reader.connections}
        actions = [t for t, c in topics.items()
                   if t.endswith('policy/action') and c.msgtype == 'sensor_msgs/msg/JointState']
        commands = [t for t, c in topics.items()
                    if t.endswith('joint_trajectory') and c.msgtype == 'trajectory_msgs/msg/JointTrajectory']
        if not actions and not commands:
            raise TrajectoryFileError(f'{bag}: no policy/action or joint_trajectory topic to replay '
                                      f'(topics: {sorted(topics)})')
        topic = (actions or commands)[0]
        names, times, positions = None, [], []
        for connection, log_ns, data in reader.messages(connections=[topics[topic]]):
            msg = decode(data, connection.msgtype)
            if topic in actions:
                stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
                joints, values = list(msg.name), msg.position
            else:
                if not msg.points:
                    continue
                stamp, joints, values = 1e-9 * log_ns, list(msg.joint_names), msg.points[0].positions
            if names is None:
                names = joints
            elif joints != names:
                raise TrajectoryFileError(f'{bag}: {topic} changes joints mid-episode ({names} -> {joints})')
            times.append(stamp)
            positions.append(np.asarray(values, dtype=float))
    finally:
        reader.close()
    if names is None:
        raise TrajectoryFileError(f'{bag}: {topic} has no targets')
    return _checked(str(bag), names, np.array(times), np.array(positions))


def read_dataset_episode(root: Path, episode: int, gripper_joint: str = 'gripper',
                         gripper_range: tuple[float, float] = (0.0, 1.0)):
    """Joint names, times and targets (rad) of one episode of a LeRobot v3 dataset."""
    import json
    import pyarrow.parquet as pq
    from robosandbox_control.units import joint_units, LEROBOT_SO101

    try:
        info = json.loads((root / 'meta' / 'info.json').read_text())
        feature_names = list(info['features']['action']['names'])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrajectoryFileError(f'{root}: not a LeRobot dataset with an action feature ({e!r})') from None
    if isinstance(feature_names, dict):       # older datasets: {'motors': [...]}
        feature_names = next(iter(feature_names.values()))
    files = sorted((root / 'data').rglob('*.parquet'))
    if not files:
        raise TrajectoryFileError(f'{root}: no data/*.parquet files')
    times, actions = [], []
    for file in files:
        table = pq.read_table(file, columns=['episode_index', 'timestamp', 'action'],
                              filters=[('episode_index', '=', episode)])
        times += table.column('timestamp').to_pylist()
        actions += table.column('action').to_pylist()
    if not times:
        raise TrajectoryFileError(f'{root}: no episode {episode} (episodes: 0..{info.get("total_episodes", 0) - 1})')
    lerobot_units = all(name.endswith('.pos') for name in feature_names)
    names = [name.removesuffix('.pos') for name in feature_names]
    positions = np.array(actions, dtype=float)
    if lerobot_units:
        positions = joint_units(LEROBOT_SO101, names, gripper_joint, gripper_range).to_ros(positions)
    order = np.argsort(times, kind='stable')
    return _checked(f'{root}#{episode}', names, np.array(times)[order], positions[order])


def read_source(source: str, gripper_joint: str = 'gripper', gripper_range=(0.0, 1.0)):
    """Joint names, times (n,) and targets (n, joints) of a replay source (see the module)."""
    path, hash_, episode = source.partition('#')
    root = Path(path).expanduser()
    if (root / 'meta' / 'info.json').is_file():
        try:
            index = int(episode or 0)
        except ValueError:
            raise TrajectoryFileError(f'{source}: the episode after # must be an index') from None
        return read_dataset_episode(root, index, gripper_joint, gripper_range)
    if hash_:
        raise TrajectoryFileError(f'{source}: <dataset dir>#<episode> needs a LeRobot dataset '
                                  f'(no {root / "meta" / "info.json"})')
    if root.is_dir():
        return read_bag_episode(root)
    return read_trajectory(root)


class ReplayPolicy:
    image_topics: dict[str, str] = {}
    needs_object_poses = False
    fps = None

    def __init__(self, source: str | Path, lookahead: float = 0.0, gripper_joint: str = 'gripper',
                 gripper_range: tuple[float, float] = (0.0, 1.0)):
        self.joint_names, self._times, self._positions = read_source(
            str(source), gripper_joint, gripper_range)
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
