"""Identities across frames: each frame's people are assigned to tracks by global (Hungarian) assignments.

Motion is a per-track Kalman filter (constant velocity) on where the person is in the image (``x/z``, ``y/z``)
and on the log of their depth: the image position of a monocular estimate is firm, its depth is not, and a
relative (log) depth error is about the same near and far. The filter's innovation gives a Mahalanobis
distance, so the gate widens exactly as much as the track has become uncertain (gaps, fast turns) and every
cue is expressed in the same unit, negative log-likelihood ("nats"):

- motion: half the squared Mahalanobis distance; beyond ``gate_chi2`` the pair is impossible;
- appearance: colour histograms (``backend.tracking.appearance``) against the track's appearance model, a *soft* cost
  only. The model is learned only from confident, unoccluded, unambiguous matches, so a wrong match made
  while two people overlap is neither locked in nor learned from;
- body shape: distance of the shape coefficients from the track's running mean;
- a small penalty per frame of gap, so recently seen tracks win ties;
- continuity: an estimator that followed a person from the previous frame says so (``extras["follows"]``, the
  index ``extras["finder_person"]`` the person had there); the pair with that track's last person costs
  ``follow_bonus`` less, and its colours may only agree (a followed player beside others in the same kit
  was given to a look-alike's track).

Matching runs in stages, as in ByteTrack: confirmed tracks take the confident detections first, then the
doubtful ones; only what is left goes to tentative tracks (fewer than ``confirm_hits`` sightings), and what is
still left starts new tentative tracks. A one-frame false detection therefore cannot take a real person away
from their track. Each stage is a Hungarian assignment in which leaving a track or a person unmatched costs
``max_cost / 2`` each, so a pair is only matched when that is cheaper than a new track.

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

from backend.estimators.base import PersonEstimate
from backend.tracking.appearance import appearance_descriptor, appearance_distance

_REJECT = 1e6  # cost standing for "impossible" inside the assignment
_BODY_HEIGHT = 1.7  # metres: image-position noise is expressed as a fraction of the body's height in the image


@dataclass
class TrackerSettings:
    max_gap: int = 45  # frames a track may go unseen and still be re-identified (1.5 s at 30 fps)
    # Kalman filter on (x/z, y/z, log z); image terms are fractions of the body's height in the image.
    position_noise: float = 0.06  # measurement noise of the image position (fitted roots jitter, tails are long)
    depth_noise: float = 0.15  # measurement noise of log depth (15 % depth jitter)
    acceleration: float = 0.03  # process noise: change of image velocity per frame
    pan_acceleration: float = 0.002  # process noise in normalised image units (camera pans, any distance)
    depth_acceleration: float = 0.01  # process noise of the log-depth velocity per frame
    wander: float = 0.03  # position random walk per frame once the velocity is no longer extrapolated
    max_extrapolation: int = 10  # frames the velocity is extrapolated over
    gate_chi2: float = 25.0  # squared Mahalanobis distance beyond which a pair is impossible
    # Costs in nats.
    appearance_weight: float = 12.0  # per unit of appearance distance beyond that of the same person
    appearance_same: float = 0.15  # typical distance between two views of the same person
    shape_weight: float = 1.0
    gap_penalty: float = 0.05  # per frame of gap
    follow_bonus: float = 5.0  # the estimator followed this person from the track's last frame
    max_cost: float = 10.0  # a pair costlier than this is two people (a new track and a missed one)
    # Track management.
    high_confidence: float = 0.5  # detections below are matched only after the confident ones
    confirm_hits: int = 3  # sightings until a track is confirmed and competes for people first
    tentative_gap: int = 3  # frames a tentative track may go unseen before it is given up
    appearance_keep: float = 0.9  # weight of the old appearance model in its running update
    min_length: int = 5  # clips only: shorter tracks are dropped as flicker (in a shorter clip: half of it)
    min_confidence: float = 0.2  # clips only: tracks with a lower mean confidence are dropped

    @classmethod
    def for_fps(cls, fps: float, reidentify_s: float = 1.5) -> "TrackerSettings":
        """Settings whose re-identification window is ``reidentify_s`` seconds of footage at ``fps``."""
        settings = cls()
        if fps > 0:
            settings.max_gap = max(1, round(reidentify_s * fps))
        return settings


@dataclass
class Track:
    track_id: int
    frames: list[int] = field(default_factory=list)
    people: list[PersonEstimate] = field(default_factory=list)
    state: np.ndarray | None = None  # (6,) Kalman state: x/z, y/z, log z and their velocities per frame
    covariance: np.ndarray | None = None  # (6, 6)
    appearance: np.ndarray | None = None  # appearance model: running mean of trusted descriptors
    betas: np.ndarray | None = None  # running mean shape
    confirmed: bool = False
    closed: bool = False  # ended by a shot cut, or a tentative track given up

    @property
    def last(self) -> PersonEstimate:
        return self.people[-1]


@dataclass
class _Prediction:
    """A track's Kalman prediction for the current frame."""

    track: Track
    gap: int
    mean: np.ndarray  # (3,) predicted measurement
    covariance: np.ndarray  # (3, 3) predicted measurement covariance without the measurement noise


@dataclass
class _Detection:
    person: PersonEstimate
    descriptor: np.ndarray | None
    measurement: np.ndarray  # (3,) x/z, y/z, log z
    noise: np.ndarray  # (3, 3) measurement covariance


class Tracker:
    """Feed frames in order with :meth:`update` (and :meth:`cut` at shot cuts); read :meth:`finished_tracks`."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[Track] = []
        self._next_id = 0
        self._frames_fed = 0

    def cut(self) -> None:
        """A shot cut: every track ends here; people after it get new tracks."""
        for track in self._tracks:
            track.closed = True

    def update(self, frame: int, people: list[PersonEstimate], image: np.ndarray | None = None) -> None:
        """Assign ``people`` of ``frame`` to tracks. ``image`` (RGB) gives appearance cues; masks are dropped."""
        self._frames_fed += 1
        detections = [self._detection(person, image, people) for person in people]
        predictions = [self._predict(track, frame) for track in self._live(frame)]
        confident = [d for d in detections if d.person.confidence >= self.settings.high_confidence]
        doubtful = [d for d in detections if d.person.confidence < self.settings.high_confidence]
        confirmed = [p for p in predictions if p.track.confirmed]
        tentative = [p for p in predictions if not p.track.confirmed]
        matches, confirmed, confident = self._match(confirmed, confident)
        more, _, doubtful = self._match(confirmed, doubtful)
        late, _, unmatched = self._match(tentative, confident + doubtful)
        for prediction, detection in matches + more + late:
            trusted = self._is_unambiguous(prediction, detection, predictions, detections)
            self._extend(prediction.track, frame, detection, learn_appearance=trusted)
        for detection in unmatched:
            self._start(frame, detection)

    def finished_tracks(self, is_clip: bool) -> list[Track]:
        """All tracks in order of appearance, without flicker when the source is a clip, renumbered 0..T-1."""
        keep = [t for t in self._tracks if not is_clip or self._is_solid(t)]
        if is_clip and not keep and self._tracks:
            keep = [max(self._tracks, key=lambda t: len(t.frames))]  # a very short clip still shows someone
        keep.sort(key=lambda t: (t.frames[0], t.track_id))
        for new_id, track in enumerate(keep):
            track.track_id = new_id
        return keep

    # ------------------------------------------------------------------------------------ bookkeeping

    def _live(self, frame: int) -> list[Track]:
        """Tracks that may still be continued; tentative tracks unseen for a while are given up."""
        s = self.settings
        for track in self._tracks:
            if not track.confirmed and frame - track.frames[-1] > s.tentative_gap:
                track.closed = True
        return [t for t in self._tracks if not t.closed and frame - t.frames[-1] <= s.max_gap]

    def _is_solid(self, track: Track) -> bool:
        """Long and confident enough not to be flicker. A clip shorter than twice ``min_length`` asks for half
        its frames, so a two-frame clip keeps everyone seen in either frame, not only its longest track. (Not per
        shot: the one-frame "shots" of a wipe between two long shots are flicker.)"""
        confidence = float(np.mean([p.confidence for p in track.people]))
        needed = min(self.settings.min_length, -(-self._frames_fed // 2))
        return len(track.frames) >= needed and confidence >= self.settings.min_confidence

    def _start(self, frame: int, detection: _Detection) -> None:
        """A new tentative track at the detection, with an unknown velocity."""
        track = Track(self._next_id)
        self._next_id += 1
        track.state = np.concatenate([detection.measurement, np.zeros(3)])
        velocity_spread = _body_scale(detection.measurement) * np.array([0.05, 0.05, 0.0]) + [0.01, 0.01, 0.02]
        track.covariance = np.diag(np.concatenate([np.diag(detection.noise), velocity_spread**2]))
        self._record(track, frame, detection, learn_appearance=True)
        self._tracks.append(track)

    def _extend(self, track: Track, frame: int, detection: _Detection, learn_appearance: bool) -> None:
        """Kalman update with the detection, then record it."""
        mean, covariance = _predicted_state(track, frame - track.frames[-1], self.settings)
        gain_denominator = covariance[:3, :3] + detection.noise
        gain = covariance[:, :3] @ np.linalg.inv(gain_denominator)
        track.state = mean + gain @ (detection.measurement - mean[:3])
        track.covariance = covariance - gain @ covariance[:3, :]
        self._record(track, frame, detection, learn_appearance)

    def _record(self, track: Track, frame: int, detection: _Detection, learn_appearance: bool) -> None:
        track.frames.append(frame)
        track.people.append(detection.person)
        track.confirmed = track.confirmed or len(track.frames) >= self.settings.confirm_hits
        if learn_appearance or track.appearance is None:
            track.appearance = _running_mean(track.appearance, detection.descriptor, self.settings.appearance_keep)
        track.betas = _running_mean(track.betas, np.asarray(detection.person.betas, np.float64), 0.9)

    # ------------------------------------------------------------------------------------ measurements

    def _detection(self, person: PersonEstimate, image: np.ndarray | None, people: list) -> _Detection:
        """The person without their mask, their appearance descriptor, Kalman measurement and its noise."""
        s = self.settings
        descriptor = _descriptor(image, person, people)
        root = np.asarray(person.transl, np.float64)
        depth = max(float(root[2]), 1e-3)
        measurement = np.array([root[0] / depth, root[1] / depth, np.log(depth)])
        position = s.position_noise * _body_scale(measurement)
        noise = np.diag([position**2, position**2, s.depth_noise**2])
        return _Detection(dataclasses.replace(person, mask=None), descriptor, measurement, noise)

    def _predict(self, track: Track, frame: int) -> _Prediction:
        gap = frame - track.frames[-1]
        mean, covariance = _predicted_state(track, gap, self.settings)
        return _Prediction(track, gap, mean[:3], covariance[:3, :3])

    # ------------------------------------------------------------------------------------ matching

    def _match(self, predictions: list[_Prediction], detections: list[_Detection]):
        """Min-cost assignment where leaving either side unmatched costs ``max_cost / 2``.

        Returns the matched (prediction, detection) pairs, the unmatched predictions, the unmatched detections.
        """
        if not predictions or not detections:
            return [], predictions, detections
        costs = np.array([[self._pair_cost(p, d) for d in detections] for p in predictions])
        rows, cols = _assign(costs, self.settings.max_cost)
        pairs = [(predictions[r], detections[c]) for r, c in zip(rows, cols)]
        left_p = [p for i, p in enumerate(predictions) if i not in set(rows)]
        left_d = [d for j, d in enumerate(detections) if j not in set(cols)]
        return pairs, left_p, left_d

    def _pair_cost(self, prediction: _Prediction, detection: _Detection) -> float:
        s = self.settings
        distance2 = self._mahalanobis2(prediction, detection)
        if distance2 > s.gate_chi2:
            return _REJECT
        looks = 0.0
        if detection.descriptor is not None and prediction.track.appearance is not None:
            looks = appearance_distance(prediction.track.appearance, detection.descriptor) - s.appearance_same
        followed = _followed(prediction, detection)
        if followed:  # the finder read this person in the crop of the track's last one: colours may only agree
            looks = min(looks, 0.0)
        shape = min(1.0, float(np.linalg.norm(_betas_delta(prediction.track.betas, detection.person.betas))) / 3.0)
        cost = 0.5 * distance2 + s.appearance_weight * looks + s.shape_weight * shape + s.gap_penalty * prediction.gap
        return cost - s.follow_bonus * followed

    @staticmethod
    def _mahalanobis2(prediction: _Prediction, detection: _Detection) -> float:
        innovation = detection.measurement - prediction.mean
        return float(innovation @ np.linalg.solve(prediction.covariance + detection.noise, innovation))

    def _is_unambiguous(self, prediction: _Prediction, detection: _Detection, predictions, detections) -> bool:
        """Whether the match may teach the track's appearance model: a confident, unoccluded detection that
        no other person of this frame could be (for this track) and that no other recent track could claim."""
        s = self.settings
        if detection.descriptor is None or detection.person.confidence < s.high_confidence:
            return False
        for other in detections:
            if other is not detection and self._mahalanobis2(prediction, other) <= s.gate_chi2:
                return False
        for other in predictions:
            if other is not prediction and other.gap <= s.tentative_gap:
                if self._mahalanobis2(other, detection) <= s.gate_chi2:
                    return False
        return True


def _followed(prediction: _Prediction, detection: _Detection) -> bool:
    """The estimator says it followed this detection's person from the track's last frame (the frame before)."""
    follows = detection.person.extras.get("follows", -1)
    last = prediction.track.last.extras.get("finder_person")
    return prediction.gap == 1 and follows >= 0 and follows == last


def _assign(costs: np.ndarray, max_cost: float) -> tuple[list[int], list[int]]:
    """Hungarian assignment of ``costs`` extended by 'unmatched' options of ``max_cost / 2`` per row and column."""
    n, m = costs.shape
    extended = np.full((n + m, m + n), _REJECT)
    extended[:n, :m] = costs
    extended[np.arange(n), m + np.arange(n)] = max_cost / 2  # track left unmatched
    extended[n + np.arange(m), np.arange(m)] = max_cost / 2  # person left unmatched
    extended[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(extended)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if r < n and c < m and costs[r, c] < max_cost]
    return [r for r, _ in pairs], [c for _, c in pairs]


def _predicted_state(track: Track, gap: int, s: TrackerSettings) -> tuple[np.ndarray, np.ndarray]:
    """Kalman prediction ``gap`` frames ahead: constant velocity over at most ``max_extrapolation`` frames,
    then a random walk (people turn and stop; a velocity extrapolated for a second misleads)."""
    mean, covariance = track.state.copy(), track.covariance.copy()
    scale = _body_scale(mean)
    accel = np.array([s.acceleration * scale + s.pan_acceleration] * 2 + [s.depth_acceleration])
    wander = np.array([s.wander * scale] * 2 + [s.depth_acceleration])
    moving = np.eye(6)
    moving[:3, 3:] = np.eye(3)
    for step in range(gap):
        if step < s.max_extrapolation:
            mean = moving @ mean
            covariance = moving @ covariance @ moving.T + _white_acceleration(accel)
        else:
            covariance[:3, :3] += np.diag(wander**2)
    return mean, covariance


def _body_scale(measurement: np.ndarray) -> float:
    """The height of a body at this depth in normalised image units (x/z)."""
    return _BODY_HEIGHT / float(np.exp(measurement[2]))


def _white_acceleration(sigma: np.ndarray) -> np.ndarray:
    """Process noise of a constant-velocity model driven by white acceleration of ``sigma`` per axis."""
    q = np.zeros((6, 6))
    variance = np.diag(sigma**2)
    q[:3, :3], q[:3, 3:], q[3:, :3], q[3:, 3:] = variance / 4, variance / 2, variance / 2, variance
    return q


def _descriptor(image: np.ndarray | None, person: PersonEstimate, others: list[PersonEstimate]) -> np.ndarray | None:
    """Appearance from the part of the box no other person's box covers: overlapping pixels show whoever is in
    front, and monocular depth cannot say reliably who that is."""
    if image is None or person.bbox is None:
        return None
    exclude = [other.bbox for other in others if other is not person]
    return appearance_descriptor(image, person.bbox, person.mask, exclude)


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


__all__ = ["Track", "Tracker", "TrackerSettings"]
