"""Finding people in successive frames of one shot: the people of the last frame are looked for again where they were,
and every frame is searched for new people.

A person found in the previous frame is looked at in the region their landmarks give (MediaPipe's tracking step: at
video frame rates the body is still inside it), one landmark pass; when that fails, in a region half as large again,
two passes (a fast move, a camera pan); then wherever this frame's detectors put someone at their head. Only then is
the person missing from this frame; a person missing for up to ``lost_frames`` frames is still looked for where they
were last seen (a moment hidden behind someone, a blur), so that a short gap is filled by an observation rather than
bridged by the tracker. New people are searched for in every frame: one of the detectors over the whole image (they
take turns, so each looks every third or fourth frame) and ``tiles_per_frame`` of the smaller tiles of their
pyramids in turn; the first frame of a shot gets every tile at once. Detections that coincide with a tracked person
cost no landmark run, nor do those where one of the last ``memory_frames`` frames found nobody. A clip of identical
frames thus finds in every frame the people the image path finds in one.
"""

from __future__ import annotations

import numpy as np

from backend.detection import proposals as P
from backend.detection.people import PeopleFinder
from backend.detection.poses import PoseDetections


class ClipPeopleFinder:
    """``find(frame)`` for the frames of one shot in order; :meth:`reset` at a shot cut."""

    def __init__(self, finder: PeopleFinder, tiles_per_frame: int = 2, memory_frames: int = 8,
                 lost_frames: int = 4) -> None:
        self.finder = finder
        self.tiles_per_frame = max(1, int(tiles_per_frame))
        self.memory_frames = max(1, int(memory_frames))
        self.lost_frames = max(0, int(lost_frames))
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames (a shot cut, or an unrelated image next)."""
        self._previous: PoseDetections | None = None
        self._lost: PoseDetections | None = None  # people missing from the last frames, as last seen
        self._missing = np.zeros(0, np.int64)  # per lost person: frames missing so far
        self._empty: list[P.Proposals] = []  # per recent frame: places where nobody was found
        self._frame = 0

    def find(self, frame: np.ndarray, alternatives: int = 1) -> PoseDetections:
        part = None if self._frame == 0 else (self._frame - 1, self.tiles_per_frame)
        leaders = self._leaders(self._previous)
        found = self.finder.find(frame, tracked=leaders, frame_slice=part, alternatives=alternatives,
                                 known_empty=P.Proposals.concatenate(self._empty), lost=self._lost)
        self._update_lost(leaders, found)
        self._previous = found
        self._empty = (self._empty + [self.finder.last_report.rejected])[-self.memory_frames:]
        self._frame += 1
        return found

    def _update_lost(self, leaders: PoseDetections | None, found: PoseDetections) -> None:
        """Who is lost after this frame: the last frame's people not followed into it, and those lost before
        and not found again, each for at most ``lost_frames`` frames."""
        parts, missing = [], []
        if leaders is not None and len(leaders):
            gone = np.setdiff1d(np.arange(len(leaders)), found.origin if found.origin is not None else [])
            parts.append(leaders.select(gone))
            missing.append(np.ones(len(gone), np.int64))
        if self._lost is not None:
            still = np.setdiff1d(np.arange(len(self._lost)), self.finder.last_report.recovered)
            parts.append(self._lost.select(still))
            missing.append(self._missing[still] + 1)
        self._missing = np.concatenate(missing) if missing else np.zeros(0, np.int64)
        keep = np.flatnonzero(self._missing <= self.lost_frames)
        self._lost = PoseDetections.concatenate(parts).select(keep) if len(keep) else None
        self._missing = self._missing[keep]

    @staticmethod
    def _leaders(people: PoseDetections | None) -> PoseDetections | None:
        """One row per person (the first of each group of hypotheses)."""
        if people is None or people.group is None or len(people) == 0:
            return people
        _, first = np.unique(people.group, return_index=True)
        return people.select(np.sort(first))
