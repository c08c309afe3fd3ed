"""The ideal pinhole both backends publish as camera_info.

Principal point: ROS (REP-104, image_pipeline) and OpenCV put pixel centres
at integer coordinates, so the image spans [-0.5, W - 0.5] and its centre, where
an ideal camera's optical axis lands, is at ((W - 1) / 2, (H - 1) / 2), not at
W / 2. A renderer (MuJoCo) or a lens centred on the sensor puts the axis there;
the simulation test checks it on a rendered image.
"""

from __future__ import annotations

from dataclasses import dataclass
import math


@dataclass(frozen=True)
class Pinhole:
    """Intrinsics of an undistorted camera, square pixels, axis through the image centre."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, *, fovy_deg: float | None = None,
                 hfov_deg: float | None = None) -> Pinhole:
        """From the vertical (MuJoCo's ``fovy``) or the horizontal field of view, degrees."""
        if (fovy_deg is None) == (hfov_deg is None):
            raise ValueError('give exactly one of fovy_deg and hfov_deg')
        if width <= 0 or height <= 0:
            raise ValueError(f'image size must be positive, got {width}x{height}')
        fov = fovy_deg if fovy_deg is not None else hfov_deg
        if not 0.0 < fov < 180.0:
            raise ValueError(f'field of view must be in (0, 180) degrees, got {fov}')
        span = height if fovy_deg is not None else width
        f = 0.5 * span / math.tan(math.radians(fov) / 2)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel (u, v) of a point in the optical frame (z forward, x right, y down)."""
        return self.fx * x / z + self.cx, self.fy * y / z + self.cy
