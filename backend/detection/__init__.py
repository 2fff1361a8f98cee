"""People-finding: the first stage of the pipeline, before any body is estimated.

``PeopleFinder`` finds every person in an image (MediaPipe's person, face and landmark models and, when
installed, MoveNet's body detector, all run in torch); ``ClipPeopleFinder`` follows them through a clip and
keeps searching for new ones. Both give :class:`PoseDetections`: 33 landmarks, world landmarks and a mask per
person, which the estimators that work on crops (mediapipe-fit, lasor, pare) read.
"""

from __future__ import annotations

from typing import Any, Sequence

from backend.detection.poses import CORE_LANDMARKS, HEAD_LANDMARKS, PoseDetections, landmark_boxes

__all__ = ["CORE_LANDMARKS", "HEAD_LANDMARKS", "PoseDetections", "landmark_boxes", "clip_finder"]


def clip_finder(device: Any = "cpu", tile_scales: Sequence[float] | None = None, **settings: Any):
    """A :class:`ClipPeopleFinder` with :class:`FinderSettings` ``settings``; ``tile_scales`` sets the pose and face
    detectors' pyramids at once (0 = whole image only: the fastest)."""
    from backend.detection.clip import ClipPeopleFinder
    from backend.detection.people import FinderSettings, PeopleFinder

    if tile_scales is not None:
        settings.setdefault("pose_tiles", tuple(tile_scales))
        settings.setdefault("face_tiles", tuple(tile_scales))
    return ClipPeopleFinder(PeopleFinder(device, FinderSettings(**settings)))
