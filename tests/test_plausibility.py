"""The plausibility gate on fitted bodies: planted bad fits (upside down, shrunk, off their keypoints, a tiny
body) are caught; a good fit passes."""

from __future__ import annotations

import numpy as np
import torch

from backend.body import load_body_model
from backend.fitting import BodyPoints
from backend.fitting.plausibility import implausible, standing_heights
from backend.geometry.camera import Camera

CAMERA = Camera.from_fov(1280, 720)


def _fitted(points: BodyPoints, global_orientation: list[float], depth: float, betas: np.ndarray | None = None):
    """Projected body points and joints of a standing body at ``depth`` metres."""
    rotmats = torch.eye(3).repeat(1, 24, 1, 1)
    angle = torch.as_tensor(global_orientation, dtype=torch.float32)
    from backend.body.rotations import axis_angle_to_matrix

    rotmats[:, 0] = axis_angle_to_matrix(angle[None])
    b = torch.zeros(1, points.num_betas) if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None]
    with torch.no_grad():
        joints, body_points = points(rotmats, b)
        rest = points.rest_joints(b).numpy()
    shift = torch.tensor([0.0, 0.2, depth]) - joints[0, 0]
    return CAMERA.project((body_points[0] + shift).numpy()), CAMERA.project((joints[0] + shift).numpy()), rest


def test_a_good_fit_passes_and_planted_bad_fits_are_caught() -> None:
    points = BodyPoints(load_body_model("open-body"))
    upright = [np.pi, 0.0, 0.0]  # the body model's up (+y) turned to the camera's up (-y)
    good_points, good_joints, rest = _fitted(points, upright, 4.0)
    keypoints, confidence = good_points.copy(), np.ones(25)
    size = np.ptp(keypoints, axis=0).max()
    heights = standing_heights(rest)
    assert 1.5 < heights[0] < 1.9
    flipped_points, flipped_joints, _ = _fitted(points, [0.0, 0.0, 0.0], 4.0)  # head down
    flipped_points += good_points.mean(0) - flipped_points.mean(0)  # on its person, but upside down
    shrunk_points = (good_points - good_points.mean(0)) * 0.4 + good_points.mean(0)
    off_points = good_points + [0.4 * size, 0.0]
    cases = {
        "good": (good_points, good_joints, heights[0]),
        "upside down": (flipped_points, flipped_joints, heights[0]),
        "shrunk": (shrunk_points, good_joints, heights[0]),
        "far off": (off_points, good_joints + [0.4 * size, 0.0], heights[0]),
        "tiny": (good_points, good_joints, 0.5),
    }
    verdicts = implausible(np.stack([c[0] for c in cases.values()]), np.stack([keypoints] * len(cases)),
                           np.stack([confidence] * len(cases)), np.full(len(cases), size),
                           np.stack([c[1] for c in cases.values()]), np.array([c[2] for c in cases.values()]))
    found = dict(zip(cases, verdicts))
    assert found["good"] is None
    assert "upside down" in found["upside down"]
    assert "shrunk" in found["shrunk"] or "off its keypoints" in found["shrunk"]
    assert "off its keypoints" in found["far off"]
    assert "tiny" in found["tiny"]


def test_a_body_too_little_seen_is_not_judged_on_its_keypoints() -> None:
    keypoints = np.zeros((1, 25, 2))
    verdict = implausible(keypoints + 500, keypoints, np.zeros((1, 25)), np.array([100.0]),
                          np.zeros((1, 24, 2)), np.array([1.7]))
    assert verdict == [None]
