"""Which point of the body each MediaPipe pose landmark observes, and how much to trust it.

MediaPipe's 33 BlazePose landmarks are matched to 25 body points:

* shoulders, elbows, wrists, knees, ankles -> the SMPL joints of the same name (BlazePose's limb landmarks sit
  at the joint centres, like SMPL's);
* hips -> *virtual hips*, not SMPL's hip joints. MediaPipe's hip landmarks are annotated on the surface near the
  greater trochanter: on upright people its world landmarks put them about 0.23 m apart and 0.43 m below the
  shoulders, where SMPL-proportioned hip joints are 0.14 m apart and 0.54 m below (measured on the test photos,
  after allowing for MediaPipe's ~10% smaller metric scale). A virtual hip is the SMPL hip joint moved
  ``HIP_OFFSET`` outwards and upwards in the pelvis frame and carried rigidly by the pelvis; its weight is
  lower than the limb joints' because the labelling convention varies;
* index + pinky knuckles (mean) -> SMPL's hand joint (it lies between them), which gives the wrist's rotation;
* nose, eyes, ears, mouth corners -> mesh landmark vertices of the body model (``landmark_vertices``);
* heels -> heel vertices; foot index (the toe tip) -> mean of big- and small-toe vertices.

Eye inner/outer corners and thumbs are not used (no stable counterpart, little extra information).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEDIAPIPE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
MP = {name: i for i, name in enumerate(MEDIAPIPE_NAMES)}

# Rest-pose offset of a virtual hip from the SMPL hip joint, metres, in the body frame (x = outwards, y = up).
HIP_OFFSET = (0.045, 0.055, 0.0)


@dataclass(frozen=True)
class PointSpec:
    """One fitted body point: observed by the mean of MediaPipe landmarks ``sources``, made of ``kind``/``refs``."""

    name: str
    sources: tuple[int, ...]  # MediaPipe landmark indices, averaged
    kind: str  # "joint" | "vertices" (mean of landmark vertices) | "virtual_hip"
    refs: tuple[str, ...]  # joint names or landmark-vertex names
    weight: float  # relative trust in the reprojection and 3D terms


def _joint(name: str, weight: float = 1.0) -> PointSpec:
    return PointSpec(name, (MP[name],), "joint", (name,), weight)


POINTS: tuple[PointSpec, ...] = (
    *(_joint(f"{side}_{part}") for part in ("shoulder", "elbow", "wrist", "knee", "ankle")
      for side in ("left", "right")),
    PointSpec("left_hip", (MP["left_hip"],), "virtual_hip", ("left_hip",), 0.7),
    PointSpec("right_hip", (MP["right_hip"],), "virtual_hip", ("right_hip",), 0.7),
    PointSpec("left_hand", (MP["left_index"], MP["left_pinky"]), "joint", ("left_hand",), 0.5),
    PointSpec("right_hand", (MP["right_index"], MP["right_pinky"]), "joint", ("right_hand",), 0.5),
    PointSpec("nose", (MP["nose"],), "vertices", ("nose",), 0.8),
    PointSpec("left_eye", (MP["left_eye"],), "vertices", ("left_eye",), 0.5),
    PointSpec("right_eye", (MP["right_eye"],), "vertices", ("right_eye",), 0.5),
    PointSpec("left_ear", (MP["left_ear"],), "vertices", ("left_ear",), 0.5),
    PointSpec("right_ear", (MP["right_ear"],), "vertices", ("right_ear",), 0.5),
    PointSpec("left_mouth", (MP["mouth_left"],), "vertices", ("left_mouth",), 0.3),
    PointSpec("right_mouth", (MP["mouth_right"],), "vertices", ("right_mouth",), 0.3),
    PointSpec("left_heel", (MP["left_heel"],), "vertices", ("left_heel",), 0.6),
    PointSpec("right_heel", (MP["right_heel"],), "vertices", ("right_heel",), 0.6),
    PointSpec("left_toes", (MP["left_foot_index"],), "vertices", ("left_big_toe", "left_small_toe"), 0.6),
    PointSpec("right_toes", (MP["right_foot_index"],), "vertices", ("right_big_toe", "right_small_toe"), 0.6),
)
POINT_NAMES: tuple[str, ...] = tuple(p.name for p in POINTS)
POINT_INDEX = {name: i for i, name in enumerate(POINT_NAMES)}
POINT_WEIGHTS = np.array([p.weight for p in POINTS], dtype=np.float32)

# Points whose mean centres the 3D comparison and that define the torso for initialisation.
TORSO_POINTS: tuple[int, ...] = tuple(
    POINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
)
# Bones (pairs of points) used to estimate metric scale and depth from limb lengths.
SCALE_BONES: tuple[tuple[int, int], ...] = tuple(
    (POINT_INDEX[a], POINT_INDEX[b])
    for a, b in (
        ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
        ("left_hip", "left_knee"), ("right_hip", "right_knee"), ("left_knee", "left_ankle"),
        ("right_knee", "right_ankle"), ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
        ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
    )
)


def mediapipe_to_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 33, C) MediaPipe landmark values (pixels, metres or confidences) -> (..., 25, C) per body point."""
    return np.stack([landmarks[..., list(p.sources), :].mean(axis=-2) for p in POINTS], axis=-2)


def mediapipe_confidence(visibility: np.ndarray, presence: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """(..., 33) -> (..., 25) confidence per body point: visibility x presence, the weakest source counting.

    Occluded landmarks keep a small ``floor``: MediaPipe still guesses them plausibly, which helps more than
    leaving the limb to the prior; landmarks outside the image (presence ~ 0) get ~0.
    """
    conf = np.clip(np.maximum(visibility, floor), 0.0, 1.0) * np.clip(presence, 0.0, 1.0)
    return np.stack([conf[..., list(p.sources)].min(axis=-1) for p in POINTS], axis=-1)
