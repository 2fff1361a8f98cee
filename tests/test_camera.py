"""The one camera: numpy and torch projections agree, depth is clamped, a resized camera sees the same picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.geometry.camera import MIN_DEPTH, Camera, project, solve_translation

CAMERA = Camera(1280, 720, 1000.0, 990.0, 640.5, 359.0)


def test_numpy_and_torch_projections_agree_and_keep_dtype() -> None:
    points = np.random.default_rng(0).normal([0, 0, 5], [1, 1, 0.5], (7, 24, 3))
    from_numpy = CAMERA.project(points)
    from_torch = CAMERA.project(torch.tensor(points, dtype=torch.float64))
    assert from_torch.dtype == torch.float64 and from_numpy.dtype == np.float64
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), rtol=1e-12)
    assert CAMERA.project(points.astype(np.float32)).dtype == np.float32
    u = CAMERA.fx * points[..., 0] / points[..., 2] + CAMERA.cx
    np.testing.assert_allclose(from_numpy[..., 0], u)


def test_points_behind_the_camera_never_divide_by_zero_or_flip_onto_the_image() -> None:
    behind = np.array([[0.5, 0.2, -2.0], [0.5, 0.2, 0.0]])
    pixels = CAMERA.project(behind)
    assert np.isfinite(pixels).all()
    np.testing.assert_allclose(pixels[:, 0], CAMERA.fx * 0.5 / MIN_DEPTH + CAMERA.cx)
    assert (pixels[:, 0] > CAMERA.width).all()


def test_projection_is_differentiable_in_torch() -> None:
    points = torch.tensor([[0.3, -0.2, 4.0]], requires_grad=True)
    CAMERA.project(points).sum().backward()
    assert points.grad is not None and torch.isfinite(points.grad).all() and points.grad[0, 2] != 0


def test_a_resized_camera_projects_onto_the_resized_picture() -> None:
    small = CAMERA.resized(320)
    assert (small.width, small.height) == (320, 180)
    points = np.array([[0.4, -0.3, 3.0], [-1.0, 0.5, 8.0]])
    scale = 320 / 1280
    np.testing.assert_allclose(small.project(points), (CAMERA.project(points) + 0.5) * scale - 0.5, atol=1e-9)


def test_solve_translation_recovers_a_known_translation() -> None:
    joints = torch.tensor(np.random.default_rng(1).normal(0, 0.4, (3, 24, 3)))
    truth = torch.tensor([[0.5, 0.1, 6.0], [-1.0, 0.3, 9.0], [2.0, -0.2, 12.0]], dtype=torch.float64)
    k = CAMERA.intrinsics_tensor(dtype=torch.float64)
    pixels = project(joints + truth[:, None], k)
    assert solve_translation(joints, pixels, k).numpy() == pytest.approx(truth.numpy(), abs=1e-6)
