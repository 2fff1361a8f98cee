"""``lasor``: MediaPipe detections (keypoints + person masks) -> LASOR regressor per person crop -> SMPL people.

The regressor (``backend.lasor``) was trained by the project on synthetic, occlusion-aware data for the
built-in open body; its weights ship with the project (``backend/lasor/weights``). It is a small CPU-trained
model: see backend/lasor/README.md for what it was trained on and its measured synthetic accuracy. With another
body model (the user's SMPL) the pose is used as is and the shape is left at the mean (betas 0): the shape
space it learned is the open body's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from backend.estimators.base import EstimatorError, FoundPeople, FrameEstimates, PersonEstimate
from backend.geometry.camera import Camera


class LasorEstimator:
    name = "lasor"

    def __init__(self, body_model: Any, device: Any = "cpu", *, weights: str | Path | None = None,
                 tile_scales: Sequence[float] | None = None, people: dict | None = None,
                 min_visibility: float = 0.4) -> None:
        import torch

        from backend.detection import clip_finder
        from backend.lasor.body import LightBody
        from backend.lasor.train import DEFAULT_WEIGHTS, load_regressor

        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise EstimatorError(f"lasor: weights not found at {path}")
        try:
            self.regressor = load_regressor(path, "cpu")
        except Exception as exc:
            raise EstimatorError(f"lasor: cannot load weights {path}: {exc}") from exc
        self.device = torch.device(device) if device not in (None, "auto") else torch.device("cpu")
        self.regressor.to(self.device)
        self.body = LightBody(body_model).to(self.device)
        self.min_visibility = min_visibility
        self.finder = clip_finder(self.device, tile_scales, **(people or {}))

    def find_people(self, frames: Sequence[np.ndarray], new_shot: bool = False) -> FoundPeople:
        """The first stage alone (the pipeline runs it ahead, on another thread)."""
        if new_shot:
            self.finder.reset()
        return FoundPeople(self.finder.find_frames(list(frames)), new_shot)

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera, found: FoundPeople | None = None
                 ) -> list[FrameEstimates]:
        from backend.lasor.inference import predict_people

        found = found if found is not None else self.find_people(frames)
        out: list[FrameEstimates] = []
        for det in found.per_frame:
            people = predict_people(self.regressor, self.body, det.keypoints, det.visibility, det.presence,
                                    det.masks, camera, min_visibility=self.min_visibility)
            out.append([
                PersonEstimate(
                    poses=people.poses[i], betas=people.betas[i], transl=people.transl[i],
                    joints2d=camera.project(people.joints[i]), confidence=float(det.scores[i]),
                    bbox=det.boxes[i].copy(), mask=None if det.masks is None else det.masks[i],
                    extras={"keypoints2d": det.keypoints[i], "keypoint_visibility": det.visibility[i],
                            "keypoint_layout": "mediapipe33",
                            "weak_perspective": people.cam[i], "crop": people.crops[i]},
                )
                for i in range(len(det))
            ])
        return out

    def reset(self) -> None:
        """A shot cut or an unrelated image next: the people finder forgets whom it was following."""
        self.finder.reset()

    def close(self) -> None:
        self.finder.reset()
