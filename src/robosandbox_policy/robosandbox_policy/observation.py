"""What a policy sees at one control tick, in ROS units (radians, seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Observation:
    time: float                                   # s, the stamp of the newest joint state
    joint_positions: np.ndarray                   # rad, in the policy's joint order
    images: dict[str, np.ndarray] = field(default_factory=dict)   # topic key -> HxWx3 uint8
    task: str = ''                                # language instruction of the run
    # name -> (xyz m, quaternion wxyz), from the sim's task status when there is one
    object_poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
