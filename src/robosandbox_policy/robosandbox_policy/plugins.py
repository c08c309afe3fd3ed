"""Users' own policies: a class found by entry point or by ``module:Class``.

A user policy is a class whose instances have ``act(observation)`` returning
joint targets in radians (or None: hold), the :class:`~robosandbox_policy.policy.Policy`
protocol. It is built with the robot description (joint names, limits, home)
as its one argument. What it leaves out gets the protocol's defaults: the
robot's joints, no images, no object poses, no fps of its own, never done, no
reset and nothing to close.

Packages register policies by name in the ``robosandbox.policies`` entry point
group (``policy:=<name>``); any importable class works as
``policy:=package.module:Class``.
"""

from __future__ import annotations

import importlib
from importlib import metadata
import re

import numpy as np

from robosandbox_description.robot import RobotDescription
from robosandbox_policy.policy import PolicyError

ENTRY_POINT_GROUP = 'robosandbox.policies'
_CLASS_REF = re.compile(r'^[A-Za-z_][\w.]*:[A-Za-z_]\w*$')


class PluginError(ValueError):
    """A user policy cannot be found, built or used; the message says which and why."""


def is_class_ref(spec: str) -> bool:
    return bool(_CLASS_REF.match(spec))


def entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_class(spec: str):
    """The class ``spec`` names: an entry point name or ``module:Class``."""
    registered = entry_points()
    try:
        if spec in registered:
            return registered[spec].load()
        module_name, _, class_name = spec.partition(':')
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise PluginError(f'cannot load policy {spec!r}: {e}') from e


class UserPolicy:
    """The protocol around a user's object: its attributes where it has them, the defaults elsewhere."""

    def __init__(self, spec: str, robot: RobotDescription):
        cls = load_class(spec)
        try:
            self.inner = cls(robot)
        except Exception as e:  # noqa: BLE001 - the user's constructor: fail at configure, naming it
            raise PluginError(f'policy {spec!r}: {cls.__name__}(robot) failed: {e!r}') from e
        if not callable(getattr(self.inner, 'act', None)):
            raise PluginError(f'policy {spec!r}: {cls.__name__} has no act(observation) method')
        self.joint_names = tuple(getattr(self.inner, 'joint_names', robot.joints))
        self.image_topics = dict(getattr(self.inner, 'image_topics', {}))
        self.needs_object_poses = bool(getattr(self.inner, 'needs_object_poses', False))
        self.fps = getattr(self.inner, 'fps', None)

    @property
    def done(self) -> bool:
        return bool(getattr(self.inner, 'done', False))

    def reset(self) -> None:
        if hasattr(self.inner, 'reset'):
            self.inner.reset()

    def act(self, obs):
        try:
            action = self.inner.act(obs)
            return None if action is None else np.asarray(action, dtype=float)
        except Exception as e:  # noqa: BLE001 - the run stops with the reason, the arm holds
            raise PolicyError(f'{type(self.inner).__name__}.act failed: {e!r}') from e

    def close(self) -> None:
        if hasattr(self.inner, 'close'):
            self.inner.close()

