"""``observation.environment_state``: the scene's object poses as one vector.

LeRobot's state-based policies take the environment as a flat float vector.
Ours is made from a task status's object poses by one rule, used both by the
export (from the recorded ``task_status``) and by the policy node (from the
live one), so a policy sees at run time exactly what it was trained on:

- objects in the order of their names (sorted), every free object of the status;
- per object 7 values: position x, y, z (m, in the status's frame: the world)
  and orientation quaternion qw, qx, qy, qz with qw >= 0 (q and -q are the same
  rotation; one sign keeps a resting object's input from flipping).

The feature names (``cube.x`` ... ``cube.qz``) go into the dataset; a
checkpoint keeps only the vector's length, which the policy node checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

ENVIRONMENT_STATE = 'observation.environment_state'
POSE_FIELDS = ('x', 'y', 'z', 'qw', 'qx', 'qy', 'qz')

Pose = tuple[np.ndarray, np.ndarray]      # (xyz, quaternion wxyz)


class EnvironmentStateError(ValueError):
    """Object poses that do not make the expected environment state."""


def object_poses(status) -> dict[str, Pose]:
    """name -> (xyz, wxyz) of a TaskStatus: a live rclpy message or one decoded from a bag."""
    return {name: (np.array([p.position.x, p.position.y, p.position.z]),
                   np.array([p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z]))
            for name, p in zip(status.object_names, status.object_poses)}


def feature_names(objects: Iterable[str]) -> list[str]:
    return [f'{name}.{field}' for name in sorted(objects) for field in POSE_FIELDS]


def environment_state(poses: Mapping[str, Pose], size: int | None = None) -> np.ndarray:
    """The vector of ``poses`` (name -> (xyz, wxyz)); ``size``: the length a policy expects."""
    values = []
    for name in sorted(poses):
        xyz, quat = (np.asarray(v, dtype=np.float64) for v in poses[name])
        if xyz.shape != (3,) or quat.shape != (4,):
            raise EnvironmentStateError(f'{name}: a pose is 3 positions and a 4-value quaternion')
        values.extend(xyz)
        values.extend(-quat if quat[0] < 0 else quat)
    vector = np.asarray(values, dtype=np.float32)
    if size is not None and len(vector) != size:
        raise EnvironmentStateError(
            f'the policy expects an environment state of {size} values ({size / len(POSE_FIELDS):g} '
            f'objects of {len(POSE_FIELDS)}); the task status has {len(poses)} object(s) '
            f'{sorted(poses)}, {len(vector)} values')
    return vector
