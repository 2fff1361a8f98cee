"""Finding people in successive frames of one shot: the people of the last frame are looked for again where they were,
and every frame is searched for new people. A person found in the previous frame is looked at in the region their
landmarks give (MediaPipe's tracking step: at video frame rates the body is still inside it), one landmark pass,
and where their last step takes them (:func:`predicted`: a zoom, a run); when that fails, in a region half as large
again, two passes (a fast move, a camera pan); then wherever this frame's detectors put someone at their head, the
face detector also run on their region (:meth:`PeopleFinder.search_near`). Only then is the person missing from
this frame; a person missing for up to ``lost_frames`` frames is still looked for where they were last seen, one
pass per region (a moment hidden behind someone, a blur), so that a short gap is filled by an observation rather
than bridged by the tracker; :meth:`ClipPeopleFinder.find_frames` then looks at the frames of such a gap once more,
in regions interpolated between where the person was last seen and where they were found again. New people are
searched for in every frame: one of the detectors over the whole image (they take turns, so each looks every third
or fourth frame) and ``tiles_per_frame`` of the smaller tiles of their pyramids in turn; the first frame of a shot
gets every tile at once. Detections that coincide with a tracked person cost no landmark run, nor do those where
one of the last ``memory_frames`` frames found nobody; those places move with the picture when the camera pans
(:func:`picture_shift`). A clip of identical frames thus finds in every frame the people the image path finds in
one.
"""

from __future__ import annotations

import cv2
import numpy as np

from backend.detection import proposals as P
from backend.detection.people import PeopleFinder
from backend.detection.poses import HEAD_LANDMARKS, PoseDetections

MAX_STEP = 0.25  # of a person's region: the largest step a tracked person is predicted to make in a frame
MAX_GROWTH = 1.25  # ... and the largest change of their size
MIN_MOVE = 0.05  # of their region: people who moved less are looked for only where they were
SHIFT_WIDTH = 160  # pixels: the width of the grey thumbnails the picture's shift between frames is measured on
MIN_SHIFT_RESPONSE = 0.1  # phase correlation's peak below this: no one shift explains the frame (a cut, a zoom)


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
        self._forget()
        self._frame = 0

    def _forget(self) -> None:
        """Forget the people and places of the previous frames; the frame count goes on."""
        self._previous: PoseDetections | None = None
        self._older: PoseDetections | None = None  # one row per person of the frame before the previous one
        self._lost: PoseDetections | None = None  # people missing from the last frames, as last seen
        self._missing = np.zeros(0, np.int64)  # per lost person: frames missing so far
        self._lost_seen = np.zeros((0, 2), np.int64)  # per lost person: (frame, index among its people) last seen
        self._empty: list[P.Proposals] = []  # per recent frame: places where nobody was found
        self._thumbnail: np.ndarray | None = None  # the last frame's, for the picture's shift (picture_shift)
        self._thumbnail_of: tuple[int, ...] = ()  # ... and that frame's (height, width)

    def find(self, frame: np.ndarray, alternatives: int = 1, second_opinion: bool = True) -> PoseDetections:
        """The people of the next frame; ``second_opinion``: the faint candidates of a shot's first frame (searched
        whole) are read again by the heavy model (``FinderSettings.second_opinion``), and so is a person it read
        whom the finder's own model cannot read in the next frame (without: a track of one frame)."""
        if self._thumbnail is not None and frame.shape[:2] != self._thumbnail_of:
            self._forget()  # a picture of another size (a folder of mixed pictures, no cut seen): none carry over
        self._thumbnail_of = frame.shape[:2]
        part = None if self._frame == 0 else (self._frame - 1, self.tiles_per_frame)
        self._follow_picture(frame)
        leaders = self._leaders(self._previous)
        found = self.finder.find(frame, tracked=leaders, frame_slice=part, alternatives=alternatives,
                                 known_empty=P.Proposals.concatenate(self._empty), lost=self._lost,
                                 moved=predicted(leaders, self._older), second_opinion=second_opinion)
        self._update_lost(leaders, found)
        self._previous, self._older = found, leaders
        self._empty = (self._empty + [self.finder.last_report.rejected])[-self.memory_frames:]
        self._frame += 1
        return found

    def _follow_picture(self, frame: np.ndarray) -> None:
        """Moves the places where nobody was found with the picture. On a broadcast's pan the stands slide by tens
        of pixels a frame, and the same spectators, hidden behind seats and rows, were looked for anew at every
        detector pass. Without one clear shift (a cut, a zoom, a crowd crossing the view) they are forgotten.
        People lost from view are not moved so: the camera pans to follow the players, who stay in view while
        the background slides (moved with it, the players lost in a fast pan at the dribble clip's frames
        140-150 were looked for where they were not, and fewer were found)."""
        thumbnail = _grey_thumbnail(frame)
        if self._thumbnail is not None and self._empty:
            shift = picture_shift(self._thumbnail, thumbnail, frame.shape[1] / thumbnail.shape[1])
            self._empty = [] if shift is None else [_moved(places, shift) for places in self._empty]
        self._thumbnail = thumbnail

    def find_frames(self, frames: list[np.ndarray], alternatives: int = 1) -> list[PoseDetections]:
        """:meth:`find` for successive frames; then each gap of a person found again within these frames is
        looked at once more (:meth:`_fill_gap`): both ends known, the region is interpolated, not predicted, and
        the tracked person's weaker evidence applies. A gap's frames read there become observations."""
        first = self._frame
        found: list[PoseDetections] = []
        for image in frames:
            lost_seen = self._lost_seen
            people = self.find(image, alternatives)
            report = self.finder.last_report
            for lost, person in zip(report.recovered, report.recovered_as):
                seen_frame, seen_person = (int(v) for v in lost_seen[lost])
                if seen_frame >= first:  # the whole gap lies in these frames
                    self._fill_gap(frames, found, first, (seen_frame, seen_person), people, person, alternatives)
            found.append(people)
        return found

    def _fill_gap(self, frames: list[np.ndarray], found: list[PoseDetections], first: int,
                  seen: tuple[int, int], people: PoseDetections, person: int, alternatives: int) -> None:
        """Look for ``person`` of the current frame's ``people`` (found again after a gap) in the frames since
        ``seen`` = (frame, person index there), where they were last seen; add them where read, linked by
        ``origin`` to the frame before where that frame has them too."""
        seen_frame, seen_person = seen
        now = self._frame - 1
        before = self._leaders(found[seen_frame - first]).select([seen_person])
        after = self._leaders(people).select([person])
        index = {seen_frame: seen_person}  # frame -> the person's index among that frame's people
        for k in range(seen_frame + 1, now):
            guess = _between(before, after, (k - seen_frame) / (now - seen_frame))
            reading = self.finder.find(frames[k - first], tracked=guess, search=False, alternatives=alternatives)
            others = found[k - first]
            if len(reading) == 0 or _at_someones_head(reading, others):
                continue
            reading.origin[:] = index.get(k - 1, -1)
            reading.group = reading.group + (int(others.group.max()) + 1 if len(others) else 0)
            index[k] = len(np.unique(others.group)) if len(others) else 0
            found[k - first] = PoseDetections.concatenate([others, reading]) if len(others) else reading
        if now - 1 in index:
            people.origin[people.group == person] = index[now - 1]  # group ids are the people's indices

    def _update_lost(self, leaders: PoseDetections | None, found: PoseDetections) -> None:
        """Who is lost after this frame: the last frame's people not followed into it, and those lost before
        and not found again, each for at most ``lost_frames`` frames."""
        parts, missing, seen = [], [], []
        if leaders is not None and len(leaders):
            gone = np.setdiff1d(np.arange(len(leaders)), found.origin if found.origin is not None else [])
            parts.append(leaders.select(gone))
            missing.append(np.ones(len(gone), np.int64))
            seen.append(np.stack([np.full(len(gone), self._frame - 1), gone], -1).astype(np.int64))
        if self._lost is not None:
            still = np.setdiff1d(np.arange(len(self._lost)), self.finder.last_report.recovered)
            parts.append(self._lost.select(still))
            missing.append(self._missing[still] + 1)
            seen.append(self._lost_seen[still])
        self._missing = np.concatenate(missing) if missing else np.zeros(0, np.int64)
        keep = np.flatnonzero(self._missing <= self.lost_frames)
        self._lost = PoseDetections.concatenate(parts).select(keep) if len(keep) else None
        self._missing = self._missing[keep]
        self._lost_seen = np.concatenate(seen)[keep] if seen else np.zeros((0, 2), np.int64)

    @staticmethod
    def _leaders(people: PoseDetections | None) -> PoseDetections | None:
        """One row per person (the first of each group of hypotheses)."""
        if people is None or people.group is None or len(people) == 0:
            return people
        _, first = np.unique(people.group, return_index=True)
        return people.select(np.sort(first))


def predicted(people: PoseDetections | None, older: PoseDetections | None
              ) -> tuple[PoseDetections, np.ndarray] | None:
    """Where those of ``people`` (one row each, ``origin`` indexing ``older``, the frame before) who moved should
    be in the next frame, and their rows: each moved on by their last step and grown by their last change of
    size (a pan, a zoom, a run), the step at most ``MAX_STEP`` of their region. At a zoom people slide outwards
    by tens of pixels a frame, and the regions they were seen in miss them; those who barely moved are left
    out (where they were is where they are)."""
    if people is None or older is None or people.origin is None or len(people) == 0:
        return None
    heads = people.keypoints[:, list(HEAD_LANDMARKS)].mean(axis=1)
    rows, moves = [], []
    for i, o in enumerate(people.origin):
        if not 0 <= o < len(older):
            continue
        step = heads[i] - older.keypoints[o, list(HEAD_LANDMARKS)].mean(axis=0)
        step *= min(1.0, MAX_STEP * people.regions[i, 2] / max(float(np.linalg.norm(step)), 1e-6))
        grow = float(np.clip(people.regions[i, 2] / max(older.regions[o, 2], 1e-6), 1 / MAX_GROWTH, MAX_GROWTH))
        if np.linalg.norm(step) + abs(grow - 1.0) * people.regions[i, 2] >= MIN_MOVE * people.regions[i, 2]:
            rows.append(i)
            moves.append((step, grow))
    if not rows:
        return None
    out = people.select(rows)
    for k, (i, (step, grow)) in enumerate(zip(rows, moves)):
        centre = heads[i] + step
        out.keypoints[k] = centre + grow * (people.keypoints[i] - heads[i])
        for regions in (out.regions, out.seen_regions):
            regions[k, :2] = centre + grow * (regions[k, :2] - heads[i])
            regions[k, 2] *= grow
    return out, np.array(rows, np.int64)


def picture_shift(before: np.ndarray, after: np.ndarray, scale: float = 1.0) -> np.ndarray | None:
    """How far the picture moved from ``before`` to ``after`` (grey float32 images of one size), in pixels times
    ``scale``: (dx, dy), or None when phase correlation finds no clear single shift, or the two differ in size
    (a folder of pictures of other shapes)."""
    if before.shape != after.shape:
        return None
    height, width = before.shape[:2]
    window = cv2.createHanningWindow((width, height), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(before, after, window)
    return scale * np.array([dx, dy]) if response >= MIN_SHIFT_RESPONSE else None  # NaN (a blank frame): None


def _grey_thumbnail(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    size = (SHIFT_WIDTH, max(8, int(round(height * SHIFT_WIDTH / width))))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _moved(places: P.Proposals, shift: np.ndarray) -> P.Proposals:
    """``places`` moved by ``shift`` (dx, dy) pixels."""
    out = places.select(np.arange(len(places)))
    out.regions[:, :2] += shift
    out.face[:, :2] += shift
    return out


def _between(before: PoseDetections, after: PoseDetections, weight: float) -> PoseDetections:
    """One person's reading ``weight`` of the way from ``before`` to ``after`` (landmarks and regions; the rest
    from ``before``): where to look for them in a frame between the two."""
    mix = lambda a, b: (1.0 - weight) * a + weight * b  # noqa: E731
    out = before.select([0])
    out.keypoints = mix(before.keypoints, after.keypoints)
    out.regions = mix(before.regions, after.regions)
    out.seen_regions = mix(before.seen_regions, after.seen_regions)
    out.scores = np.minimum(before.scores, after.scores)
    return out


def _at_someones_head(reading: PoseDetections, others: PoseDetections) -> bool:
    """Whether the reading's head lies on the head of someone already found in that frame (within half the
    ear-to-ear width of the larger head): then it read that someone, not the person looked for."""
    if len(others) == 0:
        return False
    head = reading.keypoints[0, list(HEAD_LANDMARKS)].mean(axis=0)
    heads = others.keypoints[:, list(HEAD_LANDMARKS)].mean(axis=1)
    ears = np.linalg.norm(others.keypoints[:, 7] - others.keypoints[:, 8], axis=-1)
    width = np.maximum(ears, np.linalg.norm(reading.keypoints[0, 7] - reading.keypoints[0, 8]))
    return bool((np.linalg.norm(heads - head, axis=-1) < np.maximum(0.6 * width, 1.0)).any())
