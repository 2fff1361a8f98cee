"""Is a fitted body a plausible reading of its person? Checked on every fitted body before it is kept.

A fit can converge to a body that explains the keypoints badly or not at all: turned upside down (a skeleton
read the wrong way round), shrunk into a fraction of the person (and floated to a depth where that size fits),
or far off the keypoints. Each check compares the fit with the observations it came from, in the image:

* ``tiny``: a standing height outside a person's (0.7 to 2.3 m);
* ``upside down``: the fitted torso (pelvis to neck, projected) points against the keypoints' torso (hips to
  shoulders);
* ``shrunk``: the fitted body's projected extent over the seen keypoints' extent;
* ``far off``: the mean distance of the confidently seen body points from their keypoints, over the person's
  size.

The estimator refits a failed body once from another start and drops it if it fails again; the reasons are in
the estimator's debug report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.fitting.mapping import POINT_INDEX

SHOULDERS = [POINT_INDEX["left_shoulder"], POINT_INDEX["right_shoulder"]]
HIPS = [POINT_INDEX["left_hip"], POINT_INDEX["right_hip"]]
PELVIS, NECK, HEAD, L_ANKLE, R_ANKLE = 0, 12, 15, 7, 8


@dataclass(frozen=True)
class PlausibilityLimits:
    max_reprojection: float = 0.2  # mean error of seen points over the person's size
    max_torso_angle_deg: float = 100.0  # fitted torso vs the keypoints' torso, in the image
    min_extent_ratio: float = 0.6  # fitted projected extent over the seen keypoints' extent
    min_height_m: float = 0.7  # standing height of the fitted body (a toddler is ~0.8 m)
    max_height_m: float = 2.3
    confidence: float = 0.5  # keypoints with at least this confidence count as seen


def implausible(points2d: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, size_px: np.ndarray,
                joints2d: np.ndarray, heights: np.ndarray, limits: PlausibilityLimits | None = None
                ) -> list[str | None]:
    """Per fitted body, why it is implausible (None: plausible).

    ``points2d`` (B, 25, 2): the fit's body points projected; ``keypoints`` / ``confidence`` (B, 25): observed;
    ``size_px`` (B,): the person's size in pixels; ``joints2d`` (B, 24, 2): the fit's joints projected;
    ``heights`` (B,): standing height of each fitted body, metres.
    """
    limits = limits or PlausibilityLimits()
    out: list[str | None] = []
    for b in range(len(points2d)):
        seen = confidence[b] >= limits.confidence
        out.append(_verdict(points2d[b], keypoints[b], seen, float(size_px[b]), joints2d[b], float(heights[b]),
                            limits))
    return out


def _verdict(points2d: np.ndarray, keypoints: np.ndarray, seen: np.ndarray, size: float, joints2d: np.ndarray,
             height: float, limits: PlausibilityLimits) -> str | None:
    if not limits.min_height_m <= height <= limits.max_height_m:
        return f"tiny or giant body ({height:.2f} m standing)"
    if seen.sum() < 4:
        return None  # too little seen to judge the fit against
    if seen[SHOULDERS].all() and seen[HIPS].all():
        observed = keypoints[SHOULDERS].mean(0) - keypoints[HIPS].mean(0)
        fitted = joints2d[NECK] - joints2d[PELVIS]
        cos = float(observed @ fitted) / max(float(np.linalg.norm(observed) * np.linalg.norm(fitted)), 1e-9)
        if np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > limits.max_torso_angle_deg:
            return "upside down (its torso points against the keypoints')"
    extent_seen = float(np.ptp(keypoints[seen], axis=0).max())
    extent_fit = float(np.ptp(points2d[seen], axis=0).max())
    if extent_seen > 0 and extent_fit / extent_seen < limits.min_extent_ratio:
        return f"shrunk ({extent_fit / extent_seen:.0%} of its person's extent)"
    error = float(np.linalg.norm(points2d[seen] - keypoints[seen], axis=-1).mean()) / max(size, 1.0)
    if error > limits.max_reprojection:
        return f"far off its keypoints (mean error {error:.0%} of its size)"
    return None


def standing_heights(rest_joints: np.ndarray) -> np.ndarray:
    """(B, 24, 3) rest joints (metres) -> (B,) approximate standing height: ankles to head joint plus the skull
    above it and the foot below (about 12 % of the ankle-to-head distance)."""
    ankles = rest_joints[:, [L_ANKLE, R_ANKLE]].mean(axis=1)
    return 1.12 * np.linalg.norm(rest_joints[:, HEAD] - ankles, axis=-1)
