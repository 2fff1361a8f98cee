"""Temporal smoothing of one person's motion: zero-phase for files (default), One-Euro for streaming.

One setting, ``smoothness`` in 0..1 (0 = off), scales every filter. Root and depth are smoothed more than joint
rotations: a monocular estimate's depth jitters most, its image position less, its pose least (and fast limbs
must not be flattened). The root is filtered as (x/z, y/z, log z) so the strong depth filter does not drag the
person across the image: the image position follows its own, lighter filter. Rotations are filtered on the
rotation manifold's double cover: unit quaternions made sign-continuous along time (q and -q are the same
rotation), filtered per component, renormalised.

The offline filter is local-linear Gaussian regression: zero-phase (no lag), exact on linear motion, and
unbiased at the ends of a segment where a plain Gaussian would pull the ends towards the middle. Smoothing runs
per segment: a track is split wherever it goes unseen for more than ``max_gap`` frames (tracks never span shot
cuts), and short gaps are filled by interpolation before filtering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import correlate1d

from backend.body.rotations import axis_angle_to_quaternion, quaternion_to_axis_angle
from backend.errors import OptionError
from backend.options import FIELDS

DEFAULT_SMOOTHNESS: float = FIELDS["smoothing"].default  # declared once, in the option schema
FILLED_GAP_S = 0.15  # seconds: gaps up to this long are bridged by interpolated rows (4 frames at 25-30 fps)
METHODS = ("zero-phase", "one-euro")
_FALLBACK_FPS = 30.0  # image folders have no frame rate; treat them as 30 fps footage


@dataclass(frozen=True)
class SmoothingSettings:
    smoothness: float = DEFAULT_SMOOTHNESS  # 0 = off, 1 = strongest
    method: str = "zero-phase"  # "zero-phase" (files) or "one-euro" (streaming, causal)
    max_gap: int = 3  # frames unseen after which a track's motion is smoothed as a new segment
    rotation_sigma_s: float = 0.06  # Gaussian sigma in seconds at smoothness 1: joint rotations
    lateral_sigma_s: float = 0.1  # ... image position of the root (x/z, y/z)
    depth_sigma_s: float = 0.3  # ... depth of the root (log z)

    def __post_init__(self) -> None:
        if not 0.0 <= self.smoothness <= 1.0:
            raise OptionError(f"smoothness must be between 0 and 1, got {self.smoothness}")
        if self.method not in METHODS:
            raise OptionError(f"unknown smoothing method {self.method!r} (choose from {', '.join(METHODS)})")

    def sigmas(self, fps: float) -> tuple[float, float, float]:
        """Sigmas in frames for (rotations, lateral root, depth)."""
        frames_per_s = (fps if fps > 0 else _FALLBACK_FPS) * self.smoothness
        return (self.rotation_sigma_s * frames_per_s, self.lateral_sigma_s * frames_per_s,
                self.depth_sigma_s * frames_per_s)  # fmt: skip


def smooth_motion(
    poses: np.ndarray, root: np.ndarray, frames: np.ndarray, fps: float, settings: SmoothingSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth one track: ``poses`` (N, J, 3) axis-angle, ``root`` (N, 3) camera-frame pelvis, ``frames`` (N,)
    increasing frame indices. Returns new arrays of the same shapes; smoothness 0 returns copies unchanged."""
    poses, root = np.array(poses, np.float64), np.array(root, np.float64)
    if settings.smoothness <= 0 or len(frames) < 2:
        return poses, root
    frames = np.asarray(frames, np.int64)
    breaks = np.flatnonzero(np.diff(frames) > settings.max_gap + 1) + 1
    for rows in np.split(np.arange(len(frames)), breaks):
        if len(rows) >= 2:
            poses[rows], root[rows] = _smooth_segment(poses[rows], root[rows], frames[rows], fps, settings)
    return poses, root


def _smooth_segment(poses, root, frames, fps, settings):
    quats = align_quaternion_signs(_to_quaternions(poses))
    signal_root = _root_to_signal(root)
    grid = frames - frames[0]
    if grid[-1] + 1 != len(grid):  # short gaps: fill by interpolation, filter on the full grid, sample back
        quats, signal_root = _fill(quats, grid), _fill(signal_root, grid)
    rot_sigma, lateral_sigma, depth_sigma = settings.sigmas(fps)
    if settings.method == "zero-phase":
        quats = local_linear_smooth(quats, rot_sigma)
        signal_root[:, :2] = local_linear_smooth(signal_root[:, :2], lateral_sigma)
        signal_root[:, 2:] = local_linear_smooth(signal_root[:, 2:], depth_sigma)
    else:
        rate = fps if fps > 0 else _FALLBACK_FPS
        quats = one_euro_sequence(quats, rate, _gaussian_cutoff(rot_sigma, rate), beta=1.0)
        signal_root[:, :2] = one_euro_sequence(signal_root[:, :2], rate, _gaussian_cutoff(lateral_sigma, rate), 5.0)
        signal_root[:, 2:] = one_euro_sequence(signal_root[:, 2:], rate, _gaussian_cutoff(depth_sigma, rate), 1.0)
    if len(quats) != len(grid):
        quats, signal_root = quats[grid], signal_root[grid]
    return _to_axis_angle(quats), _signal_to_root(signal_root)


# ----------------------------------------------------------------------------------------------- representations


def filled_gap_frames(fps: float) -> int:
    """The longest gap (frames unseen) bridged by interpolated rows: ``FILLED_GAP_S`` of footage, at least one
    frame. Longer gaps are left empty, and the scene hides the person there: a body guessed across a longer gap
    drifts off its person while people and camera move."""
    return max(1, round(FILLED_GAP_S * (fps if fps > 0 else _FALLBACK_FPS)))


def fill_short_gaps(frames: np.ndarray, poses: np.ndarray, root: np.ndarray, max_gap: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One track's rows with gaps of at most ``max_gap`` frames filled: rotations interpolated on the quaternion
    double cover, the root in (x/z, y/z, log z) like the smoother. Returns (frames, poses, root, observed, source)
    where ``observed`` marks the original rows and ``source`` gives, per row, the original row it copies its
    other attributes from (the last one before it)."""
    frames = np.asarray(frames, np.int64)
    gaps = np.diff(frames) - 1
    if not ((gaps > 0) & (gaps <= max_gap)).any():
        return frames, np.asarray(poses), np.asarray(root), np.ones(len(frames), bool), np.arange(len(frames))
    out_frames = [frames[:1]]
    for k, gap in enumerate(gaps):
        if 0 < gap <= max_gap:
            out_frames.append(np.arange(frames[k] + 1, frames[k + 1]))
        out_frames.append(frames[k + 1 : k + 2])
    full = np.concatenate(out_frames)
    quats = align_quaternion_signs(_to_quaternions(np.asarray(poses, np.float64)))
    signal = _root_to_signal(np.asarray(root, np.float64))
    new_quats = _interp_rows(quats, frames, full)
    new_root = _signal_to_root(_interp_rows(signal, frames, full))
    observed = np.isin(full, frames)
    source = np.searchsorted(frames, full, side="right") - 1
    return full, _to_axis_angle(new_quats), new_root, observed, source


def _interp_rows(values: np.ndarray, at: np.ndarray, to: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(to, at, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(to), *values.shape[1:]))


def _to_quaternions(poses: np.ndarray) -> np.ndarray:
    return axis_angle_to_quaternion(torch.as_tensor(poses, dtype=torch.float64)).numpy()


def _to_axis_angle(quats: np.ndarray) -> np.ndarray:
    quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True).clip(1e-12)
    return quaternion_to_axis_angle(torch.as_tensor(quats)).numpy()


def align_quaternion_signs(quats: np.ndarray) -> np.ndarray:
    """Flip quaternions (T, ..., 4) along time so consecutive ones lie in the same hemisphere (dot >= 0)."""
    if len(quats) < 2:
        return quats.copy()
    dots = np.sum(quats[1:] * quats[:-1], axis=-1)
    flips = np.concatenate([np.ones((1, *dots.shape[1:])), np.where(dots < 0, -1.0, 1.0)])
    return quats * np.cumprod(flips, axis=0)[..., None]


def _root_to_signal(root: np.ndarray) -> np.ndarray:
    """(x, y, z) -> (x/z, y/z, log z): image position and depth, filtered with different strengths."""
    z = np.clip(root[:, 2], 1e-3, None)
    return np.stack([root[:, 0] / z, root[:, 1] / z, np.log(z)], axis=1)


def _signal_to_root(signal: np.ndarray) -> np.ndarray:
    z = np.exp(signal[:, 2])
    return np.stack([signal[:, 0] * z, signal[:, 1] * z, z], axis=1)


def _fill(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` observed at integer times ``grid`` onto 0..grid[-1]."""
    flat = values.reshape(len(values), -1)
    full = np.arange(grid[-1] + 1)
    filled = np.stack([np.interp(full, grid, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return filled.reshape((len(full), *values.shape[1:]))


# ----------------------------------------------------------------------------------------------- filters


def local_linear_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase smoothing of uniformly sampled ``values`` (T, ...) along axis 0: at every sample, the value of
    a Gaussian-weighted straight-line fit (sigma in samples). Linear signals pass unchanged, ends included."""
    if sigma < 0.3 or len(values) < 3:
        return values.copy()
    radius = max(1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    ones = np.ones(len(values))

    def window_sum(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        return correlate1d(signal, kernel, axis=0, mode="constant", cval=0.0)

    s0, s1, s2 = (window_sum(ones, weights * offsets**p) for p in range(3))
    t0, t1 = window_sum(values, weights), window_sum(values, weights * offsets)
    shape = (len(values),) + (1,) * (values.ndim - 1)
    s0, s1, s2 = s0.reshape(shape), s1.reshape(shape), s2.reshape(shape)
    det = s0 * s2 - s1 * s1
    ok = det > 1e-9 * s0 * s0
    return np.where(ok, (s2 * t0 - s1 * t1) / np.where(ok, det, 1.0), t0 / s0)


class OneEuroFilter:
    """The One-Euro filter (Casiez et al. 2012) for arrays: a first-order low-pass whose cutoff rises with
    speed, so slow motion is steady and fast motion lags little. Causal: for streaming."""

    def __init__(self, rate: float, min_cutoff: float, beta: float, derivative_cutoff: float = 1.0) -> None:
        self.rate, self.min_cutoff, self.beta, self.derivative_cutoff = rate, min_cutoff, beta, derivative_cutoff
        self._value: np.ndarray | None = None
        self._derivative: np.ndarray | None = None

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self._value is None:
            self._value, self._derivative = value.copy(), np.zeros_like(value)
            return value.copy()
        raw_derivative = (value - self._value) * self.rate
        self._derivative = _blend(self._derivative, raw_derivative, self._alpha(self.derivative_cutoff))
        cutoff = self.min_cutoff + self.beta * np.abs(self._derivative)
        self._value = _blend(self._value, value, self._alpha(cutoff))
        return self._value.copy()

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau * self.rate)


def _blend(old: np.ndarray, new: np.ndarray, alpha) -> np.ndarray:
    return old + alpha * (new - old)


def one_euro_sequence(values: np.ndarray, rate: float, min_cutoff: float, beta: float) -> np.ndarray:
    """Run a :class:`OneEuroFilter` over ``values`` (T, ...) in time order."""
    if not math.isfinite(min_cutoff):
        return values.copy()
    filt = OneEuroFilter(rate, min_cutoff, beta)
    return np.stack([filt(v) for v in values])


def _gaussian_cutoff(sigma_frames: float, rate: float) -> float:
    """The -3 dB frequency (Hz) of a Gaussian of ``sigma_frames``: a One-Euro min cutoff of similar strength."""
    if sigma_frames < 0.3:
        return math.inf
    return 0.1325 * rate / sigma_frames


__all__ = [
    "DEFAULT_SMOOTHNESS", "METHODS", "OneEuroFilter", "SmoothingSettings", "align_quaternion_signs",
    "local_linear_smooth", "one_euro_sequence", "smooth_motion",
]  # fmt: skip
