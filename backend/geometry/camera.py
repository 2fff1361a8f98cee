"""The pinhole camera people are expressed in, and the geometry every stage shares through it.

Intrinsics come from a field of view or an explicit focal length. :func:`project` (numpy or torch, one depth
clamp) and :func:`solve_translation` are the only places that map camera-frame points to pixels and back, so
the estimators, the fit, coherence and the renderer agree on the camera to the last digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from backend.errors import OptionError
from backend.options import DEFAULT_FOV_DEGREES

# The default lens when the footage says nothing about it: a 55 degree field of view across the longer image side,
# a middle ground between phone wide-angle and zoomed broadcast footage. Depth scales with the focal length, so users
# who know their lens should pass --fov or --focal.
MIN_DEPTH = 1e-3  # metres: points nearer (or behind the camera) project as if at this depth, never divide by 0

Points = TypeVar("Points", np.ndarray, torch.Tensor)


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

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy): the layout :func:`project` and :func:`solve_translation` take."""
        return (self.fx, self.fy, self.cx, self.cy)

    def intrinsics_tensor(self, like: torch.Tensor | None = None, device: torch.device | str | None = None,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(fx, fy, cx, cy) as a (4,) tensor, on ``like``'s device and of its dtype when given."""
        if like is not None:
            device, dtype = like.device, like.dtype
        return torch.tensor(self.intrinsics, dtype=dtype, device=device)

    def project(self, points: Points, near: float = MIN_DEPTH) -> Points:
        """Camera-frame points (..., 3) (OpenCV axes) -> pixels (..., 2), as numpy or torch like ``points``."""
        if isinstance(points, torch.Tensor):
            return project(points, self.intrinsics_tensor(points), near)
        points = np.asarray(points)
        return project(points, np.asarray(self.intrinsics, np.result_type(points.dtype, np.float32)), near)

    def resized(self, width: int) -> "Camera":
        """The same lens for the image resized to ``width`` pixels (aspect ratio kept, pixel centres at integers)."""
        s = width / self.width
        height = max(1, round(self.height * s))
        return Camera(width, height, self.fx * s, self.fy * s, (self.cx + 0.5) * s - 0.5, (self.cy + 0.5) * s - 0.5)


def project(points: Points, intrinsics: Points, near: float = MIN_DEPTH) -> Points:
    """Camera-frame points (..., 3) -> pixels (..., 2) through ``intrinsics`` (..., 4) = (fx, fy, cx, cy), numpy or
    torch alike (differentiable in torch). Depth is clamped at ``near``, so a point behind the camera lands far
    off the image instead of flipping onto it."""
    z = points[..., 2:3].clip(min=near)
    return points[..., :2] / z * intrinsics[..., :2] + intrinsics[..., 2:]


def solve_translation(joints: torch.Tensor, pixels: torch.Tensor, intrinsics: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Translation t (N, 3) minimising the weighted linear reprojection residuals of joints (N, J, 3) + t onto
    pixels (N, J, 2) through intrinsics (fx, fy, cx, cy): fx (X + tx) = (u - cx)(Z + tz), likewise for y.
    The equations are linear in t, so this is one small least-squares solve per person (in float64)."""
    fx, fy, cx, cy = intrinsics.unbind(-1)
    du, dv = pixels[..., 0] - cx, pixels[..., 1] - cy
    zeros, ones = torch.zeros_like(du), torch.ones_like(du)
    rows_u = torch.stack([fx * ones, zeros, -du], dim=-1)
    rows_v = torch.stack([zeros, fy * ones, -dv], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=1)  # (N, 2J, 3)
    b = torch.cat([du * joints[..., 2] - fx * joints[..., 0], dv * joints[..., 2] - fy * joints[..., 1]], dim=1)
    w = torch.ones_like(b) if weights is None else torch.cat([weights, weights], dim=1)
    aw = a * w[..., None]
    lhs = aw.transpose(1, 2) @ a
    rhs = (aw.transpose(1, 2) @ b[..., None])[..., 0]
    # solve_ex: linalg.solve would check for singular systems on the host, one CUDA sync per batch
    return torch.linalg.solve_ex(lhs.double(), rhs.double())[0].to(joints.dtype)
