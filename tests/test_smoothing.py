"""Temporal smoothing: less jitter, no lag, rotations handled as rotations, smoothness 0 is the identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.body.rotations import axis_angle_to_quaternion, quaternion_to_matrix
from backend.tracking.smoothing import (
    OneEuroFilter,
    SmoothingSettings,
    align_quaternion_signs,
    local_linear_smooth,
    smooth_motion,
)

FPS = 30.0


def _trajectory(frames: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person walking on a curve at 3..5 m depth with a swinging arm; clean and noisy versions of the root."""
    t = np.arange(frames) / FPS
    root = np.stack([0.8 * np.sin(0.7 * t), 0.1 * np.sin(1.3 * t), 4.0 + 0.8 * np.sin(0.4 * t)], axis=1)
    poses = np.zeros((frames, 24, 3))
    poses[:, 0] = [np.pi, 0, 0]  # upright in OpenCV axes
    poses[:, 16, 2] = 0.8 * np.sin(2.0 * t)
    noisy_root = root + rng.normal(0, 1, root.shape) * [noise, noise, 4 * noise]  # depth jitters most
    noisy_poses = poses + rng.normal(0, noise, poses.shape)
    return root, poses, (noisy_root, noisy_poses)


def _acceleration(values: np.ndarray) -> float:
    return float(np.abs(np.diff(values, n=2, axis=0)).mean())


def test_smoothing_cuts_jitter_and_gets_closer_to_the_truth():
    rng = np.random.default_rng(0)
    root, poses, (noisy_root, noisy_poses) = _trajectory(150, rng, 0.02)
    frames = np.arange(150)
    smooth_poses, smooth_root = smooth_motion(noisy_poses, noisy_root, frames, FPS, SmoothingSettings(0.5))
    assert _acceleration(smooth_root) < 0.25 * _acceleration(noisy_root)
    assert np.abs(smooth_root - root).mean() < 0.5 * np.abs(noisy_root - root).mean()
    arm = lambda p: quaternion_to_matrix(axis_angle_to_quaternion(torch.as_tensor(p[:, 16]))).numpy()  # noqa: E731
    assert np.abs(arm(smooth_poses) - arm(poses)).mean() < 0.7 * np.abs(arm(noisy_poses) - arm(poses)).mean()


def test_zero_phase_smoothing_does_not_shift_a_smooth_signal():
    t = np.arange(120) / FPS
    signal = np.stack([np.sin(2 * np.pi * 0.5 * t), 0.3 * t], axis=1)  # slow sine and a straight line
    smoothed = local_linear_smooth(signal, sigma=3.0)
    assert np.abs(smoothed[:, 1] - signal[:, 1]).max() < 1e-9  # lines pass unchanged, ends included
    lag = np.argmax(np.correlate(smoothed[:, 0] - smoothed[:, 0].mean(), signal[:, 0] - signal[:, 0].mean(), "full"))
    assert lag == len(t) - 1  # the best alignment is at zero shift
    assert np.abs(smoothed[:, 0] - signal[:, 0]).max() < 0.06  # a slight loss of amplitude, no shift


def test_quaternion_sign_flips_are_not_averaged_into_nonsense():
    rng = np.random.default_rng(1)
    angles = np.linspace(0.0, 0.5, 60)
    poses = np.zeros((60, 24, 3))
    poses[:, 3, 0] = angles
    quats = axis_angle_to_quaternion(torch.as_tensor(poses)).numpy()
    flipped = quats * np.where(rng.random((60, 24, 1)) < 0.5, -1.0, 1.0)
    aligned = align_quaternion_signs(flipped)
    assert (np.sum(aligned[1:] * aligned[:-1], axis=-1) > 0).all()
    # Near 180 degrees axis-angle itself flips (pi - e about x becomes pi - e about -x): smoothing must cope.
    angle = np.pi + np.linspace(-0.1, 0.1, 60)
    poses[:, 0, 0] = np.where(angle > np.pi, angle - 2 * np.pi, angle)
    smooth_poses, _ = smooth_motion(poses, np.tile([0, 0, 4.0], (60, 1)), np.arange(60), FPS, SmoothingSettings(1.0))
    rot = lambda p: quaternion_to_matrix(axis_angle_to_quaternion(torch.as_tensor(p))).numpy()  # noqa: E731
    assert np.abs(rot(smooth_poses[:, 0]) - rot(poses[:, 0])).max() < 0.01
    assert np.abs(rot(smooth_poses[:, 3]) - rot(poses[:, 3])).max() < 1e-6


def test_smoothness_zero_is_the_identity():
    rng = np.random.default_rng(2)
    _, _, (root, poses) = _trajectory(40, rng, 0.05)
    out_poses, out_root = smooth_motion(poses, root, np.arange(40), FPS, SmoothingSettings(0.0))
    np.testing.assert_array_equal(out_poses, poses)
    np.testing.assert_array_equal(out_root, root)


def test_segments_are_smoothed_separately_across_long_gaps():
    root = np.concatenate([np.tile([0.0, 0.0, 4.0], (20, 1)), np.tile([1.0, 0.0, 8.0], (20, 1))])
    frames = np.concatenate([np.arange(20), np.arange(40, 60)])  # a 20-frame gap: two segments
    _, out = smooth_motion(np.zeros((40, 24, 3)), root, frames, FPS, SmoothingSettings(1.0))
    np.testing.assert_allclose(out, root, atol=1e-9)  # constant within each segment: nothing bleeds across


def test_one_euro_is_steady_when_still_and_follows_fast_motion():
    rng = np.random.default_rng(3)
    still = 1.0 + rng.normal(0, 0.01, 90)
    filt = OneEuroFilter(FPS, min_cutoff=1.0, beta=5.0)
    out = np.array([filt(np.array([v])) for v in still])[:, 0]
    assert out[30:].std() < 0.4 * still[30:].std()
    ramp = np.linspace(0, 3, 90)  # 1 unit per second
    filt = OneEuroFilter(FPS, min_cutoff=1.0, beta=5.0)
    out = np.array([filt(np.array([v])) for v in ramp])[:, 0]
    assert abs(out[-1] - ramp[-1]) < 0.1


def test_one_euro_method_runs_through_smooth_motion():
    rng = np.random.default_rng(4)
    _, _, (root, poses) = _trajectory(60, rng, 0.02)
    settings = SmoothingSettings(0.5, method="one-euro")
    out_poses, out_root = smooth_motion(poses, root, np.arange(60), FPS, settings)
    assert out_poses.shape == poses.shape and _acceleration(out_root) < _acceleration(root)


@pytest.mark.parametrize("kwargs", [{"smoothness": 1.5}, {"smoothness": -0.1}, {"method": "kalman"}])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SmoothingSettings(**kwargs)


def test_assembled_result_is_smoothed_and_joints2d_match_the_smoothed_bodies():
    from backend.body import load_body_model
    from backend.estimators.base import PersonEstimate
    from backend.geometry.camera import Camera
    from backend.result.assembly import assemble_result
    from backend.sources.frames import SourceInfo
    from backend.tracking.tracker import Track

    body = load_body_model("open-body")
    camera = Camera.from_fov(640, 480)
    info = SourceInfo(Path("clip.mp4"), "video", 640, 480, FPS, 60, 0)
    rng = np.random.default_rng(5)
    _, _, (root, poses) = _trajectory(60, rng, 0.03)
    people = [
        PersonEstimate(poses[i].astype(np.float32), np.zeros(body.num_betas, np.float32), root[i].astype(np.float32),
                       np.zeros((24, 2), np.float32), 0.9)
        for i in range(60)
    ]  # fmt: skip
    tracks = [Track(0, list(range(60)), people)]
    raw = assemble_result(tracks, body, camera, info, "fake", 60)
    smooth = assemble_result(tracks, body, camera, info, "fake", 60, smoothing=SmoothingSettings(0.5))
    assert _acceleration(smooth["transl"]) < 0.3 * _acceleration(raw["transl"])
    joints = body(torch.as_tensor(smooth["poses"]), torch.as_tensor(smooth["betas"])[smooth["row_track"]],
                  torch.as_tensor(smooth["transl"])).joints.numpy()  # fmt: skip
    np.testing.assert_allclose(camera.project(joints.astype(np.float64)), smooth["joints2d"], atol=0.05)
