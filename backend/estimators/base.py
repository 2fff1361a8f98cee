"""What every estimator takes and gives: a batch of RGB frames in, the people of each frame out.

The pipeline owns the camera (intrinsics) and the body model and hands both to the estimator, so every
estimator expresses people in the same camera frame (OpenCV axes, metres) with the same body model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from backend.errors import EstimatorError  # noqa: F401  (re-exported: the estimators import it from here)
from backend.geometry.camera import Camera


@dataclass
class PersonEstimate:
    """One person in one frame, in the camera frame: posed joints = FK(poses, betas) + transl."""

    poses: np.ndarray  # (24, 3) axis-angle, joint 0 = global orientation in the camera frame
    betas: np.ndarray  # (num_betas,)
    transl: np.ndarray  # (3,) metres
    joints2d: np.ndarray  # (24, 2) pixels: the body's joints projected through the camera
    confidence: float  # detection confidence in 0..1
    bbox: np.ndarray | None = None  # (4,) x0, y0, x1, y1 pixels
    mask: np.ndarray | None = None  # (H, W) bool or float instance mask, when the estimator has one
    extras: dict = field(default_factory=dict)  # estimator-specific (keypoints, fit error, ...)


FrameEstimates = list[PersonEstimate]
# Warm start: for each frame of the batch, the previous estimates the estimator may start from (tracking
# decides which previous person is which); None when there is nothing to start from.
ProgressCallback = Callable[[int], None]


@dataclass
class FoundPeople:
    """The first stage's output for some frames of one shot (``FindsPeopleFirst.find_people``): one
    ``backend.detection.PoseDetections`` per frame; ``new_shot``: the frames begin a shot, so the estimator
    forgets the previous frames' people before it uses these."""

    per_frame: list  # list[PoseDetections]
    new_shot: bool = False

    def part(self, start: int, stop: int) -> "FoundPeople":
        """Frames ``start:stop``; only the first part begins the shot."""
        return FoundPeople(self.per_frame[start:stop], self.new_shot and start == 0)


class FindsPeopleFirst(Protocol):
    """An estimator whose first stage, finding people, shares no state with the rest: the pipeline finds the
    people of the next frames on another thread while this frames' bodies are fitted (``pipeline._PeopleAhead``)."""

    def find_people(self, frames: Sequence[np.ndarray], new_shot: bool = False) -> FoundPeople:
        """People in successive frames of one shot; ``new_shot``: forget the frames before."""
        ...

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera, found: FoundPeople | None = None
                 ) -> list[FrameEstimates]:
        """As :meth:`Estimator.estimate`, from ``found`` (``find_people`` of the same frames) when given."""
        ...


class Estimator(Protocol):
    """Batch of frames in, people per frame out."""

    name: str

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera) -> list[FrameEstimates]:
        """``frames``: RGB uint8 (H, W, 3) arrays of one source, in time order. Returns one list per frame."""
        ...

    def close(self) -> None:
        """Release models and native resources."""
        ...
