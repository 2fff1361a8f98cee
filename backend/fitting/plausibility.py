"""Is a fitted body a plausible reading of its person? Checked on every fitted body before it is kept.

A fit can converge to a body that explains the keypoints badly or not at all: turned upside down (a skeleton
read the wrong way round), shrunk into a fraction of the person (and floated to a depth where that size fits),
or far off the keypoints. Each check compares the fit with the observations it came from, in the image:

* ``tiny``: a standing height outside a person's (0.7 to 2.3 m);
* ``smaller than its person``: the body's whole standing height in pixels (its stature at its depth) is well
  below the extent of its person's visible silhouette (the finder's mask). A visible part is never taller than
  the whole person, so this catches skeletons the landmark model itself squeezed into a fraction of a person,
  e.g. a fragment of someone cut by the frame edge, which the fit then places small and far away; the other
  checks compare the fit with those squeezed keypoints and cannot see it;
* ``upside down``: the fitted torso (pelvis to neck, projected) points against the keypoints' torso (hips to
  shoulders);
* ``shrunk``: the fitted body's projected extent over the seen keypoints' extent;
* ``far off``: the mean distance of the confidently seen body points from their keypoints, over the person's
  size.

The estimator refits a failed body once from another start and drops it if it fails again; the reasons are in
the estimator's debug report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    # the visible silhouette's extent over the body's standing height in pixels. On the labelled pictures
    # (tests/data/people_heads.json, 64 bodies) good ones reach 1.17 (masks take in a raised arm, hair, a
    # neighbour's edge); a fragment cut by the frame edge 1.73.
    max_visible_ratio: float = 1.4
    # ... and for a body refitted after failing: refitted from the silhouette's size, a fragment's squeezed
    # keypoints pull it back part of the way (the edge fragment of football_dribble.mp4 frame 240: 1.32)
    refit_visible_ratio: float = 1.2
    confidence: float = 0.5  # keypoints with at least this confidence count as seen

    def for_refit(self) -> "PlausibilityLimits":
        """The limits a refitted body must meet: a refit must bring it clearly back among good fits."""
        return replace(self, max_visible_ratio=self.refit_visible_ratio)


def implausible(points2d: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, size_px: np.ndarray,
                joints2d: np.ndarray, heights: np.ndarray, limits: PlausibilityLimits | None = None,
                stature_px: np.ndarray | None = None, visible_px: np.ndarray | None = None) -> list[str | None]:
    """Per fitted body, why it is implausible (None: plausible).

    ``points2d`` (B, 25, 2): the fit's body points projected; ``keypoints`` / ``confidence`` (B, 25): observed;
    ``size_px`` (B,): the person's size in pixels; ``joints2d`` (B, 24, 2): the fit's joints projected;
    ``heights`` (B,): standing height of each fitted body, metres. Optional, for the size check: ``stature_px``
    (B,) that height in pixels at the body's depth (:func:`stature_pixels`) and ``visible_px`` (B,) the extent
    of each person's visible silhouette (:func:`visible_extent`; NaN: unknown).
    """
    limits = limits or PlausibilityLimits()
    out: list[str | None] = []
    for b in range(len(points2d)):
        seen = confidence[b] >= limits.confidence
        verdict = _size_verdict(float(heights[b]), np.nan if stature_px is None else float(stature_px[b]),
                                np.nan if visible_px is None else float(visible_px[b]), limits)
        out.append(verdict or _verdict(points2d[b], keypoints[b], seen, float(size_px[b]), joints2d[b], limits))
    return out


def _size_verdict(height: float, stature_px: float, visible_px: float, limits: PlausibilityLimits) -> str | None:
    if not limits.min_height_m <= height <= limits.max_height_m:
        return f"tiny or giant body ({height:.2f} m standing)"
    if np.isfinite(stature_px) and np.isfinite(visible_px) and visible_px > limits.max_visible_ratio * stature_px:
        return (f"smaller than its person (standing {stature_px:.0f} px at its depth, its visible silhouette "
                f"{visible_px:.0f} px)")
    return None


def _verdict(points2d: np.ndarray, keypoints: np.ndarray, seen: np.ndarray, size: float, joints2d: np.ndarray,
             limits: PlausibilityLimits) -> str | None:
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


def stature_pixels(heights: np.ndarray, joints: np.ndarray, focal: float) -> np.ndarray:
    """(B,) standing heights (metres) in pixels at each body's pelvis depth (``joints`` (B, 24, 3), camera
    frame): how tall the body would stand in the image where the fit put it."""
    depth = np.maximum(joints[:, PELVIS, 2], 1e-3)
    return np.asarray(heights, np.float64) * focal / depth


# MediaPipe landmark bones (nose to shoulders, arms, torso, legs): a pixel belongs to the nearest skeleton
LANDMARK_BONES = np.array([(0, 11), (0, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24),
                           (23, 24), (23, 25), (25, 27), (24, 26), (26, 28)])


def own_visible_extent(masks: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray, group: np.ndarray,
                       stride: int = 4) -> np.ndarray:
    """(P,) :func:`visible_extent` of :func:`own_silhouettes`, measured on every ``stride``-th pixel (the size
    check needs the extent to a few pixels; the split costs a distance per shared pixel)."""
    small = np.asarray(masks)[:, ::stride, ::stride]
    return visible_extent(own_silhouettes(small, np.asarray(keypoints) / stride, visibility, group)) * stride


def own_silhouettes(masks: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray, group: np.ndarray,
                    seen: float = 0.5) -> np.ndarray:
    """(P, H, W) each person's silhouette without the pixels it shares with another person's (another
    ``group``) that lie nearer that person's seen skeleton (``keypoints`` (P, 33, 2) and ``visibility``).

    The landmark model's mask is of everyone in its crop: a body touching a neighbour (a tackle, an arm on a
    shoulder) was measured as tall as both and dropped as "smaller than its person"."""
    out = np.array(masks, dtype=bool, copy=True)
    boxes = [_box(m) for m in out]
    for i in range(len(out)):
        for k in range(len(out)):
            if group[k] == group[i] or boxes[i] is None or boxes[k] is None:
                continue
            top, left = max(boxes[i][0], boxes[k][0]), max(boxes[i][1], boxes[k][1])
            bottom, right = min(boxes[i][2], boxes[k][2]), min(boxes[i][3], boxes[k][3])
            if top >= bottom or left >= right:
                continue
            rows, cols = np.nonzero(masks[i][top:bottom, left:right] & masks[k][top:bottom, left:right])
            pixels = np.stack([cols + left, rows + top], -1).astype(np.float64)
            theirs = _skeleton_distance(pixels, keypoints[k], visibility[k] >= seen) < \
                _skeleton_distance(pixels, keypoints[i], visibility[i] >= seen)
            out[i, rows[theirs] + top, cols[theirs] + left] = False
    return out


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right), exclusive ends, of a mask's pixels; None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return None if not len(rows) else (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def _skeleton_distance(pixels: np.ndarray, keypoints: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(K,) distance of each pixel (K, 2) to the nearest bone of ``LANDMARK_BONES`` with both ends seen (inf:
    none seen)."""
    bones = LANDMARK_BONES[seen[LANDMARK_BONES].all(1)]
    if not len(bones) or not len(pixels):
        return np.full(len(pixels), np.inf)
    a, b = keypoints[bones[:, 0]], keypoints[bones[:, 1]]  # (S, 2)
    ab = b - a
    t = ((pixels[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9)
    nearest = a + np.clip(t, 0.0, 1.0)[..., None] * ab  # (K, S, 2)
    return np.linalg.norm(pixels[:, None] - nearest, axis=-1).min(1)


def visible_extent(masks: np.ndarray, trim: float = 2.0) -> np.ndarray:
    """(P, H, W) bool silhouettes -> (P,) their larger side in pixels, the ``trim`` % of the pixels cut on each
    end of both axes (stray pixels of a neighbour); NaN for an empty mask. From the rows' and columns' pixel
    counts: a few milliseconds a mask."""
    out = np.full(len(masks), np.nan)
    for i, mask in enumerate(masks):
        sides = [_trimmed_span(mask.sum(axis=axis, dtype=np.int64), trim) for axis in (0, 1)]
        if all(np.isfinite(sides)):
            out[i] = max(sides)
    return out


def _trimmed_span(counts: np.ndarray, trim: float) -> float:
    """Span between the ``trim`` and ``100 - trim`` percentiles of the coordinates whose pixel ``counts`` are
    given (index: coordinate)."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0:
        return float("nan")
    lo, hi = np.searchsorted(cumulative, [total * trim / 100.0, total * (1.0 - trim / 100.0)], side="left")
    return float(hi - lo)
