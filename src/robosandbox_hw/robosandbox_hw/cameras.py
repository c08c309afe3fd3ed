"""USB cameras through OpenCV, free of ROS: one capture thread per camera.

A device is a V4L2 path (``/dev/video0``), an index (``0``) or a video file,
which is played in a loop at the configured rate; files are how the tests and
``hw_emulated`` give the node a camera without hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import threading
import time
from collections.abc import Callable

import numpy as np

from robosandbox_description.camera import Pinhole


class CameraError(RuntimeError):
    """A camera cannot be opened or configured."""


@dataclass(frozen=True)
class CameraConfig:
    name: str
    device: str
    width: int = 640
    height: int = 480
    fps: float = 30.0
    hfov_deg: float = 70.0     # nominal horizontal field of view, for camera_info

    def intrinsics(self) -> Pinhole:
        """An ideal pinhole with ``hfov_deg``; calibrate for better."""
        return Pinhole.from_fov(self.width, self.height, hfov_deg=self.hfov_deg)


class Camera:
    """Captures ``config.device`` at ``config.fps`` and hands RGB frames to ``on_frame(stamp, rgb)``."""

    def __init__(self, config: CameraConfig, on_frame: Callable[[float, np.ndarray], None]):
        import cv2
        self.config = config
        self._cv2 = cv2
        self._on_frame = on_frame
        device = int(config.device) if config.device.isdigit() else config.device
        self._is_file = isinstance(device, str) and Path(device).is_file()
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise CameraError(f'camera {config.name!r}: cannot open {config.device!r}')
        if not self._is_file:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
            self._capture.set(cv2.CAP_PROP_FPS, config.fps)
        self.frames = 0
        self.failures = 0
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f'camera-{config.name}', daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cv2 = self._cv2
        period = 1.0 / self.config.fps
        next_tick = time.monotonic()
        while self._running:
            ok, frame = self._capture.read()
            if not ok and self._is_file:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._capture.read()
            if not ok:
                self.failures += 1
                time.sleep(period)
                continue
            stamp = time.time()
            if frame.shape[1] != self.config.width or frame.shape[0] != self.config.height:
                frame = cv2.resize(frame, (self.config.width, self.config.height))
            self._on_frame(stamp, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            self.frames += 1
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self._capture.release()
