"""The pinhole camera people are expressed in: intrinsics from a field of view or an explicit focal length."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backend.errors import OptionError

# The default lens when the footage says nothing about it: a 55 degree field of view across the longer image side,
# a middle ground between phone wide-angle and zoomed broadcast footage. Depth scales with the focal length, so users
# who know their lens should pass --fov or --focal.
DEFAULT_FOV_DEGREES = 55.0


@dataclass(frozen=True)
class Camera:
    """Intrinsics in pixels of an image of ``width`` x ``height``."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> "Camera":
        """Square pixels, centred principal point, ``fov_degrees`` across the longer side."""
        if not 1.0 < fov_degrees < 179.0:  # also refuses NaN
            raise OptionError(f"field of view must be between 1 and 179 degrees, got {fov_degrees}")
        focal = 0.5 * max(width, height) / math.tan(math.radians(fov_degrees) / 2)
        return cls(width, height, focal, focal, width / 2, height / 2)

    @classmethod
    def from_focal(cls, width: int, height: int, focal_px: float) -> "Camera":
        if not 0 < focal_px < math.inf:  # also refuses NaN
            raise OptionError(f"focal length must be positive, got {focal_px}")
        return cls(width, height, focal_px, focal_px, width / 2, height / 2)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project camera-frame points (..., 3) (OpenCV axes) to pixels (..., 2)."""
        z = np.clip(points[..., 2:3], 1e-6, None)
        return np.concatenate(
            [self.fx * points[..., 0:1] / z + self.cx, self.fy * points[..., 1:2] / z + self.cy], axis=-1
        )
