"""The policy interface the node drives, and the trivial policy.

A policy gets an :class:`~robosandbox_policy.observation.Observation` each
control tick and answers joint targets (rad, in its ``joint_names`` order), or
``None`` when it has no action ready yet (the arm holds). It must not block the
tick: slow inference belongs in a worker (see :mod:`robosandbox_policy.chunking`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from robosandbox_policy.observation import Observation


DEFAULT_RATE = 30.0   # Hz, when neither the user nor the policy names a control rate


def control_rate(requested: float, policy_fps: float | None) -> float:
    """The control rate (Hz): the one asked for, else the policy's own, else 30."""
    return requested or policy_fps or DEFAULT_RATE


class PolicyError(RuntimeError):
    """The policy failed during a run; the run stops and the arm holds."""


class Policy(Protocol):
    joint_names: tuple[str, ...]        # order of observation.joint_positions and of actions
    image_topics: dict[str, str]        # image input key -> topic
    needs_object_poses: bool            # waits for a task status before acting
    fps: float | None                   # control rate it was trained for, if known
    done: bool                          # nothing more to do in this run (end of a replay)

    def reset(self) -> None: ...
    def act(self, obs: Observation) -> np.ndarray | None: ...
    def close(self) -> None: ...


class HoldPolicy:
    """Commands the positions it observes at the start of a run: the arm stays put.

    Useful to check the wiring of a bringup; its per-tick cost is nil, so it
    also measures the node's own overhead.
    """

    image_topics: dict[str, str] = {}
    needs_object_poses = False
    fps = None

    def __init__(self, joint_names):
        self.joint_names = tuple(joint_names)
        self.reset()

    def reset(self) -> None:
        self.done = False
        self._target = None

    def act(self, obs: Observation) -> np.ndarray:
        if self._target is None:
            self._target = obs.joint_positions.copy()
        return self._target

    def close(self) -> None:
        pass
