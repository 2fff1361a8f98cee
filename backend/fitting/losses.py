"""Data terms of the fit: robust reprojection, body-relative 3D agreement with MediaPipe's world landmarks."""

from __future__ import annotations

import torch

from backend.geometry.camera import project


def gmof(squared: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure on a squared residual: quadratic near 0, saturating at sigma^2 (outliers stop pulling)."""
    return sigma**2 * squared / (sigma**2 + squared)


def reprojection_loss(
    points_cam: torch.Tensor, keypoints: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor,
    intrinsics: torch.Tensor, sigma: float = 0.1,
) -> torch.Tensor:
    """(B,) weighted mean GMoF of pixel residuals divided by each person's size in pixels (scale-free, so a
    small person and a large one count alike)."""
    residual = (project(points_cam, intrinsics) - keypoints) / scale[:, None, None]
    energy = gmof((residual**2).sum(-1), sigma)
    return (weights * energy).sum(-1) / weights.sum(-1).clamp(min=1e-6)


def centred(points: torch.Tensor, weights: torch.Tensor, torso: list[int]) -> torch.Tensor:
    """Points minus their torso centre (mean of the torso points weighted by confidence)."""
    w = weights[:, torso, None] + 1e-6
    centre = (points[:, torso] * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    return points - centre


def world_loss(
    points_cam: torch.Tensor, world: torch.Tensor, weights: torch.Tensor, torso: list[int], sigma: float = 0.1,
    scale_range: tuple[float, float] = (0.8, 1.5),
) -> torch.Tensor:
    """(B,) body-relative 3D shape agreement with MediaPipe's world landmarks (camera-aligned axes).

    Both point sets are centred on the torso; MediaPipe's are scaled by the least-squares factor (clamped) so the
    term constrains the pose and the limbs' relative depths, not the body's size, which is left to the shape
    prior and the reprojection (MediaPipe's metric scale is generic and ~10% small).
    """
    model = centred(points_cam, weights, torso)
    target = centred(world, weights, torso)
    w = weights[..., None]
    scale = ((w * model * target).sum((1, 2)) / (w * target * target).sum((1, 2)).clamp(min=1e-9)).detach()
    target = target * scale.clamp(*scale_range)[:, None, None]
    energy = gmof(((model - target) ** 2).sum(-1), sigma)
    return (weights * energy).sum(-1) / weights.sum(-1).clamp(min=1e-6)
