"""A small appearance descriptor per person: what tracking keeps of the frame instead of pixels or masks.

Colour histograms (hue-saturation in HSV) of the upper and the lower half of the person's box, restricted to
the person's mask when the estimator gives one, and without the parts of the box that other people's boxes cover
(``exclude``): where two people overlap, the shared pixels belong to whoever is in front, and monocular depth is
too noisy to say who that is. The strip of a box nobody else covers still shows whose box it is, which is
exactly when motion alone is ambiguous: two people passing each other at the same depth. Two halves separate
shirt from shorts, which tells apart team mates less well than faces would but players of different teams and
most street clothes well. 64 floats.
"""

from __future__ import annotations

import cv2
import numpy as np

_BINS = (8, 4)  # hue x saturation per half
_MAX_SIDE = 96  # the crop is downscaled to this many pixels on its longer side first
_MIN_VISIBLE = 0.1  # at least this fraction of the box must be visible (uncovered, inside the mask)
_MIN_PIXELS = 64  # and at least this many pixels of the downscaled crop
DESCRIPTOR_SIZE = 2 * _BINS[0] * _BINS[1]


def appearance_descriptor(
    image: np.ndarray, bbox: np.ndarray | None, mask: np.ndarray | None, exclude: list | tuple = ()
) -> np.ndarray | None:
    """Normalised (64,) float32 histograms of the box's upper and lower half, leaving out the boxes in
    ``exclude`` (other people); None without a usable box or with too little of either half visible."""
    region = _crop(image, bbox, mask)
    if region is None:
        return None
    crop, crop_mask, window = region
    crop_mask = _uncovered(crop_mask, window, exclude)
    middle = crop.shape[0] // 2
    halves = [(crop[:middle], crop_mask[:middle]), (crop[middle:], crop_mask[middle:])]
    if any(part_mask.sum() < max(_MIN_PIXELS / 2, _MIN_VISIBLE * part_mask.size) for _, part_mask in halves):
        return None
    parts = [_histogram(cv2.cvtColor(part, cv2.COLOR_RGB2HSV), part_mask) for part, part_mask in halves]
    return np.concatenate(parts).astype(np.float32)


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance averaged over the two halves: 0 same colours, 1 disjoint; 0.5 when unknown."""
    if a is None or b is None:
        return 0.5
    half = DESCRIPTOR_SIZE // 2
    total = 0.0
    for sl in (slice(0, half), slice(half, None)):
        coefficient = float(np.sum(np.sqrt(a[sl] * b[sl])))
        total += np.sqrt(max(0.0, 1.0 - min(coefficient, 1.0)))
    return total / 2


def _crop(image: np.ndarray, bbox: np.ndarray | None, mask: np.ndarray | None):
    if bbox is None:
        return None
    height, width = image.shape[:2]
    x0, y0 = int(max(0, np.floor(bbox[0]))), int(max(0, np.floor(bbox[1])))
    x1, y1 = int(min(width, np.ceil(bbox[2]))), int(min(height, np.ceil(bbox[3])))
    if x1 - x0 < 2 or y1 - y0 < 4:
        return None
    scale = min(1.0, _MAX_SIDE / max(x1 - x0, y1 - y0))
    size = (max(1, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale)))
    crop = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    window = (x0, y0, x1, y1)
    if mask is not None and mask.shape[:2] == (height, width):
        crop_mask = cv2.resize(np.asarray(mask[y0:y1, x0:x1], np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        if crop_mask.sum() >= 16:
            return crop, crop_mask.astype(np.uint8), window
    return crop, np.ones(crop.shape[:2], np.uint8), window


def _uncovered(crop_mask: np.ndarray, window: tuple[int, int, int, int], exclude) -> np.ndarray:
    """``crop_mask`` without what the boxes in ``exclude`` cover; ``window`` is the crop's image rectangle."""
    x0, y0, x1, y1 = window
    rows, cols = crop_mask.shape
    visible = crop_mask.copy()
    for other in exclude:
        if other is not None:
            c0, c1 = (int(np.clip(round((v - x0) * cols / (x1 - x0)), 0, cols)) for v in (other[0], other[2]))
            r0, r1 = (int(np.clip(round((v - y0) * rows / (y1 - y0)), 0, rows)) for v in (other[1], other[3]))
            visible[r0:r1, c0:c1] = 0
    return visible


def _histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([hsv], [0, 1], mask, list(_BINS), [0, 180, 0, 256]).ravel()
    total = hist.sum()
    return hist / total if total > 0 else np.full_like(hist, 1.0 / hist.size)


__all__ = ["DESCRIPTOR_SIZE", "appearance_descriptor", "appearance_distance"]
