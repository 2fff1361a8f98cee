"""Regions of interest: rotated squares in the image that a model sees as its square input.

A region is (centre x, centre y, side, rotation) in pixels and radians, as MediaPipe's ``NormalizedRect``: the
rotation turns the image so that the person is upright in the crop (a region of rotation 0 has the body's head
up). ``crops`` samples regions (bilinear, black outside the image: a person cut by the frame edge is seen
whole-sized, with the missing part dark, as MediaPipe does); ``to_image`` maps crop coordinates back.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

Region = np.ndarray  # (4,) cx, cy, side, rotation; arrays of regions are (N, 4)


def region_axes(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) image directions of the crop's x axis (right) and y axis (down)."""
    theta = regions[:, 3]
    right = np.stack([np.cos(theta), np.sin(theta)], -1)
    down = np.stack([-np.sin(theta), np.cos(theta)], -1)
    return right, down


def to_image(regions: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, K, 2) in crop coordinates normalised to 0..1 -> image pixels."""
    right, down = region_axes(regions)
    u = points[..., 0:1] - 0.5
    v = points[..., 1:2] - 0.5
    side = regions[:, None, 2:3]
    return regions[:, None, :2] + side * (u * right[:, None] + v * down[:, None])


def to_crop(regions: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Image pixels (N, K, 2) -> crop coordinates normalised to 0..1 (inverse of :func:`to_image`)."""
    right, down = region_axes(regions)
    d = points - regions[:, None, :2]
    side = regions[:, None, 2]
    u = (d * right[:, None]).sum(-1) / side + 0.5
    v = (d * down[:, None]).sum(-1) / side + 0.5
    return np.stack([u, v], -1)


def crops(image: np.ndarray, regions: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 crops of ``image`` (H, W, 3) at ``regions``."""
    out = np.zeros((len(regions), size, size, image.shape[2]), np.uint8)
    for i, region in enumerate(regions):
        out[i] = cv2.warpAffine(image, _crop_to_image(region, size), (size, size),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    return out


def _crop_to_image(region: np.ndarray, size: int) -> np.ndarray:
    """2x3 affine matrix from crop pixel indices to image pixel indices (pixel centres at integer indices)."""
    cx, cy, side, theta = (float(v) for v in region)
    scale = side / size
    c, s = math.cos(theta), math.sin(theta)
    a = np.array([[c * scale, -s * scale], [s * scale, c * scale]])
    # crop index i has normalised coordinate (i + 0.5) / size; image index = pixel coordinate - 0.5
    offset = np.array([cx, cy]) - a @ np.array([size / 2 - 0.5, size / 2 - 0.5]) - 0.5
    return np.concatenate([a, offset[:, None]], axis=1)


def letterbox_regions(width: int, height: int, tiles: np.ndarray) -> np.ndarray:
    """Axis-aligned square regions (rotation 0) for tiles (x0, y0, side): the whole image is a tile of side 0,
    letterboxed (the square around the image's longer side)."""
    regions = np.zeros((len(tiles), 4))
    for i, (x0, y0, side) in enumerate(tiles):
        if side == 0:
            regions[i] = (width / 2, height / 2, max(width, height), 0.0)
        else:
            regions[i] = (x0 + side / 2, y0 + side / 2, side, 0.0)
    return regions


def from_alignment(centre: np.ndarray, scale_point: np.ndarray, enlarge: float) -> np.ndarray:
    """Regions from MediaPipe's two alignment points (hip centre; a point whose distance gives the body's size and
    whose direction from the centre is 'up'), as ``AlignmentPointsRectsCalculator`` + ``RectTransformation``:
    side = 2 x distance x ``enlarge``, rotation so that 'up' is up in the crop."""
    d = scale_point - centre
    side = 2.0 * np.linalg.norm(d, axis=-1) * enlarge
    rotation = normalise_angle(0.5 * math.pi - np.arctan2(-d[:, 1], d[:, 0]))
    return np.concatenate([centre, side[:, None], rotation[:, None]], axis=-1)


def normalise_angle(angle: np.ndarray) -> np.ndarray:
    return angle - 2 * math.pi * np.floor((angle + math.pi) / (2 * math.pi))


def square_tiles(width: int, height: int, scales, overlap: float = 0.35) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side): for each scale, side = scale x the shorter image side, overlapping by
    ``overlap``; scale 0 stands for the whole image (side 0, letterboxed)."""
    tiles: list[tuple[int, int, int]] = []
    for scale in scales:
        if scale <= 0:
            tiles.append((0, 0, 0))
            continue
        side = max(32, int(round(scale * min(width, height))))
        step = side * (1.0 - overlap)
        nx = max(1, math.ceil((width - side) / step) + 1) if width > side else 1
        ny = max(1, math.ceil((height - side) / step) + 1) if height > side else 1
        for iy in range(ny):
            for ix in range(nx):
                x0 = round(ix * (width - side) / (nx - 1)) if nx > 1 else max(0, (width - side) // 2)
                y0 = round(iy * (height - side) / (ny - 1)) if ny > 1 else max(0, (height - side) // 2)
                tiles.append((int(x0), int(y0), min(side, width, height)))
    return list(dict.fromkeys(tiles))
