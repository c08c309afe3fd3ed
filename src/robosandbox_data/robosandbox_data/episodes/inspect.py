"""``robosandbox inspect <bag | runs dir | dataset>``: what is in it, in a few lines.

A bag: its episode metadata, then per topic the message count, rate, span and
the gaps longer than three periods. A LeRobot dataset: its features and its
episodes' lengths. ``--plot FILE.png`` draws the joint trajectories (state and
commanded targets) of one episode.
"""

from __future__ import annotations

from contextlib import closing
import json
from pathlib import Path
import sys

import numpy as np

from robosandbox_data.episodes.bag import (
    decode, EpisodeBagError, find_bags, open_reader, read_info, recoverable_messages)
from robosandbox_data.episodes.scan import (
    JOINT_STATE, JOINT_TRAJECTORY, message_time, scan_episode, stamp_reader)


def is_dataset(path: Path) -> bool:
    return (path / 'meta' / 'info.json').exists()


def describe_bag(bag: Path) -> str:
    info = read_info(bag)
    lines = [f'{bag}',
             f'  episode: task {info.task!r}, seed {info.seed}, policy {info.policy!r}, '
             f'robot {info.robot_type!r}',
             f'  status: {info.status}, success: {info.success}, end: {info.end_reason}',
             f'  {info.messages} messages, {info.dropped} dropped'
             + (f' {info.dropped_by_topic}' if info.dropped else '')]
    try:
        scan = scan_episode(bag, require_complete=False)
    except EpisodeBagError as e:
        lines.append(f'  unreadable as a whole: {e}')
        lines.append(f'  a streaming MCAP reader recovers {recoverable_messages(bag)} messages')
        return '\n'.join(lines)
    width = max((len(t) for t in scan.topics), default=0)
    for t in scan.topics.values():
        gaps, timing = t.gaps(), t.timing
        gap_text = f', {len(gaps)} gaps (longest {max(g for _, g in gaps):.3f} s)' if gaps else ''
        span = f'{t.stamps[0]:.3f}..{t.stamps[-1]:.3f} s' if t.count else '-'
        lines.append(f'  {t.topic:<{width}}  {t.count:6d} msgs  {t.rate:7.2f} Hz  jitter '
                     f'{timing["jitter_ms"]:6.2f} ms  largest gap {timing["largest_gap_s"]:.3f} s  '
                     f'{span}{gap_text}')
    return '\n'.join(lines)


def describe_dataset(root: Path) -> str:
    info = json.loads((root / 'meta' / 'info.json').read_text())
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata
    meta = LeRobotDatasetMetadata(f'local/{root.name}', root=root)
    lengths = list(meta.episodes['length'])
    lines = [f'{root}: LeRobot dataset {info.get("codebase_version")}, {info["fps"]} fps, '
             f'robot {info.get("robot_type")!r}',
             f'  {meta.total_episodes} episodes, {meta.total_frames} frames; lengths: '
             f'min {min(lengths)}, median {int(np.median(lengths))}, max {max(lengths)}',
             f'  tasks: {", ".join(map(repr, meta.tasks.index))}',
             '  features:']
    for key, spec in info['features'].items():
        names = spec.get('names')
        lines.append(f'    {key}: {spec["dtype"]} {tuple(spec["shape"])}'
                     + (f' {names}' if isinstance(names, list) and len(names) <= 8 else ''))
    return '\n'.join(lines)


def _bag_trajectories(bag: Path):
    state_t, state, cmd_t, cmd = [], [], [], []
    names = None
    with closing(open_reader(bag, require_complete=False)) as reader:
        conns = [c for c in reader.connections if c.msgtype in (JOINT_STATE, JOINT_TRAJECTORY)]
        read_stamp = {c.id: stamp_reader(c.msgtype) for c in conns}
        for conn, log_ns, data in reader.messages(connections=conns):
            msg = decode(data, conn.msgtype)
            stamp = message_time(read_stamp[conn.id], data, log_ns)
            if conn.msgtype == JOINT_STATE:
                names = names or list(msg.name)
                state_t.append(stamp)
                state.append(dict(zip(msg.name, msg.position)))
            elif msg.points:
                cmd_t.append(stamp)
                cmd.append(dict(zip(msg.joint_names, msg.points[0].positions)))
    names = names or []

    def as_array(rows):
        if not rows:
            return np.zeros((0, len(names)))
        return np.array([[r.get(n, np.nan) for n in names] for r in rows])
    return names, (np.array(state_t), as_array(state)), (np.array(cmd_t), as_array(cmd))


def _dataset_trajectories(root: Path, episode: int):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    ds = LeRobotDataset(f'local/{root.name}', root=root, episodes=[episode])
    data = ds.hf_dataset.with_format('numpy')
    names = ds.meta.features['observation.state']['names']
    t = np.asarray(data['timestamp'])
    return names, (t, np.stack(data['observation.state'])), (t, np.stack(data['action']))


def plot(path: Path, out: Path, episode: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if is_dataset(path):
        names, state, cmd = _dataset_trajectories(path, episode)
        title = f'{path.name}, episode {episode}'
    else:
        bag = find_bags([path])[episode]
        names, state, cmd = _bag_trajectories(bag)
        title = bag.name
    fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(8, 1.6 * len(names) + 0.8))
    for i, (ax, name) in enumerate(zip(np.atleast_1d(axes), names)):
        ax.plot(state[0], state[1][:, i], label='state')
        ax.plot(cmd[0], cmd[1][:, i], '--', label='action / target')
        ax.set_ylabel(name, rotation=0, ha='right', fontsize=8)
    np.atleast_1d(axes)[0].legend(loc='upper right', fontsize=8)
    np.atleast_1d(axes)[0].set_title(title)
    np.atleast_1d(axes)[-1].set_xlabel('time, s')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _run(args) -> int:
    path = args.path
    try:
        if is_dataset(path):
            print(describe_dataset(path))
        else:
            for bag in find_bags([path]):
                print(describe_bag(bag))
        if args.plot:
            plot(path, args.plot, args.episode)
            print(f'plot: {args.plot}')
    except (EpisodeBagError, IndexError, OSError) as e:
        print(f'robosandbox inspect: {e}', file=sys.stderr)
        return 1
    return 0


def add_command(subparsers) -> None:
    """Entry point of the ``robosandbox.commands`` group."""
    parser = subparsers.add_parser(
        'inspect', help='summarise an episode bag, a runs directory or a LeRobot dataset')
    parser.add_argument('path', type=Path, help='bag directory, runs directory or dataset root')
    parser.add_argument('--plot', type=Path, metavar='FILE.png',
                        help='draw the joint trajectories of one episode into a PNG')
    parser.add_argument('--episode', type=int, default=0,
                        help='episode for --plot: index in the dataset or in the runs directory')
    parser.set_defaults(func=_run)
