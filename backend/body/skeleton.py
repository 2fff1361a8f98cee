"""The SMPL skeleton shared by every body model (specs/estimators.md §6.1)."""

from __future__ import annotations

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand",
)

PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

NUM_JOINTS = len(JOINT_NAMES)

# Vertex landmarks every model provides (used by 2D/3D keypoint fitting).
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_mouth", "right_mouth", "left_heel",
    "right_heel", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
)


def joint_index(name: str) -> int:
    """Index of an SMPL joint by its lower-case name."""
    return JOINT_NAMES.index(name)


def children(joint: int) -> list[int]:
    """Direct children of a joint in the kinematic tree."""
    return [j for j, p in enumerate(PARENTS) if p == joint]
