"""The camera's absolute focal length, recovered from how it turns (self-calibration of a rotating camera).

A camera turning and zooming about its centre maps a keyframe's pixels onto a later frame's by
H = K_t R K_key^-1. With square pixels and the principal point at the centre the only unknown of K is the focal
length, and a turn *off* the optical axis (a pan or a tilt) shows it: the perspective of the turn grows with
the angle, which is the image shift over the focal length. :class:`~backend.world.motion.RotationTracker` keeps,
for each keyframe, its background inliers in the last frame measured against it (:class:`KeyPair`); here one
focal length f for the first frame of every shot is fitted to all of them: each keyframe's focal is f times the
zoom chained over the keyframes before it in its shot, and for a given f each pair's rotation and zoom are
fitted by least squares (``refine_rotation_zoom``), so the reprojection error in pixels is a function of f alone
(variable projection), minimised over log f with ``scipy.optimize.least_squares`` from the best of a coarse grid.

Its confidence is the standard error of log f from that fit (Gauss-Newton, the pairs' own residual scatter).
None (no estimate) when the largest turn off the optical axis is under ``min_turn_deg``, when the error is over
``max_spread`` (a flat cost: a roll about the optical axis alone says nothing about f, nor does a static shot),
or when the best focal lies at the end of the searched range. A pan of a few degrees, with or without a tilt,
is enough: a turn about one axis determines f (its homography's corner terms are f sin(a) and -sin(a) / f).
Tracking noise is correlated along a track, so the stated error is a lower bound; measure before trusting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from backend.world.motion import KeyPair, MotionSettings, RotationTracker, refine_rotation_zoom, rotation_zoom_of


@dataclass(frozen=True)
class FocalSettings:
    min_turn_deg: float = 2.0  # largest turn off the optical axis between a keyframe and its frame
    max_spread: float = 0.02  # standard error of the focal (relative) above which there is no estimate
    fov_range_deg: tuple[float, float] = (2.0, 150.0)  # searched, across the image width
    grid: int = 40  # coarse grid over that range (log-spaced focal lengths)
    min_points: int = 12  # a pair with fewer inliers is left out


@dataclass(frozen=True)
class FocalEstimate:
    focal: float  # pixels, the first frame of each shot (the pairs' pixels, or the frame's from ``in_frame``)
    spread: float  # standard error of the focal, relative
    turn_deg: float  # largest turn off the optical axis among the pairs
    pairs: int
    points: int

    def fov_degrees(self, size: float) -> float:
        """Field of view across ``size`` pixels (the image's longer side, as ``--fov``)."""
        return math.degrees(2 * math.atan(0.5 * size / self.focal))

    def scaled(self, factor: float) -> "FocalEstimate":
        return FocalEstimate(self.focal * factor, self.spread, self.turn_deg, self.pairs, self.points)


def estimate_focal(pairs: Sequence[KeyPair], width: float, settings: FocalSettings | None = None
                   ) -> FocalEstimate | None:
    """The focal length (pixels of the pairs) of the camera whose keyframe ``pairs`` these are, or None when
    the motion does not determine it (see the module docstring); ``width``: the image width in those pixels."""
    settings = settings or FocalSettings()
    pairs = [p for p in pairs if len(p.key) >= settings.min_points]
    if not pairs:
        return None
    profile = _Profile(pairs)
    low, high = (math.log(0.5 * width / math.tan(math.radians(0.5 * fov))) for fov in settings.fov_range_deg[::-1])
    grid = np.linspace(low, high, settings.grid)
    costs = [float(np.square(profile.residuals(g, refine=False)).sum()) for g in grid]
    start = float(grid[int(np.argmin(costs))])
    fit = least_squares(lambda x: profile.residuals(float(x[0])), [start], bounds=([low], [high]),
                        diff_step=1e-3, x_scale=[0.1])
    log_focal = float(fit.x[0])
    dof = max(fit.fun.size - 1 - 4 * len(pairs), 1)
    information = float(fit.jac[:, 0] @ fit.jac[:, 0])
    spread = math.sqrt(2 * fit.cost / dof / information) if information > 0 else math.inf
    turn = profile.largest_turn_deg(log_focal)
    edge = min(log_focal - low, high - log_focal) < 0.5 * (grid[1] - grid[0])
    if turn < settings.min_turn_deg or spread > settings.max_spread or edge:
        return None
    return FocalEstimate(math.exp(log_focal), spread, turn, len(pairs), int(sum(len(p.key) for p in pairs)))


def estimate_tracker_focal(tracker: RotationTracker, width: int, settings: FocalSettings | None = None
                           ) -> FocalEstimate | None:
    """:func:`estimate_focal` from a tracker's pairs, in the pixels of the frames it was given."""
    estimate = estimate_focal(tracker.key_pairs(), width * tracker.scale, settings)
    return None if estimate is None else estimate.scaled(1.0 / tracker.scale)


def focal_of_frames(frames: Sequence[np.ndarray], focal: float, boxes: Sequence[Sequence[np.ndarray]] | None = None,
                    new_segments: Sequence[int] = (), motion: MotionSettings | None = None,
                    settings: FocalSettings | None = None) -> FocalEstimate | None:
    """The focal length of RGB ``frames`` (principal point at the centre) tracked with an assumed ``focal``
    (the tracker's lens: any guess), people's ``boxes`` kept out: benchmarks and tests."""
    height, width = frames[0].shape[:2]
    tracker = RotationTracker(width, height, focal, (width / 2, height / 2), motion)
    starts = set(new_segments)
    for index, frame in enumerate(frames):
        tracker.update(frame, boxes[index] if boxes is not None else (), index in starts)
    return estimate_tracker_focal(tracker, width, settings)


def reprojection_rms(pairs: Sequence[KeyPair], focals: Sequence[float]) -> np.ndarray:
    """Root-mean-square reprojection error (pixels of the pairs) of the best rotations and zooms at each focal
    length: the cost :func:`estimate_focal` minimises, to see how flat it is."""
    profile = _Profile(pairs)
    return np.array([math.sqrt(float(np.square(profile.residuals(math.log(f))).mean())) for f in focals])


class _Profile:
    """Reprojection residuals of all pairs as a function of log f, the pairs' rotations and zooms fitted."""

    def __init__(self, pairs: Sequence[KeyPair]) -> None:
        self.pairs = list(pairs)
        self.homographies = [cv2.findHomography(p.key.astype(np.float64), p.frame.astype(np.float64), 0)[0]
                             for p in self.pairs]

    def fits(self, log_focal: float, refine: bool = True) -> list[tuple[float, np.ndarray, float]]:
        """Per pair: the keyframe's focal, rotation and zoom, the zoom chained over each shot's keyframes."""
        focal, chain, segment, out = math.exp(log_focal), 1.0, None, []
        for pair, homography in zip(self.pairs, self.homographies):
            if pair.segment != segment:
                chain, segment = 1.0, pair.segment
            key_focal = focal * chain
            rotation, zoom = rotation_zoom_of(homography, key_focal)
            if refine:
                rotation, zoom = refine_rotation_zoom(pair.key, pair.frame, key_focal, rotation, zoom)
            out.append((key_focal, rotation, zoom))
            chain *= zoom
        return out

    def residuals(self, log_focal: float, refine: bool = True) -> np.ndarray:
        parts = []
        for pair, (key_focal, rotation, zoom) in zip(self.pairs, self.fits(log_focal, refine)):
            rays = np.column_stack([pair.key / key_focal, np.ones(len(pair.key))]) @ rotation.T
            parts.append((zoom * key_focal * rays[:, :2] / rays[:, 2:3] - pair.frame).ravel())
        return np.concatenate(parts)

    def largest_turn_deg(self, log_focal: float) -> float:
        turns = [np.linalg.norm(Rotation.from_matrix(rotation).as_rotvec()[:2])
                 for _, rotation, _ in self.fits(log_focal)]
        return float(np.degrees(max(turns)))


__all__ = ["FocalEstimate", "FocalSettings", "estimate_focal", "estimate_tracker_focal", "focal_of_frames",
           "reprojection_rms"]
