"""The keypoint set LASOR sees: COCO-17, read off MediaPipe's 33 BlazePose landmarks at inference.

The paper feeds 17 COCO keypoint heatmaps. The project's people finder (``backend.detection``) gives MediaPipe's
33 landmarks, which contain the 17 COCO points, so the COCO order is kept and each point is taken from its
MediaPipe landmark. On the body side every point is what that landmark observes, as the default fit defines it
(``backend.fitting.mapping``): limb landmarks are SMPL joints, face landmarks are the body model's landmark
vertices and the hips are *virtual hips* (the SMPL hip joint moved outwards/upwards in the pelvis frame, where
BlazePose annotates hips).
"""

from __future__ import annotations

import numpy as np

COCO_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(COCO_NAMES)
# MediaPipe BlazePose landmark index of each COCO keypoint.
MEDIAPIPE_INDEX: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
# Body side: ("vertex", landmark name) | ("joint", SMPL joint name) | ("hip", SMPL hip joint name).
BODY_SOURCE: tuple[tuple[str, str], ...] = (
    ("vertex", "nose"), ("vertex", "left_eye"), ("vertex", "right_eye"), ("vertex", "left_ear"),
    ("vertex", "right_ear"),
    *(("joint", f"{side}_{part}") for part in ("shoulder", "elbow", "wrist") for side in ("left", "right")),
    ("hip", "left_hip"), ("hip", "right_hip"),
    *(("joint", f"{side}_{part}") for part in ("knee", "ankle") for side in ("left", "right")),
)
# Left/right partner of each keypoint (for mirroring and for the part-removal augmentation).
FLIP: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
# Virtual hip offset (metres, pelvis frame, x outwards / y up); the default fit's value.
try:  # keep one definition when the fit is importable
    from backend.fitting.mapping import HIP_OFFSET
except Exception:  # pragma: no cover - the fit is another engineer's module; fall back to its documented value
    HIP_OFFSET = (0.045, 0.055, 0.0)


def coco_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 33, C) MediaPipe per-landmark vectors (e.g. pixels) -> (..., 17, C) in COCO order."""
    return landmarks[..., list(MEDIAPIPE_INDEX), :]


def coco_values(values: np.ndarray) -> np.ndarray:
    """(..., 33) MediaPipe per-landmark scalars (visibility, presence) -> (..., 17)."""
    return values[..., list(MEDIAPIPE_INDEX)]
