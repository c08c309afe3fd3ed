"""Embodiment mapping: how our joints and cameras line up with a policy's features.

ROS gives joint positions in radians (REP-103); LeRobot's SO-101 follower
records arm joints in degrees and the gripper in 0-100 (``use_degrees=True``),
under feature names like ``shoulder_pan.pos``. A checkpoint trained on either
kind of data runs unchanged once its convention is named here.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import warnings

import numpy as np

from robosandbox_control.units import (  # noqa: F401 - the policy side's names for them
    joint_units, JointUnits, LEROBOT_SO101, lerobot_feature_names, ROS, UNIT_CONVENTIONS, UnitsError)

IMAGE_PREFIX = 'observation.images.'


class EmbodimentError(UnitsError):
    """A policy's features cannot be mapped onto the robot's joints and cameras."""


def guess_convention(state_stats: dict | None) -> str:
    """``lerobot_so101`` when normalisation stats show joint values beyond pi, else ``ros``.

    Radians of a revolute arm stay within about +-pi; LeRobot's degrees and
    0-100 gripper values do not.
    """
    if not state_stats:
        return ROS
    extremes = [np.abs(np.asarray(state_stats[k], dtype=float)).max()
                for k in ('min', 'max', 'mean') if k in state_stats]
    return LEROBOT_SO101 if extremes and max(extremes) > math.pi + 0.1 else ROS


@dataclass(frozen=True)
class VectorFit:
    """Pads or truncates a vector from ``size`` to ``expected`` entries (padding with zeros)."""

    size: int
    expected: int

    def __call__(self, v: np.ndarray) -> np.ndarray:
        if self.size == self.expected:
            return v
        if self.size > self.expected:
            return v[:self.expected]
        return np.concatenate([v, np.zeros(self.expected - self.size, dtype=v.dtype)])


def fit_vector(what: str, size: int, expected: int) -> VectorFit:
    if size != expected:
        verb = 'truncated' if size > expected else 'zero-padded'
        warnings.warn(f'{what}: {size} values where {expected} are expected; '
                      f'values are {verb}', stacklevel=2)
    return VectorFit(size, expected)


def parse_image_topics(entries, image_keys, default_topic: str = 'cameras/{name}/image_raw'
                       ) -> dict[str, str]:
    """Map each policy image key to a topic.

    ``entries`` are ``'<name>=<topic>'`` strings, ``<name>`` being the key with
    or without its ``observation.images.`` prefix; keys not named use
    ``default_topic`` with their short name. One topic may feed several keys.
    """
    short = {key.removeprefix(IMAGE_PREFIX): key for key in image_keys}
    mapping = {key: default_topic.format(name=name) for name, key in short.items()} \
        if default_topic else {}
    for entry in entries:
        name, sep, topic = entry.partition('=')
        name, topic = name.strip(), topic.strip()
        if not sep or not name or not topic:
            raise EmbodimentError(f'image_topics entry {entry!r} is not <image key>=<topic>')
        key = short.get(name.removeprefix(IMAGE_PREFIX))
        if key is None:
            raise EmbodimentError(
                f'image_topics names {name!r}, which the policy does not take; '
                f'its image inputs are {sorted(image_keys) or "none"}')
        mapping[key] = topic
    missing = [k for k in image_keys if k not in mapping]
    if missing:
        raise EmbodimentError(f'no topic for the policy image input(s) {missing}; '
                              f"set image_topics:=['<name>=<topic>', ...]")
    return mapping
