"""People in an image from the pose models bundled in the mediapipe wheel: 33 landmarks, world landmarks, masks.

MediaPipe <= 0.10.21 ships ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` inside the wheel, but the
multi-person ``PoseLandmarker`` task wants them as a ``.task`` bundle with TFLite normalisation metadata. We write
that bundle once into ``cache_subdir("mediapipe")`` with MediaPipe's own metadata writers: nothing is downloaded.

BlazePose's detector sees the whole image letterboxed to 224 x 224, so people smaller than about a fifth of the
image are missed. We therefore also run it on overlapping square tiles (a small pyramid) and merge:

* a person an interior tile edge cuts is dropped from that tile (its landmark crop was truncated); tiles
  overlap enough that a smaller tile or a larger one sees every person whole;
* the whole image is searched with a permissive threshold (people seen from behind or cut by the frame score
  low there), tiles with the normal one (they see fragments of large people);
* a person found several times is kept once (``deduplicate``), optionally with its alternative landmark
  hypotheses, which disagree on hard poses: the caller can judge them by how well a body model fits them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from backend.atomic import atomic_path
from backend.native_log import native_stderr_silenced
from backend.estimators.base import EstimatorError
from backend.paths import cache_subdir

# Landmarks of the body proper (shoulders, elbows, wrists, hips, knees, ankles): boxes, scores and de-duplication.
CORE_LANDMARKS = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
TASK_FILE = "pose_landmarker_full_{version}.task"
# Normalisation the bundled graphs apply (pose_detection_cpu / pose_landmark_by_roi_cpu): [-1, 1] and [0, 1].
DETECTOR_NORM = (127.5, 127.5)
LANDMARK_NORM = (0.0, 255.0)


@dataclass
class PoseDetections:
    """The people of one image, as arrays (P people). Pixel coordinates are in the full image."""

    keypoints: np.ndarray  # (P, 33, 2) pixels
    visibility: np.ndarray  # (P, 33) 0..1: landmark is in view and not occluded
    presence: np.ndarray  # (P, 33) 0..1: landmark is inside the image
    world: np.ndarray  # (P, 33, 3) metres, hip-centred, axes of the crop's camera (x right, y down, z away)
    scores: np.ndarray  # (P,) 0..1
    boxes: np.ndarray  # (P, 4) x0, y0, x1, y1 around the visible landmarks, pixels
    masks: np.ndarray | None  # (P, H, W) bool
    group: np.ndarray | None = None  # (P,) person id when alternative hypotheses of one person are kept

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, height: int, width: int) -> "PoseDetections":
        z = np.zeros
        masks = z((0, height, width), bool)
        return cls(z((0, 33, 2)), z((0, 33)), z((0, 33)), z((0, 33, 3)), z((0,)), z((0, 4)), masks, z((0,), np.int64))

    def select(self, index: Sequence[int] | np.ndarray) -> "PoseDetections":
        idx = np.asarray(index, dtype=np.int64)
        masks = None if self.masks is None else self.masks[idx]
        group = None if self.group is None else self.group[idx]
        return PoseDetections(
            self.keypoints[idx], self.visibility[idx], self.presence[idx], self.world[idx],
            self.scores[idx], self.boxes[idx], masks, group,
        )


# ----------------------------------------------------------------------------------------------- task bundle


def _bundled_model_paths() -> tuple[Path, Path]:
    """The two tflite files inside the installed mediapipe wheel, or EstimatorError saying what is missing."""
    try:
        import mediapipe
    except ImportError as exc:
        raise EstimatorError(
            f"mediapipe-fit needs the mediapipe package (0.10.21, which bundles its pose models): {exc}"
        ) from exc
    modules = Path(mediapipe.__file__).parent / "modules"
    detector = modules / "pose_detection" / "pose_detection.tflite"
    landmarks = modules / "pose_landmark" / "pose_landmark_full.tflite"
    missing = [str(p) for p in (detector, landmarks) if not p.is_file()]
    if missing:
        raise EstimatorError(
            f"mediapipe {getattr(mediapipe, '__version__', '?')} does not bundle its pose models "
            f"({', '.join(missing)} missing); install mediapipe==0.10.21"
        )
    return detector, landmarks


def _with_image_metadata(model: bytes, name: str, mean: float, std: float) -> bytes:
    """The TFLite model with the input-normalisation metadata the Tasks API requires."""
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    buffer = bytearray(model)
    writer = metadata_writer.MetadataWriter.create(buffer).add_general_info(name).add_image_input([mean], [std])
    for _ in writer_utils.get_output_tensor_types(buffer):
        writer.add_feature_output()
    return bytes(writer.populate()[0])


def ensure_task_file() -> Path:
    """Path of the multi-person pose landmarker bundle, assembled once from the wheel's models (atomic write)."""
    detector, landmarks = _bundled_model_paths()  # first: it turns a missing mediapipe into an EstimatorError
    import mediapipe
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    target = cache_subdir("mediapipe") / TASK_FILE.format(version=mediapipe.__version__)
    if target.is_file():
        return target
    models = {
        "pose_detector.tflite": _with_image_metadata(detector.read_bytes(), "pose_detector", *DETECTOR_NORM),
        "pose_landmarks_detector.tflite": _with_image_metadata(
            landmarks.read_bytes(), "pose_landmarks_detector", *LANDMARK_NORM
        ),
    }
    with atomic_path(target) as tmp:
        model_asset_bundle_utils.create_model_asset_bundle(models, str(tmp))
    return target


# ----------------------------------------------------------------------------------------------- tiles


def tile_grid(width: int, height: int, scales: Sequence[float], overlap: float = 0.35) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side): for each scale, side = scale * shorter image side, overlapping by ``overlap``.

    Scale 0 stands for the whole image (letterboxed by MediaPipe), returned as side 0.
    """
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


# ----------------------------------------------------------------------------------------------- detector


@dataclass
class _MaskCrop:
    """A person mask kept as its bounding crop while tiles are merged (full-size masks for ~50 raw detections of
    a 1080p image would be ~100 MB)."""

    x0: int
    y0: int
    bits: np.ndarray  # (h, w) bool

    @classmethod
    def from_probabilities(cls, prob: np.ndarray, x0: int, y0: int) -> "_MaskCrop":
        bits = prob > 0.5
        rows, cols = np.flatnonzero(bits.any(axis=1)), np.flatnonzero(bits.any(axis=0))
        if rows.size == 0:
            return cls(x0, y0, np.zeros((0, 0), bool))
        bits = bits[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return cls(x0 + int(cols[0]), y0 + int(rows[0]), bits)

    def paste(self, height: int, width: int) -> np.ndarray:
        full = np.zeros((height, width), dtype=bool)
        h, w = self.bits.shape
        full[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.bits
        return full

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which pixel points (N, 2) fall inside the mask."""
        col = np.round(points[:, 0]).astype(np.int64) - self.x0
        row = np.round(points[:, 1]).astype(np.int64) - self.y0
        h, w = self.bits.shape
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        hit = np.zeros(len(points), dtype=bool)
        hit[inside] = self.bits[row[inside], col[inside]]
        return hit

    def overlap(self, other: "_MaskCrop") -> tuple[float, float]:
        """(intersection over union, intersection over the smaller mask)."""
        x0, y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        x1 = max(self.x0 + self.bits.shape[1], other.x0 + other.bits.shape[1])
        y1 = max(self.y0 + self.bits.shape[0], other.y0 + other.bits.shape[0])
        a, b = np.zeros((y1 - y0, x1 - x0), bool), np.zeros((y1 - y0, x1 - x0), bool)
        for canvas, mask in ((a, self), (b, other)):
            h, w = mask.bits.shape
            canvas[mask.y0 - y0 : mask.y0 - y0 + h, mask.x0 - x0 : mask.x0 - x0 + w] = mask.bits
        inter = np.count_nonzero(a & b)
        union = np.count_nonzero(a | b)
        smaller = min(np.count_nonzero(a), np.count_nonzero(b))
        return (inter / union if union else 0.0), (inter / smaller if smaller else 0.0)


TileResult = tuple[PoseDetections, list[_MaskCrop]]


class PoseDetector:
    """Multi-person MediaPipe pose landmarks and masks over a tile pyramid, de-duplicated.

    ``tile_scales``: 0 = whole image, s > 0 = square tiles of s x the shorter side. More/smaller tiles find smaller
    people at proportional cost (each tile runs the detector and the landmark model of every person it finds).
    """

    def __init__(
        self,
        tile_scales: Sequence[float] = (0.0, 1.0, 0.6, 0.4),
        max_people_per_tile: int = 8,
        min_detection_confidence: float = 0.3,
        min_presence_confidence: float = 0.4,
        whole_image_confidence: float = 0.1,
        min_score: float = 0.3,
        dedup_iou: float = 0.5,
        min_size_px: float = 32.0,
    ) -> None:
        self.tile_scales = tuple(tile_scales)
        self.min_score = min_score
        self.dedup_iou = dedup_iou
        self.min_size_px = min_size_px
        # The whole image is searched with a permissive threshold: people seen from behind or cut by the frame
        # score low there, and the whole view is where a large person is seen complete. Tiles see pieces of
        # large people, so they use the normal threshold to avoid hypotheses built on fragments.
        task = ensure_task_file()
        self._landmarker = self._create(task, max_people_per_tile, min_detection_confidence, min_presence_confidence)
        self._whole = self._create(task, max_people_per_tile, whole_image_confidence, whole_image_confidence)

    @staticmethod
    def _create(task: Path, num_poses: int, min_det: float, min_presence: float) -> Any:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task)),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=num_poses,
            min_pose_detection_confidence=min_det,
            min_pose_presence_confidence=min_presence,
            min_tracking_confidence=min_presence,
            output_segmentation_masks=True,
        )
        try:
            with native_stderr_silenced():
                return vision.PoseLandmarker.create_from_options(options)
        except Exception as exc:  # the C++ side raises RuntimeError/ValueError with its own message
            raise EstimatorError(f"MediaPipe pose landmarker could not be created: {exc}") from exc

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._whole.close()
            self._landmarker = self._whole = None

    def detect(
        self, image: np.ndarray, tile_scales: Sequence[float] | None = None,
        regions: Sequence[tuple[int, int, int]] = (), alternatives: int = 1, thorough: bool = True,
        previous: list[TileResult] | None = None,
    ) -> PoseDetections:
        """People in one RGB uint8 image (H, W, 3), in descending score order.

        ``tile_scales`` overrides the pyramid for this image; ``regions`` adds square crops (x0, y0, side), e.g.
        around the people of the previous video frame, so a clip needs the full pyramid only now and then.
        ``alternatives`` > 1 keeps up to that many hypotheses per person (``group`` says whose), for a caller
        that can judge them better than the detector's score (the fit: see mediapipe_fit). ``thorough=False``
        searches the whole image with the normal threshold too (cheaper: fewer candidate landmark runs), for
        video frames where the previous frame already says where people are. ``previous``: raw tile results
        of this image already computed (:meth:`run_tiles`), merged with the new ones.
        """
        height, width = image.shape[:2]
        tiles = tile_grid(width, height, self.tile_scales if tile_scales is None else tile_scales)
        tiles += [r for r in regions if r not in tiles]
        return self.merge((previous or []) + self.run_tiles(image, tiles, thorough), height, width, alternatives)

    def run_tiles(self, image: np.ndarray, tiles: Sequence[tuple[int, int, int]], thorough: bool = True
                  ) -> list[TileResult]:
        """Raw MediaPipe results of each tile (x0, y0, side; side 0 = whole image), in full-image pixels."""
        if self._landmarker is None:
            raise EstimatorError("PoseDetector used after close()")
        return [self._detect_tile(image, tile, thorough) for tile in tiles]

    def merge(self, raw: list[TileResult], height: int, width: int, alternatives: int = 1) -> PoseDetections:
        """Filter (score, size) and de-duplicate raw tile results into people."""
        merged = _concat([r[0] for r in raw if len(r[0])], height, width)
        crops = [m for r in raw for m in r[1]]
        size = np.hypot(merged.boxes[:, 2] - merged.boxes[:, 0], merged.boxes[:, 3] - merged.boxes[:, 1])
        good = np.flatnonzero((merged.scores >= self.min_score) & (size >= self.min_size_px))
        merged, crops = merged.select(good), [crops[i] for i in good]
        groups = deduplicate(merged, crops, self.dedup_iou)
        keep = [i for members in groups for i in members[: max(1, alternatives)]]
        out = merged.select(keep)
        out.group = np.array([g for g, members in enumerate(groups) for _ in members[: max(1, alternatives)]],
                             dtype=np.int64)
        out.masks = np.stack([crops[i].paste(height, width) for i in keep]) if keep else out.masks
        return out

    def _detect_tile(self, image: np.ndarray, tile: tuple[int, int, int], thorough: bool = True) -> TileResult:
        import mediapipe as mp

        height, width = image.shape[:2]
        x0, y0, side = tile
        crop = image if side == 0 else image[y0 : y0 + side, x0 : x0 + side]
        landmarker = self._whole if side == 0 and thorough else self._landmarker
        with native_stderr_silenced():
            result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop)))
        if not result.pose_landmarks:
            return PoseDetections.empty(height, width), []
        det = _to_arrays(result.pose_landmarks, result.pose_world_landmarks, (x0, y0), crop.shape[:2],
                         (height, width), cut_by_tile=side > 0)
        ch, cw = crop.shape[:2]
        masks = [
            _MaskCrop.from_probabilities(np.asarray(m.numpy_view()).reshape(ch, cw), x0, y0)
            for m in result.segmentation_masks
        ]
        return det, masks


def _to_arrays(
    landmarks: list, world: list, offset: tuple[int, int], crop_hw: tuple[int, int], image_hw: tuple[int, int],
    cut_by_tile: bool,
) -> PoseDetections:
    """MediaPipe result objects of one crop -> arrays in full-image pixels. People that an interior tile edge cuts
    get score 0 (their landmark crop was truncated, the landmarks are unreliable); a larger tile sees them whole."""
    ch, cw = crop_hw
    lm = np.array([[[p.x, p.y, p.visibility or 0.0, p.presence or 0.0] for p in person] for person in landmarks])
    wl = np.array([[[p.x, p.y, p.z] for p in person] for person in world], dtype=np.float64)
    keypoints = lm[..., :2] * np.array([cw, ch]) + np.array(offset, dtype=np.float64)
    visibility, presence = lm[..., 2], lm[..., 3]
    boxes = landmark_boxes(keypoints, visibility)
    scores = visibility[:, CORE_LANDMARKS].mean(axis=1)
    if cut_by_tile:
        scores = np.where(_cut_by_tile(keypoints, offset, crop_hw, image_hw), 0.0, scores)
    return PoseDetections(keypoints, visibility, presence, wl, scores, boxes, None)


def _cut_by_tile(keypoints: np.ndarray, offset: tuple[int, int], crop_hw: tuple[int, int],
                 image_hw: tuple[int, int]) -> np.ndarray:
    """Which people have a landmark near or beyond a tile edge that is not also an image edge."""
    x0, y0 = offset
    ch, cw = crop_hw
    h, w = image_hw
    margin = 0.03 * max(ch, cw)
    x, y = keypoints[..., 0], keypoints[..., 1]
    touches = np.zeros(keypoints.shape[:-1], dtype=bool)
    if x0 > 0:
        touches |= x < x0 + margin
    if y0 > 0:
        touches |= y < y0 + margin
    if x0 + cw < w:
        touches |= x > x0 + cw - margin
    if y0 + ch < h:
        touches |= y > y0 + ch - margin
    return touches.any(axis=-1)


def region_around(box: np.ndarray, width: int, height: int, margin: float = 1.5) -> tuple[int, int, int]:
    """A square crop (x0, y0, side) centred on ``box`` and ``margin`` times its longer side, inside the image."""
    side = int(round(min(max(box[2] - box[0], box[3] - box[1]) * margin, width, height)))
    side = max(side, 32)
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    x0 = int(round(np.clip(cx - side / 2, 0, max(width - side, 0))))
    y0 = int(round(np.clip(cy - side / 2, 0, max(height - side, 0))))
    return x0, y0, side


def landmark_boxes(keypoints: np.ndarray, visibility: np.ndarray, min_visibility: float = 0.3) -> np.ndarray:
    """(P, 4) boxes around each person's visible landmarks (all landmarks when too few are visible)."""
    boxes = np.zeros((len(keypoints), 4))
    for i, (pts, vis) in enumerate(zip(keypoints, visibility)):
        use = pts[vis >= min_visibility] if (vis >= min_visibility).sum() >= 4 else pts
        boxes[i] = [*use.min(axis=0), *use.max(axis=0)]
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes (N, 4) and (M, 4) -> (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def _keypoint_agreement(det: PoseDetections, i: int, j: int) -> float:
    """Fraction of core landmarks of i and j closer than 15% of the larger box diagonal."""
    core = list(CORE_LANDMARKS)
    diag = max(np.linalg.norm(det.boxes[i, 2:] - det.boxes[i, :2]), np.linalg.norm(det.boxes[j, 2:] - det.boxes[j, :2]))
    dist = np.linalg.norm(det.keypoints[i, core] - det.keypoints[j, core], axis=-1)
    return float((dist < 0.15 * max(diag, 1.0)).mean())


def deduplicate(det: PoseDetections, masks: Sequence[_MaskCrop], iou_threshold: float = 0.5) -> list[list[int]]:
    """Greedy NMS by score. A detection is a duplicate of a kept one when their boxes overlap and most core landmarks
    agree, when their masks overlap (IoU, or one mask almost inside the other), or when most of its visible landmarks
    lie on the kept person's mask (a second, different landmark hypothesis for a hard pose). Box overlap alone is not
    enough: an occluder and the person behind it overlap too.

    Returns one list per person: the kept detection first, then its duplicates by descending score.
    """
    order = np.argsort(-det.scores, kind="stable")
    iou = box_iou(det.boxes, det.boxes)
    groups: list[list[int]] = []
    for i in order:
        owner = next((g for g in groups if _same_person(det, masks, i, g[0], iou[i, g[0]], iou_threshold)), None)
        if owner is None:
            groups.append([int(i)])
        else:
            owner.append(int(i))
    return groups


def _same_person(det: PoseDetections, masks: Sequence[_MaskCrop], i: int, k: int, box_overlap: float,
                 threshold: float) -> bool:
    if box_overlap <= 0.0:
        return False
    if box_overlap >= threshold and _keypoint_agreement(det, i, k) >= 0.5:
        return True
    iou, inside = masks[i].overlap(masks[k])
    if iou >= threshold or inside >= 0.8:
        return True
    core = list(CORE_LANDMARKS)
    visible = det.visibility[i, core] >= 0.5
    if visible.sum() < 4:
        return False
    return masks[k].contains(det.keypoints[i, core][visible]).mean() >= 0.6


def _concat(parts: list[PoseDetections], height: int, width: int) -> PoseDetections:
    if not parts:
        return PoseDetections.empty(height, width)
    fields = ("keypoints", "visibility", "presence", "world", "scores", "boxes")
    return PoseDetections(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields), None)
