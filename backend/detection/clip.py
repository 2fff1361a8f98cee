"""Finding people in successive frames of one shot: the people of the last frame are looked for again where they
were, and every frame is searched for new people.

A person found in the previous frame is looked at in the region their landmarks give (MediaPipe's tracking step:
at video frame rates the body is still inside it), one landmark pass; when that fails, in a region half as large
again, two passes (a fast move, a camera pan); then wherever this frame's detectors put someone at their head.
Only then is the person missing from this frame. New people are searched for in every frame: one of the three
detectors over the whole image (they take turns, so each looks every third frame) and ``tiles_per_frame`` of the
smaller tiles of their pyramids in turn; the first frame of a shot gets every tile at once. Detections that
coincide with a tracked person cost no landmark run, nor do those where one of the last ``memory_frames``
frames found nobody. A clip of identical frames thus finds in every frame the people the image path finds in
one.
"""

from __future__ import annotations

import numpy as np

from backend.detection import proposals as P
from backend.detection.people import PeopleFinder
from backend.detection.poses import PoseDetections


class ClipPeopleFinder:
    """``find(frame)`` for the frames of one shot in order; :meth:`reset` at a shot cut."""

    def __init__(self, finder: PeopleFinder, tiles_per_frame: int = 2, memory_frames: int = 8) -> None:
        self.finder = finder
        self.tiles_per_frame = max(1, int(tiles_per_frame))
        self.memory_frames = max(1, int(memory_frames))
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames (a shot cut, or an unrelated image next)."""
        self._previous: PoseDetections | None = None
        self._empty: list[P.Proposals] = []  # per recent frame: places where nobody was found
        self._frame = 0

    def find(self, frame: np.ndarray, alternatives: int = 1) -> PoseDetections:
        part = None if self._frame == 0 else (self._frame - 1, self.tiles_per_frame)
        found = self.finder.find(frame, tracked=self._leaders(self._previous), frame_slice=part,
                                 alternatives=alternatives, known_empty=P.Proposals.concatenate(self._empty))
        self._previous = found
        self._empty = (self._empty + [self.finder.last_report.rejected])[-self.memory_frames:]
        self._frame += 1
        return found

    @staticmethod
    def _leaders(people: PoseDetections | None) -> PoseDetections | None:
        """One row per person (the first of each group of hypotheses)."""
        if people is None or people.group is None or len(people) == 0:
            return people
        _, first = np.unique(people.group, return_index=True)
        return people.select(np.sort(first))
