"""MediaPipe's person and face detectors over square tiles of an image, batched, in image pixels.

Both are single-shot detectors with a small input (224 and 192 pixels), so a person or face smaller than about a
twentieth of a tile is not found: a pyramid of tiles (the whole image letterboxed, then smaller overlapping
squares) finds small people at a cost proportional to the number of tiles. Detections of all tiles are merged by
weighted non-maximum suppression in image coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.detection import blaze, rois
from backend.detection.runtime import Network
from backend.detection.tflite import TfliteModel


@dataclass
class ImageDetections:
    """Detections in image pixels."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1
    keypoints: np.ndarray  # (N, K, 2)
    scores: np.ndarray  # (N,)
    tile_side: np.ndarray  # (N,) side of the tile the detection came from (pixels)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, index) -> "ImageDetections":
        idx = np.asarray(index, dtype=np.int64)
        return ImageDetections(self.boxes[idx], self.keypoints[idx], self.scores[idx], self.tile_side[idx])


class TiledDetector:
    """An SSD model (``blaze.DetectorSpec``) run over axis-aligned square regions of an image."""

    def __init__(self, model_path, spec: blaze.DetectorSpec, device: str | torch.device = "cpu",
                 min_score: float = 0.5, nms_iou: float = 0.3, batch_size: int = 16) -> None:
        module = TfliteModel(model_path)
        self.model = Network(module, module.output_names, model_path, device, module.input_shape)
        self.spec = spec
        self.anchors = blaze.anchor_centres(spec)
        self.device = torch.device(device)
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.batch_size = batch_size
        self._box_output, self._score_output = module.output_names[:2]

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, tiles: list[tuple[int, int, int]]) -> ImageDetections:
        """Detections over ``tiles`` (x0, y0, side; side 0 = the whole image, letterboxed), merged."""
        height, width = image.shape[:2]
        regions = rois.letterbox_regions(width, height, np.asarray(tiles, np.float64).reshape(-1, 3))
        found: list[ImageDetections] = []
        for start in range(0, len(regions), self.batch_size):
            found.append(self._batch(image, regions[start : start + self.batch_size]))
        merged = _concat(found, self.spec.num_keypoints)
        return self._nms(merged)

    def _batch(self, image: np.ndarray, regions: np.ndarray) -> ImageDetections:
        size = self.spec.input_size
        pixels = torch.from_numpy(rois.crops(image, regions, size)).to(self.device)
        out = self.model(pixels.float() / 127.5 - 1.0)
        det = blaze.decode(out[self._box_output], out[self._score_output], self.anchors, self.spec, self.min_score)
        if len(det) == 0:
            return _concat([], self.spec.num_keypoints)
        own = regions[det.image]
        corners = rois.to_image(own, det.boxes.reshape(-1, 2, 2))
        keypoints = rois.to_image(own, det.keypoints)
        return ImageDetections(corners.reshape(-1, 4), keypoints, det.scores, own[:, 2].copy())

    def _nms(self, det: ImageDetections) -> ImageDetections:
        if len(det) == 0:
            return det
        as_blaze = blaze.Detections(det.boxes, det.keypoints, det.scores, np.zeros(len(det), np.int64))
        order = np.argsort(-det.scores, kind="stable")
        merged = blaze.weighted_nms(as_blaze, self.nms_iou)
        # the tile of each merged detection: that of its best member (the first in score order it overlaps)
        tile = np.array([det.tile_side[order[np.argmax(blaze._iou(b, det.boxes[order]) > self.nms_iou)]]
                         for b in merged.boxes])
        return ImageDetections(merged.boxes, merged.keypoints, merged.scores, tile)


def _concat(parts: list[ImageDetections], num_keypoints: int) -> ImageDetections:
    parts = [p for p in parts if len(p)]
    if not parts:
        return ImageDetections(np.zeros((0, 4)), np.zeros((0, num_keypoints, 2)), np.zeros(0), np.zeros(0))
    fields = ImageDetections.__dataclass_fields__
    return ImageDetections(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
