"""A small appearance descriptor per person: what tracking keeps of the frame instead of pixels or masks.

Colour histograms (hue-saturation in HSV) of the upper and the lower half of the person's box, restricted to
the person's mask when the estimator gives one. Two halves separate shirt from shorts, which tells apart team
mates less well than faces would but players of different teams and most street clothes well. 64 floats.
"""

from __future__ import annotations

import cv2
import numpy as np

_BINS = (8, 4)  # hue x saturation per half
_MAX_SIDE = 96  # the crop is downscaled to this many pixels on its longer side first
DESCRIPTOR_SIZE = 2 * _BINS[0] * _BINS[1]


def appearance_descriptor(image: np.ndarray, bbox: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | None:
    """Normalised (64,) float32 histograms of the box's upper and lower half; None without a usable box."""
    region = _crop(image, bbox, mask)
    if region is None:
        return None
    crop, crop_mask = region
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    middle = hsv.shape[0] // 2
    halves = [(hsv[:middle], crop_mask[:middle]), (hsv[middle:], crop_mask[middle:])]
    parts = [_histogram(part, part_mask) for part, part_mask in halves]
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
    if mask is not None and mask.shape[:2] == (height, width):
        crop_mask = cv2.resize(np.asarray(mask[y0:y1, x0:x1], np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        if crop_mask.sum() >= 16:
            return crop, crop_mask.astype(np.uint8)
    return crop, np.ones(crop.shape[:2], np.uint8)


def _histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([hsv], [0, 1], mask, list(_BINS), [0, 180, 0, 256]).ravel()
    total = hist.sum()
    return hist / total if total > 0 else np.full_like(hist, 1.0 / hist.size)


__all__ = ["DESCRIPTOR_SIZE", "appearance_descriptor", "appearance_distance"]
