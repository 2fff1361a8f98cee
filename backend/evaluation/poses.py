"""A simple pose sampler with anatomical limits (SMPL axis-angle, joint-local frames, rest T-pose facing +z).

Good enough for synthetic coherence scenes: standing and walking people with varied arms and torsos, never
knees bent backwards or elbows hyper-extended. Not a learned prior.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from backend.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle

# joint -> ((lo_x, hi_x), (lo_y, hi_y), (lo_z, hi_z)) in radians
_LIMITS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((-0.7, 0.3), (-0.3, 0.3), (-0.1, 0.35)),  # left hip: flexion is -x
    2: ((-0.7, 0.3), (-0.3, 0.3), (-0.35, 0.1)),
    3: ((-0.1, 0.25), (-0.2, 0.2), (-0.1, 0.1)),  # spine
    4: ((0.0, 1.2), (0.0, 0.0), (0.0, 0.0)),  # knees bend one way only
    5: ((0.0, 1.2), (0.0, 0.0), (0.0, 0.0)),
    6: ((-0.1, 0.2), (-0.2, 0.2), (-0.1, 0.1)),
    7: ((-0.3, 0.3), (-0.1, 0.1), (-0.1, 0.1)),
    8: ((-0.3, 0.3), (-0.1, 0.1), (-0.1, 0.1)),
    9: ((-0.1, 0.2), (-0.2, 0.2), (-0.1, 0.1)),
    12: ((-0.2, 0.3), (-0.3, 0.3), (-0.15, 0.15)),
    13: ((0.0, 0.0), (-0.1, 0.1), (-0.15, 0.1)),
    14: ((0.0, 0.0), (-0.1, 0.1), (-0.1, 0.15)),
    15: ((-0.2, 0.3), (-0.4, 0.4), (-0.15, 0.15)),
    16: ((-0.3, 0.3), (-0.6, 0.6), (-1.35, 0.3)),  # left shoulder: arm down is -z
    17: ((-0.3, 0.3), (-0.6, 0.6), (-0.3, 1.35)),
    18: ((0.0, 0.0), (-1.8, 0.0), (0.0, 0.0)),  # left elbow bends forward with -y
    19: ((0.0, 0.0), (0.0, 1.8), (0.0, 0.0)),
    20: ((-0.3, 0.3), (-0.2, 0.2), (-0.3, 0.3)),
    21: ((-0.3, 0.3), (-0.2, 0.2), (-0.3, 0.3)),
}
_ARMS_DOWN = {16: (-1.35, -0.9), 17: (0.9, 1.35)}  # z ranges used most of the time


def sample_pose(rng: np.random.Generator, yaw: float | None = None) -> np.ndarray:
    """One (24, 3) axis-angle pose, upright in the OpenCV camera frame (y down), turned by ``yaw`` about y."""
    pose = np.zeros((24, 3))
    for joint, limits in _LIMITS.items():
        pose[joint] = [rng.uniform(lo, hi) for lo, hi in limits]
    for joint, (lo, hi) in _ARMS_DOWN.items():
        if rng.random() < 0.8:
            pose[joint, 2] = rng.uniform(lo, hi)
    if rng.random() < 0.5:  # walking: legs in opposite phases
        swing = rng.uniform(0.1, 0.5)
        pose[1, 0], pose[2, 0] = -swing, swing * 0.5
        pose[4, 0], pose[5, 0] = rng.uniform(0.0, 0.4), rng.uniform(0.2, 0.7)
    yaw = rng.uniform(-math.pi, math.pi) if yaw is None else yaw
    pose[0] = upright_orientation(yaw)
    return pose


def upright_orientation(yaw: float) -> np.ndarray:
    """Global axis-angle of a standing person in camera axes: the model's y-up flipped to y-down, then yawed."""
    flip = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    turn = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64))
    return matrix_to_axis_angle(turn @ flip).numpy()
