"""One mp4 per episode from a camera topic, for ``robosandbox eval --video``.

Frames are encoded as they arrive (H.264 through PyAV, which LeRobot already
brings), timed by their stamps: a sim that slows down, or lockstep, still
plays back at the speed of sim time.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from robosandbox_control.arm_interface import to_seconds
from robosandbox_control.qos import IMAGE_QOS
from robosandbox_policy.policy_node import image_array

TIME_BASE = Fraction(1, 1000)    # ms


class EpisodeVideo:

    def __init__(self, node: Node, topic: str, directory: Path):
        self.directory = Path(directory)
        self._container = None
        self._stream = None
        self._first = 0.0
        self._last_pts = -1
        self.path: Path | None = None
        self.frames = 0
        # Reliable: in lockstep the sim waits for the policy anyway, and a video
        # with holes would misreport what the policy saw.
        node.create_subscription(Image, topic, self._on_image, IMAGE_QOS)

    def start(self, name: str) -> None:
        self.stop()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f'{name}.mp4'
        self._container = av.open(str(self.path), 'w')
        self._stream = None
        self.frames = 0

    def _on_image(self, msg: Image) -> None:
        if self._container is None or msg.encoding not in ('rgb8', 'bgr8'):
            return
        t = to_seconds(msg.header.stamp)
        if self._stream is None:
            self._stream = self._container.add_stream('libx264', rate=30)
            self._stream.width, self._stream.height = msg.width, msg.height
            self._stream.pix_fmt = 'yuv420p'
            self._stream.time_base = TIME_BASE
            self._stream.codec_context.time_base = TIME_BASE   # stamps to the ms: uneven frames keep their order
            self._first = t
            self._last_pts = -1
        pts = round((t - self._first) / TIME_BASE)
        if pts <= self._last_pts:
            return            # a repeated stamp: one frame per instant
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_array(msg)), format='rgb24')
        frame.pts, frame.time_base = pts, TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def stop(self) -> None:
        """Close the current episode's file (none is left if no frame came)."""
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None
        if self.frames == 0 and self.path is not None:
            self.path.unlink(missing_ok=True)
