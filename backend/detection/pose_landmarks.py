"""BlazePose's landmark model on regions we choose: 33 landmarks, world landmarks, a mask and a presence score
per region, for a whole batch of regions at once.

MediaPipe decodes the model as ``PoseLandmarkByRoiCpu`` does: landmarks in crop pixels refined by their
heatmap (``RefineLandmarksFromHeatmapCalculator``, 7 x 7 window), visibility and presence through a sigmoid, world
landmarks rotated with the region, the mask through a sigmoid. The mask is about half the model's work (its own
layers upsample to 256 x 256) and only the crops finally kept need it: the crops tried are read without it and the
mask of those kept is computed later from the model's inner tensors (:meth:`PoseLandmarker.with_masks`), the same
mask as in one whole call. Landmarks 33 and 34 are the alignment points
(hip centre and a point giving body size and 'up') from which the next region is computed, as in MediaPipe's
tracking (:func:`regions_from_landmarks`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from backend.detection import rois
from backend.detection.runtime import Deferred, Network
from backend.detection.tflite import TfliteModel

INPUT_SIZE = 256
HEATMAP_KERNEL = 7
REFINE_MIN_CONFIDENCE = 0.5
ROI_ENLARGE = 1.25  # MediaPipe's RectTransformation scale for the pose region
NUM_LANDMARKS = 33
MASK_OUTPUT = "Identity_2"


@dataclass
class LandmarkResult:
    """N regions' outputs; pixel coordinates are in the full image."""

    regions: np.ndarray  # (N, 4) the regions the model saw
    keypoints: np.ndarray  # (N, 33, 2) pixels
    visibility: np.ndarray  # (N, 33) 0..1
    presence: np.ndarray  # (N, 33) 0..1
    world: np.ndarray  # (N, 33, 3) metres, hip-centred, image axes (x right, y down, z away)
    alignment: np.ndarray  # (N, 2, 2) pixels: hip centre and the size/rotation point
    score: np.ndarray  # (N,) the model's own 'a person is in this region' probability
    evidence: np.ndarray  # (N, 33) peak of each landmark's heatmap (sigmoid): how clearly the model sees it
    masks: np.ndarray | None  # (N, 256, 256) float32 person probability in crop coordinates; None: not read yet
    pending: Deferred | None = None  # what gives the masks (:meth:`PoseLandmarker.with_masks`) when not read yet

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def select(self, index) -> "LandmarkResult":
        idx = np.asarray(index, dtype=np.int64)
        return LandmarkResult(*(_rows(getattr(self, f), idx) for f in self.__dataclass_fields__))

    @classmethod
    def concatenate(cls, parts: list["LandmarkResult"]) -> "LandmarkResult":
        return cls(*(_joined([getattr(p, f) for p in parts], f) for f in cls.__dataclass_fields__))

    def mask_contains(self, i: int, points: np.ndarray) -> np.ndarray:
        """Which image points (K, 2) lie on person i's mask."""
        size = self.masks.shape[1]
        uv = rois.to_crop(self.regions[i : i + 1], points[None])[0] * size
        col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        hit = np.zeros(len(points), bool)
        hit[inside] = self.masks[i, row[inside], col[inside]] > 0.5
        return hit

    def mask_in_image(self, i: int, height: int, width: int) -> np.ndarray:
        """Person i's mask (H, W) bool in the full image."""
        size = self.masks.shape[1]
        matrix = rois._crop_to_image(self.regions[i], size)
        prob = cv2.warpAffine(self.masks[i], matrix, (width, height), flags=cv2.INTER_LINEAR)
        return prob > 0.5


class PoseLandmarker:
    """The landmark model (``pose_landmark_full.tflite`` or another BlazePose landmark file) over regions."""

    def __init__(self, model_path, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        module = TfliteModel(model_path)
        self.model = Network(module, module.output_names, model_path, device, module.input_shape,
                             deferred=[MASK_OUTPUT])
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, regions: np.ndarray, masks: bool = True) -> LandmarkResult:
        """Landmarks of the person in each region (N, 4) of the RGB uint8 image. ``masks=False``: the masks are
        read later, by :meth:`with_masks`, for the results kept (the mask is about half the model's work)."""
        regions = np.asarray(regions, np.float64).reshape(-1, 4)
        parts = [self._batch(image, regions[i : i + self.batch_size], masks)
                 for i in range(0, len(regions), self.batch_size)]
        return LandmarkResult.concatenate(parts) if parts else _empty()

    @torch.inference_mode()
    def with_masks(self, result: LandmarkResult) -> LandmarkResult:
        """``result`` with its masks read (those of a call with ``masks=False``)."""
        if result.masks is not None:
            return result
        batches = [np.arange(i, min(i + self.batch_size, len(result))) for i in range(0, len(result), self.batch_size)]
        masks = [_mask(self.model.finish(result.pending.select(rows))[MASK_OUTPUT]) for rows in batches]
        empty = np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.float32)
        return dataclasses.replace(result, pending=None, masks=np.concatenate(masks) if masks else empty)

    def _batch(self, image: np.ndarray, regions: np.ndarray, masks: bool) -> LandmarkResult:
        pixels = torch.from_numpy(rois.crops(image, regions, INPUT_SIZE)).to(self.device).float() / 255.0
        out, pending = (self.model(pixels), None) if masks else self.model.partial(pixels)
        raw = out["Identity"].reshape(len(regions), -1, 5).float()
        heatmap = out["Identity_3"].float()  # (N, 64, 64, 39)
        xy = _refine(raw[..., :2] / INPUT_SIZE, heatmap)
        points = rois.to_image(regions, xy.cpu().numpy().astype(np.float64))
        world = out["Identity_4"].reshape(len(regions), -1, 3).cpu().numpy().astype(np.float64)
        return LandmarkResult(
            regions=regions,
            keypoints=points[:, :NUM_LANDMARKS],
            visibility=torch.sigmoid(raw[:, :NUM_LANDMARKS, 3]).cpu().numpy().astype(np.float64),
            presence=torch.sigmoid(raw[:, :NUM_LANDMARKS, 4]).cpu().numpy().astype(np.float64),
            world=_rotate_world(world[:, :NUM_LANDMARKS], regions[:, 3]),
            alignment=points[:, NUM_LANDMARKS : NUM_LANDMARKS + 2],
            score=out["Identity_1"].reshape(-1).float().cpu().numpy().astype(np.float64),
            evidence=torch.sigmoid(heatmap[..., :NUM_LANDMARKS].amax(dim=(1, 2))).cpu().numpy().astype(np.float64),
            masks=_mask(out[MASK_OUTPUT]) if masks else None,
            pending=pending,
        )


def _rows(value: np.ndarray | Deferred | None, index: np.ndarray) -> np.ndarray | Deferred | None:
    if value is None:
        return None
    return value.select(index) if isinstance(value, Deferred) else value[index]


def _joined(values: list, field: str) -> np.ndarray | Deferred | None:
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"LandmarkResult.{field}: read for some parts only (with_masks first)")
    return Deferred.concatenate(values) if isinstance(values[0], Deferred) else np.concatenate(values)


def _mask(output: torch.Tensor) -> np.ndarray:
    """The mask output (N, 256, 256, 1) as person probabilities (N, 256, 256)."""
    return torch.sigmoid(output[..., 0].float()).cpu().numpy()


def regions_from_landmarks(result: LandmarkResult) -> np.ndarray:
    """The region each person would be looked at next (MediaPipe's tracking ROI from the alignment points)."""
    return rois.from_alignment(result.alignment[:, 0], result.alignment[:, 1], ROI_ENLARGE)


def _refine(xy: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
    """Landmarks (N, L, 2) in 0..1 moved to the sigmoid-weighted mean of their heatmap's 7 x 7 window, where the
    window holds a confident peak (MediaPipe's RefineLandmarksFromHeatmapCalculator)."""
    n, h, w, channels = heatmap.shape
    count = min(channels, xy.shape[1])
    col = (xy[:, :count, 0] * w).long()  # truncation toward zero, as MediaPipe's int conversion
    row = (xy[:, :count, 1] * h).long()
    half = (HEATMAP_KERNEL - 1) // 2
    offsets = torch.arange(-half, half + 1, device=xy.device)
    rows = row[..., None, None] + offsets[:, None]  # (N, L, K, 1)
    cols = col[..., None, None] + offsets[None, :]  # (N, L, 1, K)
    rows, cols = torch.broadcast_tensors(rows, cols)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    batch = torch.arange(n, device=xy.device)[:, None, None, None].expand_as(rows)
    channel = torch.arange(count, device=xy.device)[None, :, None, None].expand_as(rows)
    values = heatmap[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1), channel]
    confidence = torch.sigmoid(values) * inside
    total = confidence.sum(dim=(-1, -2))
    refined_x = (confidence * cols).sum(dim=(-1, -2)) / total.clamp(min=1e-9) / w
    refined_y = (confidence * rows).sum(dim=(-1, -2)) / total.clamp(min=1e-9) / h
    centre_inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    refine = centre_inside & (confidence.amax(dim=(-1, -2)) >= REFINE_MIN_CONFIDENCE) & (total > 0)
    out = xy.clone()
    out[:, :count, 0] = torch.where(refine, refined_x, xy[:, :count, 0])
    out[:, :count, 1] = torch.where(refine, refined_y, xy[:, :count, 1])
    return out


def _rotate_world(world: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """World landmarks from the crop's axes to the image's (MediaPipe's WorldLandmarkProjectionCalculator)."""
    c, s = np.cos(rotation)[:, None], np.sin(rotation)[:, None]
    out = world.copy()
    out[..., 0] = c * world[..., 0] - s * world[..., 1]
    out[..., 1] = s * world[..., 0] + c * world[..., 1]
    return out


def _empty() -> LandmarkResult:
    z = np.zeros
    return LandmarkResult(z((0, 4)), z((0, 33, 2)), z((0, 33)), z((0, 33)), z((0, 33, 3)), z((0, 2, 2)), z((0,)),
                          z((0, 33)), z((0, INPUT_SIZE, INPUT_SIZE), np.float32))
