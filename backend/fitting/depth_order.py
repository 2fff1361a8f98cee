"""Ordinal depth evidence from 2D occlusions: which of two overlapping people is in front.

MediaPipe's person masks are not exclusive: each is "person pixels in that person's crop", so the mask of the
person behind often includes the occluder's pixels as well, and an overlap of masks alone does not say who is
in front. The landmark visibilities do: in the overlap, the occluded person's landmarks are predicted hidden
(low visibility) while the occluder's are seen. A pair is reported only when that evidence is one-sided;
ambiguous overlaps (both seen, e.g. a mask bleeding onto a neighbour) give nothing, and the metric depths from
body size stand.
"""

from __future__ import annotations

import numpy as np

MIN_OVERLAP_PX = 200
HIDDEN, SEEN = 0.5, 0.7  # mean visibility below which landmarks count as hidden, above which as seen


def occlusion_pairs(masks: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """(M, 2) int rows (front, back) of person indices, from (P, H, W) masks, (P, 33, 2) landmarks and visibility."""
    pairs = []
    boxes = [_mask_box(m) for m in masks]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if boxes[i] is None or boxes[j] is None or not _boxes_touch(boxes[i], boxes[j]):
                continue
            front = _front_of_pair(masks[i], masks[j], keypoints[[i, j]], visibility[[i, j]])
            if front is not None:
                pairs.append((i, j) if front == 0 else (j, i))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def violated(pairs: np.ndarray, depths: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(M,) bool: the pair's front person is not nearer than its back person by ``margin``."""
    if len(pairs) == 0:
        return np.zeros((0,), bool)
    return depths[pairs[:, 0]] > depths[pairs[:, 1]] - margin


def _front_of_pair(mask_a: np.ndarray, mask_b: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray
                   ) -> int | None:
    """0 if a occludes b, 1 if b occludes a, None when the evidence is absent or two-sided."""
    overlap = mask_a & mask_b
    if overlap.sum() < max(MIN_OVERLAP_PX, 0.02 * min(mask_a.sum(), mask_b.sum())):
        return None
    radius = max(3, int(0.01 * max(overlap.shape)))
    h, w = overlap.shape
    x0, y0, x1, y1 = _mask_box(overlap)
    x0, y0, x1, y1 = max(x0 - radius, 0), max(y0 - radius, 0), min(x1 + radius, w - 1), min(y1 + radius, h - 1)
    region = _dilate(overlap[y0 : y1 + 1, x0 : x1 + 1], radius)
    offset = np.array([x0, y0])
    inside = [_visibility_inside(region, keypoints[k] - offset, visibility[k]) for k in (0, 1)]
    for front, back in ((0, 1), (1, 0)):
        seen, hidden = inside[front], inside[back]
        if len(hidden) >= 2 and hidden.mean() < HIDDEN and len(seen) >= 1 and seen.mean() >= SEEN:
            return front
    return None


def _visibility_inside(region: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    h, w = region.shape
    col, row = np.round(keypoints[:, 0]).astype(int), np.round(keypoints[:, 1]).astype(int)
    ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    hit = np.zeros(len(keypoints), bool)
    hit[ok] = region[row[ok], col[ok]]
    return visibility[hit]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2 radius + 1) square: separable running max, numpy only."""
    out = np.pad(mask, radius)
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            grown |= np.roll(out, shift, axis=axis) | np.roll(out, -shift, axis=axis)
        out = grown
    return out[radius:-radius, radius:-radius]


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _boxes_touch(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
