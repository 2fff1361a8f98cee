"""MediaPipe's single-shot detectors (BlazePose's person detector, BlazeFace full range): anchors, decoding and
weighted non-maximum suppression, as MediaPipe's ``SsdAnchorsCalculator``, ``TensorsToDetectionsCalculator``
and ``NonMaxSuppressionCalculator`` (WEIGHTED) do it, batched over image tiles.

A detection is a box and a few keypoints in the coordinates of the detector's square input (0..1); the caller
maps them back through its letterbox or tile transform (``backend.detection.rois``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DetectorSpec:
    """Anchor layout and decoding options of one SSD model (values from MediaPipe's graphs)."""

    input_size: int
    strides: tuple[int, ...]
    num_keypoints: int
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    interpolated_anchor: bool = True  # one more anchor per cell (MediaPipe's interpolated_scale_aspect_ratio 1.0)


POSE_DETECTOR = DetectorSpec(input_size=224, strides=(8, 16, 32, 32, 32), num_keypoints=4)
FACE_DETECTOR_FULL_RANGE = DetectorSpec(input_size=192, strides=(4,), num_keypoints=6, interpolated_anchor=False)


def anchor_centres(spec: DetectorSpec) -> np.ndarray:
    """(A, 2) anchor centres (x, y) in 0..1. All anchors have unit size (``fixed_anchor_size``), so only the
    centres matter. Consecutive layers of the same stride share one grid, each adding its anchors per cell."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        per_cell = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            per_cell += 1 + int(spec.interpolated_anchor)  # aspect ratio 1.0, plus the interpolated scale
            layer += 1
        cells = int(np.ceil(spec.input_size / stride))
        y, x = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([x.ravel(), y.ravel()], axis=-1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass
class Detections:
    """N detections in the detector input's normalised coordinates (0..1)."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1
    keypoints: np.ndarray  # (N, K, 2) x, y
    scores: np.ndarray  # (N,)
    image: np.ndarray  # (N,) which input of the batch each comes from

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def decode(raw_boxes: torch.Tensor, raw_scores: torch.Tensor, anchors: np.ndarray, spec: DetectorSpec,
           min_score: float) -> Detections:
    """Boxes and keypoints of every anchor scoring at least ``min_score``, over a batch (B, A, C) and (B, A, 1)."""
    scores = torch.sigmoid(raw_scores[..., 0].clamp(-100.0, 100.0)).cpu().numpy()
    image, index = np.nonzero(scores >= min_score)
    raw = raw_boxes[torch.as_tensor(image), torch.as_tensor(index)].cpu().numpy().astype(np.float64)
    raw = raw / spec.input_size
    centre = anchors[index].astype(np.float64)
    xy = raw[:, 0:2] + centre
    wh = raw[:, 2:4]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=-1)
    keypoints = raw[:, 4 : 4 + 2 * spec.num_keypoints].reshape(-1, spec.num_keypoints, 2) + centre[:, None]
    return Detections(boxes, keypoints, scores[image, index].astype(np.float64), image.astype(np.int64))


def weighted_nms(det: Detections, iou_threshold: float, group: np.ndarray | None = None) -> Detections:
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted mean of the
    detections it suppresses (steadier than plain NMS). Detections of different ``group`` (e.g. tiles, given in
    the same coordinates) only suppress each other when ``group`` is None."""
    if len(det) == 0:
        return det
    group = det.image if group is None else group
    order = np.argsort(-det.scores, kind="stable")
    boxes, kps, scores, images = [], [], [], []
    remaining = order
    while len(remaining):
        best = remaining[0]
        same = group[remaining] == group[best]
        overlap = _iou(det.boxes[best], det.boxes[remaining]) > iou_threshold
        members = remaining[same & overlap]
        weights = det.scores[members][:, None]
        boxes.append((det.boxes[members] * weights).sum(0) / weights.sum())
        kps.append((det.keypoints[members] * weights[:, :, None]).sum(0) / weights.sum())
        scores.append(det.scores[best])
        images.append(det.image[best])
        remaining = remaining[~(same & overlap)]
    return Detections(np.array(boxes), np.array(kps), np.array(scores), np.array(images, np.int64))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda b: np.clip(b[..., 2:] - b[..., :2], 0, None).prod(-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)
