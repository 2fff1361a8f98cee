"""Rotation conversions in torch: batched over leading dims, differentiable, stable near 0 and pi.

Conventions: axis-angle is a 3-vector whose norm is the angle (radians); quaternions are (w, x, y, z) and are
returned with w >= 0; rotation matrices act on column vectors; the 6D representation is the one of
specs/estimators.md §6.3 (Zhou et al. via SPIN): a 3x2 matrix stored row-major whose two columns are the
first two columns of R.

Small-angle branches use Taylor series and feed the unused branch a safe input, so neither values nor
gradients become NaN at exactly zero (a plain ``r / |r|`` would).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_SMALL = 1e-6  # squared angle below which Taylor series replace the closed forms


def _safe_sqrt_norm2(sq: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """sqrt(sq) where it is large enough, 1 elsewhere (those entries are replaced by a series anyway)."""
    return torch.sqrt(torch.where(small, torch.ones_like(sq), sq))


@functools.lru_cache(maxsize=16)
def _skew_basis(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(3, 9): row k is [e_k]_x flattened, so [v]_x = v @ basis (one product where the fit takes its gradient
    through it hundreds of times, instead of nine stacked pieces). Made as a normal tensor even when first asked
    for under ``torch.inference_mode`` (an inference tensor cannot be saved for a later backward pass)."""
    with torch.inference_mode(False):
        basis = torch.zeros(3, 3, 3, dtype=dtype, device=device)
        basis[0, 2, 1], basis[0, 1, 2] = 1.0, -1.0
        basis[1, 0, 2], basis[1, 2, 0] = 1.0, -1.0
        basis[2, 1, 0], basis[2, 0, 1] = 1.0, -1.0
        return basis.reshape(3, 9)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """The cross-product matrix [v]_x, shape (..., 3, 3)."""
    return (v @ _skew_basis(v.dtype, v.device)).reshape((*v.shape[:-1], 3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula R = I + a K + b K^2 with K = [r]_x, a = sin t / t, b = (1 - cos t) / t^2."""
    sq = (axis_angle * axis_angle).sum(-1)
    small = sq < _SMALL
    angle = _safe_sqrt_norm2(sq, small)
    a = torch.where(small, 1.0 - sq / 6.0 + sq * sq / 120.0, torch.sin(angle) / angle)
    b = torch.where(small, 0.5 - sq / 24.0 + sq * sq / 720.0, (1.0 - torch.cos(angle)) / torch.where(small, 1.0, sq))
    k = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """q = (cos(t/2), r sin(t/2) / t); the factor sin(t/2)/t has a series near 0."""
    sq = (axis_angle * axis_angle).sum(-1)
    small = sq < _SMALL
    angle = _safe_sqrt_norm2(sq, small)
    half = torch.where(small, torch.zeros_like(angle), 0.5 * angle)
    factor = torch.where(small, 0.5 - sq / 48.0, torch.sin(half) / angle)
    w = torch.where(small, 1.0 - sq / 8.0, torch.cos(half))
    return torch.cat([w[..., None], axis_angle * factor[..., None]], dim=-1)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Angle from atan2 (accurate at 0 and pi); q and -q give the same rotation, so w is made >= 0 first."""
    q = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    w, xyz = q[..., 0], q[..., 1:]
    sin_sq = (xyz * xyz).sum(-1)
    norm_sq = sin_sq + w * w
    small = sin_sq < _SMALL * norm_sq
    sin_half = _safe_sqrt_norm2(sin_sq, small)
    angle = 2.0 * torch.atan2(sin_half, w)
    # angle / sin(angle/2) = 2 atan(u) / (u w) ~ 2/w * (1 - u^2 / 3) with u = sin/w small (w > 0 there).
    w_safe = torch.where(small, w, torch.ones_like(w))
    factor = torch.where(small, 2.0 / w_safe * (1.0 - sin_sq / (3.0 * w_safe * w_safe)), angle / sin_half)
    return xyz * factor[..., None]


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit or non-unit quaternion (normalised here) to a rotation matrix."""
    w, x, y, z = quaternion.unbind(-1)
    two_s = 2.0 / (quaternion * quaternion).sum(-1)
    m = torch.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape((*quaternion.shape[:-1], 3, 3))


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Shepperd's method: of the four algebraically equal formulas, use the one with the largest divisor."""
    m = matrix.reshape((*matrix.shape[:-2], 9))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    q_abs = _sqrt_positive(
        torch.stack(
            [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
        )
    )
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    floor = torch.tensor(0.1, dtype=q_abs.dtype, device=q_abs.device)
    candidates = candidates / (2.0 * torch.maximum(q_abs[..., None], floor))
    best = F.one_hot(q_abs.argmax(dim=-1), num_classes=4) > 0.5
    q = candidates[best].reshape((*matrix.shape[:-2], 4))
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Through the quaternion, which stays well conditioned at 180 degrees (acos of the trace does not)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt on the two columns of the row-major 3x2 matrix; R = [b1 b2 b1 x b2] as columns."""
    a = rot6d.reshape((*rot6d.shape[:-1], 3, 2))
    b1 = F.normalize(a[..., 0], dim=-1)
    a2 = a[..., 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """The first two columns of R, flattened row-major: [R00, R01, R10, R11, R20, R21]."""
    return matrix[..., :, :2].reshape((*matrix.shape[:-2], 6))
