"""People's statures from a common floor: the image's relative sizes, not the shape prior, size each person.

One photo cannot tell a tall person far away from a short one near by: the fit draws each person the size its
shape prior suggests and puts it at the depth that size needs. People standing on one floor break that tie
together. Scaling a fitted body about the camera centre by ``s`` leaves its image unchanged and multiplies its
stature and the depth of its feet by ``s``; on a floor ``n . X = -h`` (``n``: the people's up direction in camera
axes, ``h``: the camera's height above the floor) the scale that puts the lowest seen foot point ``P`` on the floor
is ``h / (-n . P)``. So each person's stature on that floor is ``h * H / (-n . P)`` with ``H`` its fitted
stature: known up to the one unknown ``h`` shared by everybody in the frame. ``h`` is chosen so that the people
are typical adults in a robust sense (Cauchy-weighted mean of log statures around ``prior_height``): in a group of
adults with a child, the adults set the floor and the child comes out as short as the image shows it; a
group of children alone comes out adult-sized (nothing in a photo gives the absolute scale).

``n`` is the people's mean up direction blended with a level camera's (their spines lean; the blend keeps a
few people from tilting the floor). People who do not stand (lying, sitting: their up direction far from the
others'), whose feet are not seen, or whose feet are at or above the horizon get no target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.body.rotations import axis_angle_to_matrix
from backend.fitting.mapping import POINT_INDEX

FOOT_POINTS = tuple(POINT_INDEX[n] for n in ("left_heel", "right_heel", "left_toes", "right_toes"))


@dataclass(frozen=True)
class FloorHeightOptions:
    """When a frame's people are sized by their common floor, and how."""

    prior_height: float = 1.70  # metres: the stature the frame's typical person is given
    prior_log_sigma: float = 0.06  # Cauchy scale of log statures around it (adults spread about 6 %)
    min_people: int = 2  # standing people with seen feet a frame needs: one person has no relative size
    min_foot_confidence: float = 0.5
    max_lean_degrees: float = 25.0  # a person's up direction vs the frame's: standing
    level_weight: float = 2.0  # the level camera's up direction counts as this many people's
    min_drop: float = 0.05  # metres: the foot point must be this far below the camera along the up direction
    height_range: tuple[float, float] = (0.8, 2.2)  # metres: targets are clamped to a person's statures


def floor_statures(poses: np.ndarray, points3d: np.ndarray, statures: np.ndarray, confidence: np.ndarray,
                   frame_of: np.ndarray, options: FloorHeightOptions | None = None) -> np.ndarray:
    """(B,) target stature per fitted person (NaN: no floor says anything about it).

    ``poses`` (B, 24, 3) fitted axis-angle (joint 0 the global orientation in camera axes); ``points3d``
    (B, 25, 3) fitted body points in the camera frame (metres); ``statures`` (B,) fitted standing heights;
    ``confidence`` (B, 25) of the observed points; ``frame_of`` (B,) the frame of each row."""
    options = options or FloorHeightOptions()
    out = np.full(len(poses), np.nan)
    if len(poses) == 0:
        return out
    with torch.no_grad():
        # the body's +y (SMPL's up) in camera axes, whose y points down: about (0, -1, 0) for a standing person
        up = axis_angle_to_matrix(torch.as_tensor(poses[:, 0], dtype=torch.float64))[..., 1].numpy()
    for frame in np.unique(frame_of):
        rows = np.flatnonzero(frame_of == frame)
        out[rows] = _frame_statures(up[rows], points3d[rows], statures[rows], confidence[rows], options)
    return out


def _frame_statures(up: np.ndarray, points3d: np.ndarray, statures: np.ndarray, confidence: np.ndarray,
                    options: FloorHeightOptions) -> np.ndarray:
    out = np.full(len(up), np.nan)
    feet_conf = confidence[:, FOOT_POINTS]
    seen = (feet_conf > options.min_foot_confidence).any(1)
    if seen.sum() < options.min_people:
        return out
    level = np.array([0.0, -1.0, 0.0])
    normal = options.level_weight * level + up[seen].sum(0)
    normal /= np.linalg.norm(normal)
    standing = seen & (up @ normal > np.cos(np.radians(options.max_lean_degrees)))
    # the lowest confidently seen foot point along the floor's normal: the contact
    feet = points3d[:, FOOT_POINTS]  # (N, 4, 3)
    drop = -(feet @ normal)  # how far below the camera each foot point is, along the up direction
    drop = np.where(feet_conf > options.min_foot_confidence, drop, -np.inf).max(1)
    usable = standing & (drop > options.min_drop)
    if usable.sum() < options.min_people:
        return out
    per_height = statures[usable] / drop[usable]  # stature per metre of camera height
    log_h = _robust_log_height(np.log(options.prior_height) - np.log(per_height), options.prior_log_sigma)
    out[usable] = np.clip(np.exp(log_h) * per_height, *options.height_range)
    return out


def _robust_log_height(values: np.ndarray, sigma: float, iterations: int = 10) -> float:
    """Cauchy-weighted location of ``values`` (IRLS from the median): the majority's camera height."""
    centre = float(np.median(values))
    for _ in range(iterations):
        weights = 1.0 / (1.0 + ((values - centre) / sigma) ** 2)
        centre = float((weights * values).sum() / weights.sum())
    return centre
