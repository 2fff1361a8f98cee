"""Identities across frames: greedy association of each frame's people with the live tracks.

Cost of a (track, person) pair mixes 2D box overlap and 3D root distance, so people who cross in the image
but stand at different depths stay apart. A track survives ``max_gap`` frames without a match (short
occlusions); tracks shorter than ``min_length`` observations are dropped as flicker (clips only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.estimators.base import PersonEstimate


@dataclass
class Track:
    track_id: int
    frames: list[int] = field(default_factory=list)
    people: list[PersonEstimate] = field(default_factory=list)

    @property
    def last(self) -> PersonEstimate:
        return self.people[-1]


@dataclass
class TrackerSettings:
    max_gap: int = 10  # frames a track may go unseen and still be continued
    max_distance: float = 0.6  # metres the root may move per frame of gap before a match is refused
    min_length: int = 5  # clips only: shorter tracks are dropped as flicker


class Tracker:
    """Feed frames in order with :meth:`update`; read :meth:`finished_tracks` at the end."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[Track] = []
        self._next_id = 0

    def update(self, frame: int, people: list[PersonEstimate]) -> None:
        live = [t for t in self._tracks if frame - t.frames[-1] <= self.settings.max_gap]
        pairs = _greedy_pairs(self._costs(live, people, frame))
        matched = set()
        for track_index, person_index in pairs:
            live[track_index].frames.append(frame)
            live[track_index].people.append(people[person_index])
            matched.add(person_index)
        for index, person in enumerate(people):
            if index not in matched:
                self._tracks.append(Track(self._next_id, [frame], [person]))
                self._next_id += 1

    def finished_tracks(self, is_clip: bool) -> list[Track]:
        """All tracks, without the too-short ones when the source is a clip, renumbered 0..T-1."""
        keep = [t for t in self._tracks if not is_clip or len(t.frames) >= self.settings.min_length]
        if is_clip and not keep and self._tracks:
            keep = [max(self._tracks, key=lambda t: len(t.frames))]  # a very short clip still shows someone
        for new_id, track in enumerate(keep):
            track.track_id = new_id
        return keep

    def _costs(self, live: list[Track], people: list[PersonEstimate], frame: int) -> np.ndarray:
        costs = np.full((len(live), len(people)), np.inf)
        for i, track in enumerate(live):
            gap = frame - track.frames[-1]
            for j, person in enumerate(people):
                distance = float(np.linalg.norm(_root(person) - _root(track.last)))
                if distance > self.settings.max_distance * gap:
                    continue
                overlap = _box_iou(track.last.bbox, person.bbox)
                costs[i, j] = distance / (self.settings.max_distance * gap) + (1.0 - overlap)
        return costs


def _root(person: PersonEstimate) -> np.ndarray:
    """Root translation: the pelvis up to a per-person constant offset J_0(beta), which cancels within a track."""
    return np.asarray(person.transl, dtype=np.float64)


def _box_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _greedy_pairs(costs: np.ndarray) -> list[tuple[int, int]]:
    """Cheapest finite pairs first, each row and column used once."""
    pairs = []
    if costs.size == 0:
        return pairs
    order = np.argsort(costs, axis=None)
    used_rows, used_cols = set(), set()
    for flat in order:
        row, col = divmod(int(flat), costs.shape[1])
        if not np.isfinite(costs[row, col]):
            break
        if row not in used_rows and col not in used_cols:
            pairs.append((row, col))
            used_rows.add(row)
            used_cols.add(col)
    return pairs
