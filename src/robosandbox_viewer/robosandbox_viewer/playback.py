"""Recordings in the viewer: an episode bag or one episode of a LeRobot dataset.

The same entities as a live graph (see :mod:`robosandbox_viewer.scene`), on the
timeline of the recording, so a browser scrubs through it. What a recording does
not carry is rebuilt as the backend would have published it: the robot model
from its description and its links' frames from the recorded joint positions
(robot_state_publisher's rule), the task's objects from the task file, posed by
the recorded task status.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robosandbox_control.arm_interface import to_seconds
from robosandbox_control.robot_state import resolved_urdf
from robosandbox_control.units import joint_units, LEROBOT_SO101
from robosandbox_description.robot import load_robot
from robosandbox_viewer.scene import Scene

class PlaybackError(ValueError):
    """A recording the viewer cannot open."""


def is_dataset(path: Path) -> bool:
    return (path / 'meta' / 'info.json').is_file()


def _robot(scene: Scene, robot: str):
    description = load_robot(robot)
    scene.robot_description(resolved_urdf(description.urdf_path))
    return description


def _task_objects(scene: Scene, task: str) -> None:
    """The task's objects, each a shape in its own frame (as the sim's markers)."""
    from robosandbox_sim.task import load_task
    try:
        spec = load_task(task)
    except (OSError, ValueError, KeyError) as e:
        raise PlaybackError(f'task {task!r} of the recording cannot be loaded: {e}') from None
    for i, obj in enumerate(spec.objects):
        scene.shape(f'scene/objects/{i}', obj.shape, obj.extents, obj.rgba, obj.name)


def log_bag(scene: Scene, bag: Path, robot: str = 'so101') -> int:
    """An episode bag (robosandbox's recorder); the number of messages shown."""
    from robosandbox_data.episodes.bag import decode, EpisodeBagError, open_reader, read_info
    try:
        info = read_info(bag)
        reader = open_reader(bag, require_complete=False)
    except EpisodeBagError as e:
        raise PlaybackError(str(e)) from None
    _robot(scene, robot)
    if info.task:
        _task_objects(scene, info.task)
    shown = 0
    try:
        for connection, log_ns, data in reader.messages():
            topic, kind = connection.topic, connection.msgtype
            msg = decode(data, kind)
            stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
            seconds = to_seconds(stamp) if stamp is not None else 0.0
            if seconds <= 0:                       # unstamped, or stamp 0 ("now"): when it was logged
                seconds = log_ns * 1e-9
            if kind == 'sensor_msgs/msg/JointState' and topic.endswith('/joint_states'):
                scene.joint_values(msg.name, msg.position, seconds, 'measured')
                scene.robot_pose(msg.name, msg.position, seconds)
            elif kind == 'sensor_msgs/msg/JointState' and topic.endswith('/action'):
                scene.joint_values(msg.name, msg.position, seconds, 'action')
            elif kind == 'trajectory_msgs/msg/JointTrajectory' and msg.points:
                scene.joint_values(msg.joint_names, msg.points[0].positions, seconds, 'commanded')
            elif kind == 'sensor_msgs/msg/Image' and topic.endswith('/image_raw'):
                scene.image(topic.removesuffix('/image_raw').rsplit('/cameras/', 1)[-1], msg, seconds)
            elif kind == 'robosandbox_msgs/msg/TaskStatus':
                scene.task_status(msg, seconds, object_frames=True)
            else:
                continue
            shown += 1
    finally:
        reader.close()
    return shown


def log_dataset_episode(scene: Scene, root: Path, episode: int = 0, robot: str = 'so101') -> int:
    """One episode of a LeRobot v3 dataset (ours or LeRobot's), through LeRobot's own
    LeRobotDataset; the number of frames shown. Joint positions in LeRobot's SO-101
    units (degrees, gripper 0-100: names ending in ``.pos``) are shown in radians."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    try:
        info = json.loads((root / 'meta' / 'info.json').read_text())
        total = int(info['total_episodes'])
    except (OSError, ValueError, KeyError) as e:
        raise PlaybackError(f'{root}: not a LeRobot dataset ({e!r})') from None
    if not 0 <= episode < total:
        raise PlaybackError(f'{root}: no episode {episode} (episodes: 0..{total - 1})')
    description = _robot(scene, robot)
    dataset = LeRobotDataset(f'local/{root.name}', root=root, episodes=[episode])
    features = dataset.meta.features

    def joints(key: str):
        names = features[key]['names']
        names = next(iter(names.values())) if isinstance(names, dict) else list(names)
        bare = [n.removesuffix('.pos') for n in names]
        units = joint_units(LEROBOT_SO101, bare, description.gripper_joint, description.gripper_range) \
            if all(n.endswith('.pos') for n in names) else None
        return bare, units

    state_names, state_units = joints('observation.state') if 'observation.state' in features else ([], None)
    action_names, action_units = joints('action') if 'action' in features else ([], None)
    cameras = [k for k, f in features.items() if f['dtype'] in ('image', 'video')]
    frames = 0
    for item in dataset:
        seconds = float(item['timestamp'])
        if state_names:
            q = item['observation.state'].numpy().astype(float)
            q = state_units.to_ros(q) if state_units else q
            scene.joint_values(state_names, q, seconds, 'measured')
            scene.robot_pose(state_names, q, seconds)
        if action_names:
            a = item['action'].numpy().astype(float)
            scene.joint_values(action_names, action_units.to_ros(a) if action_units else a, seconds, 'action')
        for key in cameras:
            # LeRobot gives (c, h, w) floats in [0, 1].
            image = (item[key].numpy().transpose(1, 2, 0) * 255).round().clip(0, 255).astype(np.uint8)
            scene.camera_array(key.removeprefix('observation.images.'), image, seconds)
        frames += 1
    return frames
