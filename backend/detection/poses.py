"""The people of one image as the detection stage hands them on: MediaPipe's 33 landmarks, world landmarks, masks."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

# Landmarks of the body proper (shoulders, elbows, wrists, hips, knees, ankles): boxes, scores and de-duplication.
CORE_LANDMARKS = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
HEAD_LANDMARKS = tuple(range(11))  # nose, eyes, ears, mouth


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
    regions: np.ndarray | None = None  # (P, 4) where to look for each person next (cx, cy, side, rotation)
    seen_regions: np.ndarray | None = None  # (P, 4) the region in which the landmark model saw them
    origin: np.ndarray | None = None  # (P,) in a clip: the person's index in the previous frame's people, or -1
    second: np.ndarray | None = None  # (P,) bool: read by the second opinion's model (a clip follows them with it)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, height: int, width: int) -> "PoseDetections":
        z = np.zeros
        return cls(z((0, 33, 2)), z((0, 33)), z((0, 33)), z((0, 33, 3)), z((0,)), z((0, 4)),
                   z((0, height, width), bool), z((0,), np.int64), z((0, 4)), z((0, 4)), z((0,), np.int64),
                   z((0,), bool))

    def select(self, index: Sequence[int] | np.ndarray) -> "PoseDetections":
        idx = np.asarray(index, dtype=np.int64)
        return PoseDetections(*(None if getattr(self, f.name) is None else getattr(self, f.name)[idx]
                                for f in fields(self)))

    @classmethod
    def concatenate(cls, parts: Sequence["PoseDetections"]) -> "PoseDetections":
        """The people of ``parts`` (of one image size) in order; a field missing from any part is missing."""
        return cls(*(None if any(getattr(p, f.name) is None for p in parts)
                     else np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def landmark_boxes(keypoints: np.ndarray, visibility: np.ndarray, min_visibility: float = 0.3) -> np.ndarray:
    """(P, 4) boxes around each person's visible landmarks (all landmarks when too few are visible)."""
    boxes = np.zeros((len(keypoints), 4))
    for i, (pts, vis) in enumerate(zip(keypoints, visibility)):
        use = pts[vis >= min_visibility] if (vis >= min_visibility).sum() >= 4 else pts
        boxes[i] = [*use.min(axis=0), *use.max(axis=0)]
    return boxes
