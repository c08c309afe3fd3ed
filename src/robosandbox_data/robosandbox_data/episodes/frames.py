"""Resampling an episode's streams onto a uniform frame timeline.

The alignment rule (README, "Recording and export"):

* Frame ``k`` is at ``t_k = t_0 + k / fps`` (message stamps: sim time in sim).
  ``t_0`` is the first instant every exported stream (joint states, commanded
  targets, each camera) has a message; the last frame is the last ``t_k`` at
  or before the end of the stream that ends first.
* Each stream contributes, to frame ``k``, its latest message stamped at or
  before ``t_k + 1 / (2 fps)``: the newest value not from the future by more
  than half a frame (so stamps on a slightly different grid, e.g. camera
  images on the sim's 2 ms step, still land on their own frame).
* The action of frame ``k`` is the commanded target chosen by the same rule.
  The policy node records each target on ``policy/action`` stamped with the
  observation it answers (the command itself is stamped 0: start now), so
  frame ``k`` pairs an observation with the target sent in response to it.
"""

from __future__ import annotations

import numpy as np


class AlignmentError(ValueError):
    pass


def frame_times(streams: dict[str, np.ndarray], fps: float) -> np.ndarray:
    """The frame instants covered by every stream of ``streams`` (name -> stamps)."""
    empty = [name for name, s in streams.items() if len(s) == 0]
    if empty:
        raise AlignmentError(f'no messages on {", ".join(empty)}')
    start = max(float(np.min(s)) for s in streams.values())
    end = min(float(np.max(s)) for s in streams.values())
    if end < start:
        raise AlignmentError('the streams do not overlap in time')
    n = int(np.floor((end - start) * fps + 1e-6)) + 1
    return start + np.arange(n) / fps


def select(stamps: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Index into ``stamps`` of each frame's message: the latest stamped at or
    before ``t + half a frame``. Indices are message positions in the stream,
    so out-of-order stamps are handled."""
    order = np.argsort(stamps, kind='stable')
    i = np.searchsorted(stamps[order], times + 0.5 / fps + 1e-9, side='right') - 1
    if (i < 0).any():
        raise AlignmentError('a frame precedes the first message of a stream')
    return order[i]
