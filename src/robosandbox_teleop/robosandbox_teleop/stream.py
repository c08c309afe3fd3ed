"""Targets for a follower from a teleoperator's readings, free of ROS.

A teleoperator (a leader arm, a keyboard) says where the follower should be.
``TeleopStream`` turns its readings into the targets streamed to the
follower: at the start, and again after the teleoperator was lost, the
follower is led from where it stands to the teleoperator's pose at
``approach_velocity`` (a leader put down far from the follower is never
jumped to); once there, within ``tolerance`` on every joint, targets are the
readings themselves. The follower's own safety (limits, velocity limit, slow
first motion, watchdog) applies to every target unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TeleopStreamConfig:
    approach_velocity: float = 0.3     # rad/s per joint while leading the follower to the teleoperator
    tolerance: float = 0.05            # rad on every joint: the follower has reached the teleoperator


class TeleopStream:

    def __init__(self, config: TeleopStreamConfig | None = None):
        self.config = config or TeleopStreamConfig()
        self._target: np.ndarray | None = None
        self.approaching = True

    def reset(self) -> None:
        """Approach again from the follower's pose (the teleoperator was lost)."""
        self._target, self.approaching = None, True

    def target(self, reading: np.ndarray, follower: np.ndarray | None, dt: float) -> np.ndarray | None:
        """The target for the follower ``dt`` s after the previous one, or None while
        the follower's pose is unknown (nothing to approach from)."""
        if self._target is None:
            if follower is None:
                return None
            self._target = np.array(follower, dtype=float)
        if self.approaching:
            step = self.config.approach_velocity * max(dt, 0.0)
            self._target = self._target + np.clip(reading - self._target, -step, step)
            if np.max(np.abs(reading - self._target)) <= self.config.tolerance:
                self.approaching = False
        else:
            self._target = np.array(reading, dtype=float)
        return self._target.copy()
