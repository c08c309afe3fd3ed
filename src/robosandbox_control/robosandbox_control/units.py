"""Joint units: ROS radians and LeRobot's SO-101 follower convention, free of ROS.

ROS gives joint positions in radians (REP-103); LeRobot's SO-101 follower
records arm joints in degrees and the gripper in 0-100 (``use_degrees=True``).
The policy node maps a checkpoint's inputs with this, the export writes
datasets in either, and the hardware node turns LeRobot's calibrated servo
values into radians with it: one definition of the convention for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


class UnitsError(ValueError):
    """An unknown unit convention."""


ROS = 'ros'
LEROBOT_SO101 = 'lerobot_so101'
UNIT_CONVENTIONS = (ROS, LEROBOT_SO101)


@dataclass(frozen=True)
class JointUnits:
    """Affine map between ROS joint positions and a policy's: ``policy = scale * ros + offset``."""

    convention: str
    scale: np.ndarray
    offset: np.ndarray

    def to_policy(self, q: np.ndarray) -> np.ndarray:
        return self.scale * q + self.offset

    def to_ros(self, a: np.ndarray) -> np.ndarray:
        return (a - self.offset) / self.scale


def joint_units(convention: str, joint_names, gripper_joint: str,
                gripper_range: tuple[float, float]) -> JointUnits:
    """Units of ``convention`` for ``joint_names``.

    ``lerobot_so101``: degrees for arm joints (both conventions put zero at the
    middle of the calibrated range) and 0-100 for the gripper across its joint
    range, 0 at the closed end, as ``lerobot-calibrate`` records it.
    """
    n = len(joint_names)
    if convention == ROS:
        return JointUnits(ROS, np.ones(n), np.zeros(n))
    if convention == LEROBOT_SO101:
        scale = np.full(n, 180.0 / math.pi)
        offset = np.zeros(n)
        if gripper_joint in joint_names:
            i = list(joint_names).index(gripper_joint)
            lo, hi = gripper_range
            scale[i] = 100.0 / (hi - lo)
            offset[i] = -lo * scale[i]
        return JointUnits(LEROBOT_SO101, scale, offset)
    raise UnitsError(f'unknown unit convention {convention!r}; use one of {UNIT_CONVENTIONS}')


def lerobot_feature_names(joint_names) -> list[str]:
    """LeRobot's names for the motor positions: ``shoulder_pan.pos``..."""
    return [f'{name}.pos' for name in joint_names]
