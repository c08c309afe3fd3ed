"""Stand-ins at the device boundary, for tests and trials without hardware."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_camera_video(path: Path, width: int = 320, height: int = 240, frames: int = 30) -> Path:
    """A short MJPG video of moving stripes: a camera device (``camera_devices:=[<path>]``)
    for the hardware node on a machine without a camera."""
    import cv2          # only the callers that fake a camera need OpenCV
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, (width, height))
    for i in range(frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :, 1] = (np.arange(width) + 8 * i) % 256
        writer.write(image)
    writer.release()
    return Path(path)
