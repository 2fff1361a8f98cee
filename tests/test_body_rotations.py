"""Rotation conversions: against scipy as an independent reference, round trips, edge angles, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from backend.body import rotations as rot


def _random_axis_angles(n: int, seed: int = 0, max_angle: float = math.pi - 1e-3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64), dim=-1)
    angle = torch.rand(n, 1, generator=gen, dtype=torch.float64) * max_angle
    return axis * angle


def test_axis_angle_to_matrix_matches_scipy() -> None:
    aa = _random_axis_angles(200)
    expected = Rotation.from_rotvec(aa.numpy()).as_matrix()
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa).numpy(), expected, atol=1e-12)


def test_quaternions_are_wxyz_and_match_scipy() -> None:
    aa = _random_axis_angles(200, seed=1)
    xyzw = Rotation.from_rotvec(aa.numpy()).as_quat()
    expected = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    np.testing.assert_allclose(rot.axis_angle_to_quaternion(aa).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_quaternion(rot.axis_angle_to_matrix(aa)).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(rot.quaternion_to_matrix(torch.from_numpy(expected)).numpy(),
                               Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-12)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_round_trips(dtype: torch.dtype, atol: float) -> None:
    aa = _random_axis_angles(500, seed=2).to(dtype).reshape(5, 100, 3)  # extra leading dims
    mat = rot.axis_angle_to_matrix(aa)
    assert mat.shape == (5, 100, 3, 3)
    torch.testing.assert_close(rot.matrix_to_axis_angle(mat), aa, atol=atol, rtol=0)
    torch.testing.assert_close(rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(aa)), aa, atol=atol, rtol=0)
    torch.testing.assert_close(rot.quaternion_to_matrix(rot.matrix_to_quaternion(mat)), mat, atol=atol, rtol=0)
    eye = torch.eye(3, dtype=dtype).expand_as(mat)
    torch.testing.assert_close(mat @ mat.transpose(-1, -2), eye, atol=atol, rtol=0)


@pytest.mark.parametrize("angle", [math.pi, math.pi - 1e-7, math.pi - 1e-4])
def test_near_pi(angle: float) -> None:
    axis = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.8], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
                                                      dtype=torch.float64), dim=-1)
    aa = axis * angle
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa))
    error = (back - aa).norm(dim=-1)
    if angle == math.pi:  # r and -r are the same rotation
        error = torch.minimum(error, (back + aa).norm(dim=-1))
    assert error.max() < 1e-6
    torch.testing.assert_close(rot.axis_angle_to_matrix(back), rot.axis_angle_to_matrix(aa), atol=1e-12, rtol=0)


@pytest.mark.parametrize("scale", [0.0, 1e-12, 1e-8, 1e-4])
def test_near_zero(scale: float) -> None:
    aa = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64) * scale
    expected = Rotation.from_rotvec(aa.numpy()).as_matrix()
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa).numpy(), expected, atol=1e-15)
    torch.testing.assert_close(rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa)), aa, atol=1e-15, rtol=1e-6)
    torch.testing.assert_close(rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(aa)), aa, atol=1e-15,
                               rtol=1e-6)


def test_gradients_finite_at_zero_and_correct() -> None:
    zero = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    for fn in (rot.axis_angle_to_matrix, rot.axis_angle_to_quaternion):
        (grad,) = torch.autograd.grad(fn(zero).pow(2).sum() + fn(zero).sum(), zero)
        assert torch.isfinite(grad).all()
    # d R / d r at r = 0 is the skew matrix: R ~ I + [r]_x.
    (grad,) = torch.autograd.grad(rot.axis_angle_to_matrix(zero)[:, 2, 1].sum(), zero)
    torch.testing.assert_close(grad, torch.tensor([[1.0, 0.0, 0.0]] * 4, dtype=torch.float64))
    identity = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(rot.matrix_to_axis_angle(identity).sum(), identity)
    assert torch.isfinite(grad).all()
    near = (_random_axis_angles(3, seed=3) * 1e-3).requires_grad_(True)
    far = _random_axis_angles(3, seed=4).requires_grad_(True)
    for x in (near, far):
        assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (x,))
        assert torch.autograd.gradcheck(lambda r: rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(r)), (x,))
        assert torch.autograd.gradcheck(lambda r: rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(r)), (x,))


def test_rot6d_column_convention() -> None:
    identity6 = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(rot.rot6d_to_matrix(identity6), torch.eye(3))
    mat = rot.axis_angle_to_matrix(_random_axis_angles(50, seed=5))
    six = rot.matrix_to_rot6d(mat)
    expected = torch.stack([mat[:, 0, 0], mat[:, 0, 1], mat[:, 1, 0], mat[:, 1, 1], mat[:, 2, 0], mat[:, 2, 1]], -1)
    torch.testing.assert_close(six, expected)
    torch.testing.assert_close(rot.rot6d_to_matrix(six), mat)
    # Unnormalised input: first column = normalised (x0, x2, x4); second column in the plane of (x1, x3, x5).
    raw = torch.tensor([[2.0, 1.0, 0.0, 1.0, 0.0, 0.0]])
    out = rot.rot6d_to_matrix(raw)[0]
    torch.testing.assert_close(out[:, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[:, 1], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(out[:, 2], torch.tensor([0.0, 0.0, 1.0]))
    batch = torch.randn(7, 24, 6, dtype=torch.float64)
    r = rot.rot6d_to_matrix(batch)
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(r))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(7, 24, dtype=torch.float64))
