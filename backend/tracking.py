"""Identities across frames: each frame's people are assigned to tracks by a global (Hungarian) assignment.

The cost of a (track, person) pair mixes four cues, each scaled to about 0..1:

- motion: distance from the track's constant-velocity prediction of the root, measured across the image and,
  down-weighted, along the viewing ray (a monocular depth jitters far more than the image position), with a
  gate that widens with the gap;
- box overlap with the track's last box (only right after it was seen);
- body shape: distance of the shape coefficients from the track's running mean;
- appearance: colour histograms of the person's box/mask (``backend.appearance``), a running mean per track,
  taken only from boxes no nearer person covers (an occluded box shows the occluder's colours).

A track unseen for up to ``max_gap`` frames can be re-identified (occlusion, missed detections); a shot cut
(:meth:`Tracker.cut`) ends every track, so nobody keeps an identity across cuts. For clips, tracks with too
few observations or too low a mean confidence are dropped as flicker. Tracks keep the people without their
masks: per person only the small appearance descriptor survives the frame, so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.appearance import appearance_descriptor, appearance_distance
from backend.estimators.base import PersonEstimate

_REJECT = 1e6  # cost standing for "impossible" inside the assignment
_MAX_COVERED = 0.2  # a box covered more than this by a nearer person's box gives no appearance cue


@dataclass
class Track:
    track_id: int
    frames: list[int] = field(default_factory=list)
    people: list[PersonEstimate] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))  # metres per frame
    appearance: np.ndarray | None = None  # running mean descriptor
    betas: np.ndarray | None = None  # running mean shape
    closed: bool = False  # ended by a shot cut

    @property
    def last(self) -> PersonEstimate:
        return self.people[-1]

    def predicted_root(self, frame: int, max_extrapolation: int) -> np.ndarray:
        """Constant-velocity prediction, extrapolated over at most ``max_extrapolation`` frames."""
        gap = min(frame - self.frames[-1], max_extrapolation)
        return _root(self.last) + self.velocity * gap


@dataclass
class TrackerSettings:
    max_gap: int = 45  # frames a track may go unseen and still be re-identified (1.5 s at 30 fps)
    gate_distance: float = 0.7  # metres between prediction and detection allowed right after a sighting
    gate_growth: float = 0.12  # metres the gate widens per further frame of gap
    gate_max: float = 3.0  # widest gate, metres
    depth_weight: float = 0.35  # depth differences count this much relative to lateral ones
    max_extrapolation: int = 10  # frames the velocity is extrapolated over
    velocity_smoothing: float = 0.85  # weight of the old velocity in its running update
    appearance_gate: float = 0.65  # appearance distance above which two observations are different people
    weights: tuple[float, float, float, float] = (1.0, 0.5, 0.3, 1.0)  # motion, box, shape, appearance
    max_cost: float = 2.0  # assignments costlier than this start a new track instead
    gap_penalty: float = 0.01  # per frame of gap: recently seen tracks win ties
    min_length: int = 5  # clips only: shorter tracks are dropped as flicker
    min_confidence: float = 0.2  # clips only: tracks with a lower mean confidence are dropped

    @classmethod
    def for_fps(cls, fps: float, reidentify_s: float = 1.5) -> "TrackerSettings":
        """Settings whose re-identification window is ``reidentify_s`` seconds of footage at ``fps``."""
        settings = cls()
        if fps > 0:
            settings.max_gap = max(1, round(reidentify_s * fps))
        return settings


class Tracker:
    """Feed frames in order with :meth:`update` (and :meth:`cut` at shot cuts); read :meth:`finished_tracks`."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[Track] = []
        self._next_id = 0

    def cut(self) -> None:
        """A shot cut: every track ends here; people after it get new tracks."""
        for track in self._tracks:
            track.closed = True

    def update(self, frame: int, people: list[PersonEstimate], image: np.ndarray | None = None) -> None:
        """Assign ``people`` of ``frame`` to tracks. ``image`` (RGB) gives appearance cues; masks are dropped."""
        descriptors = [_descriptor(image, person, people) for person in people]
        people = [dataclasses.replace(person, mask=None) for person in people]
        live = [t for t in self._tracks if not t.closed and frame - t.frames[-1] <= self.settings.max_gap]
        costs = self._costs(live, people, descriptors, frame)
        matched: set[int] = set()
        if costs.size:
            for row, col in zip(*linear_sum_assignment(costs)):
                if costs[row, col] <= self.settings.max_cost:
                    self._extend(live[row], frame, people[col], descriptors[col])
                    matched.add(int(col))
        for index, person in enumerate(people):
            if index not in matched:
                track = Track(self._next_id)
                self._next_id += 1
                self._extend(track, frame, person, descriptors[index])
                self._tracks.append(track)

    def finished_tracks(self, is_clip: bool) -> list[Track]:
        """All tracks in order of appearance, without flicker when the source is a clip, renumbered 0..T-1."""
        keep = [t for t in self._tracks if not is_clip or self._is_solid(t)]
        if is_clip and not keep and self._tracks:
            keep = [max(self._tracks, key=lambda t: len(t.frames))]  # a very short clip still shows someone
        keep.sort(key=lambda t: (t.frames[0], t.track_id))
        for new_id, track in enumerate(keep):
            track.track_id = new_id
        return keep

    def _is_solid(self, track: Track) -> bool:
        confidence = float(np.mean([p.confidence for p in track.people]))
        return len(track.frames) >= self.settings.min_length and confidence >= self.settings.min_confidence

    def _extend(self, track: Track, frame: int, person: PersonEstimate, descriptor: np.ndarray | None) -> None:
        s = self.settings
        if track.people:
            step = (_root(person) - _root(track.last)) / max(frame - track.frames[-1], 1)
            weight = s.velocity_smoothing if len(track.people) > 1 else 0.0
            track.velocity = weight * track.velocity + (1 - weight) * step
        track.frames.append(frame)
        track.people.append(person)
        track.appearance = _running_mean(track.appearance, descriptor, 0.9)
        track.betas = _running_mean(track.betas, np.asarray(person.betas, np.float64), 0.9)

    def _costs(self, live: list[Track], people: list[PersonEstimate], descriptors: list, frame: int) -> np.ndarray:
        costs = np.full((len(live), len(people)), _REJECT)
        for i, track in enumerate(live):
            for j, person in enumerate(people):
                costs[i, j] = self._pair_cost(track, person, descriptors[j], frame)
        return costs

    def _pair_cost(self, track: Track, person: PersonEstimate, descriptor: np.ndarray | None, frame: int) -> float:
        s = self.settings
        gap = frame - track.frames[-1]
        distance = _ray_distance(track.predicted_root(frame, s.max_extrapolation), _root(person), s.depth_weight)
        gate = min(s.gate_distance + s.gate_growth * (gap - 1), s.gate_max)
        looks = appearance_distance(track.appearance, descriptor)
        if distance > gate or (descriptor is not None and track.appearance is not None and looks > s.appearance_gate):
            return _REJECT
        box = 1.0 - _box_iou(track.last.bbox, person.bbox) if gap <= 2 else 0.5
        shape = min(1.0, float(np.linalg.norm(_betas_delta(track.betas, person.betas))) / 3.0)
        w_motion, w_box, w_shape, w_looks = s.weights
        return w_motion * distance / gate + w_box * box + w_shape * shape + w_looks * looks + s.gap_penalty * gap


def _ray_distance(a: np.ndarray, b: np.ndarray, depth_weight: float) -> float:
    """Metres across the image (at ``b``'s depth) and, down-weighted, along the viewing ray: monocular errors
    lie mostly along the ray, so the image position is the firmer cue."""
    za, zb = max(a[2], 1e-3), max(b[2], 1e-3)
    lateral = np.linalg.norm(a[:2] / za - b[:2] / zb) * zb
    return float(np.hypot(lateral, depth_weight * (za - zb)))


def _descriptor(image: np.ndarray | None, person: PersonEstimate, others: list[PersonEstimate]) -> np.ndarray | None:
    """Appearance only from a box no possibly nearer person covers much: an occluded box shows the occluder."""
    if image is None or person.bbox is None:
        return None
    behind = 1.1 * float(person.transl[2]) + 0.3  # only people clearly behind (depth is noisy) cannot occlude
    for other in others:
        if other is not person and float(other.transl[2]) < behind and _covered(person.bbox, other.bbox) > _MAX_COVERED:
            return None
    return appearance_descriptor(image, person.bbox, person.mask)


def _covered(box: np.ndarray, other: np.ndarray | None) -> float:
    """Fraction of ``box`` inside ``other``."""
    if other is None:
        return 0.0
    w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(w * h / area) if area > 0 else 0.0


def _running_mean(mean: np.ndarray | None, value: np.ndarray | None, keep: float) -> np.ndarray | None:
    """Exponential running mean; a convex mix of normalised histograms stays normalised."""
    if value is None:
        return mean
    if mean is None or mean.shape != value.shape:
        return np.array(value, np.float64)
    return keep * mean + (1 - keep) * value


def _betas_delta(mean: np.ndarray | None, betas: np.ndarray) -> np.ndarray:
    if mean is None:
        return np.zeros(1)
    size = min(len(mean), len(betas))
    return np.asarray(betas[:size], np.float64) - mean[:size]


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


__all__ = ["Track", "Tracker", "TrackerSettings"]
