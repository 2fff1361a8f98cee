"""Proposals: regions of an image where one person's body should be, from several sources, grouped per candidate.

* pose detector (BlazePose's): anchors on the head, predicts the hip centre and the body's size and direction;
* face detector (BlazeFace full range): a face gives a body region below it for an upright person of typical
  proportions; it finds people the pose detector misses in groups (shoulder to shoulder, several rows);
* body detector (MoveNet MultiPose, when installed): finds a body by its centre, so people seen from behind,
  jumping, or cut by the top of the frame;
* person detector (NanoDet's COCO person class, when installed): a box around each whole person in any pose or
  view, where MoveNet cannot read a pose (a jump for a header seen from behind, a blurred back in a crowd);
* tracked: the people of a clip's previous frame, at the region their landmarks give.

Proposals whose faces coincide (or, without faces, whose regions do) are one candidate, tried in order of trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from backend.detection import movenet, nanodet
from backend.detection.detectors import ImageDetections
from backend.detection.poses import HEAD_LANDMARKS, PoseDetections

# Body region of an upright adult from a face of width w (face box centre): hip centre 4.5 w below, region side
# 15 w. Measured on standing people whose pose detection and face detection coincide; seated people come out
# smaller, and the second landmark pass re-centres on them.
FACE_TO_HIP = 4.5
FACE_TO_SIDE = 15.0
# Tighter regions (hip offset, side; in face widths) for a face whose first region showed a neighbour or nobody.
FACE_RETRIES = ((3.0, 10.0), (2.5, 8.0))
# Other sides (x the box's longer side) for a person box whose region showed nobody: the landmark model reads a
# jump or a back well only at some scales (measured on jumping players: 1.5 or 1.1 where 1.25 failed).
PERSON_RETRIES = (1.5, 1.1)
PERSON_MIN_SIDE = 0.5
BOX_HEAD_SPAN = 0.35  # a face in this top share of a person box is that person's (see boxed_face)
TRACK_SEARCH_SCALE = 1.5  # a tracked person not found in their region is looked for in one this much larger
TRACK_MIN_SIDE = 0.7  # a tracked person's reading whose region is smaller than this share of theirs is a fragment

TRACKED, LOST, POSE, BODY, PERSON, FACE = 0, 1, 2, 3, 4, 5  # sources, in order of trust
SOURCE_NAMES = ("track", "lost", "pose detector", "body detector", "person detector", "face detector")
FOLLOWED = (TRACKED, LOST)  # people of earlier frames: one candidate each, never merged with one another


@dataclass
class Proposals:
    regions: np.ndarray  # (N, 4) cx, cy, side, rotation (pixels, radians)
    source: np.ndarray  # (N,) one of the sources above
    score: np.ndarray  # (N,)
    face: np.ndarray  # (N, 3) face centre x, y and width; NaN when the proposal has no face
    origin: np.ndarray | None = None  # (N,) tracked (lost) proposals: the person's index among those; else -1

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = np.full(len(self.score), -1, np.int64)

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def select(self, index) -> "Proposals":
        idx = np.asarray(index, dtype=np.int64)
        return Proposals(self.regions[idx], self.source[idx], self.score[idx], self.face[idx], self.origin[idx])

    @classmethod
    def concatenate(cls, parts: Sequence["Proposals"]) -> "Proposals":
        if not parts:
            return cls(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 3)))
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("regions", "source", "score", "face", "origin")))


def from_pose_detector(det: ImageDetections, regions: np.ndarray) -> Proposals:
    """``regions``: from the detections' alignment points. The detector's box is the head's."""
    return Proposals(regions, np.full(len(det), POSE), det.scores, _box_face(det.boxes))


def from_face_detector(det: ImageDetections) -> Proposals:
    face = _box_face(det.boxes)
    regions = np.stack([face[:, 0], face[:, 1] + FACE_TO_HIP * face[:, 2], FACE_TO_SIDE * face[:, 2],
                        np.zeros(len(det))], -1) if len(det) else np.zeros((0, 4))
    return Proposals(regions, np.full(len(det), FACE), det.scores, face)


def from_body_detector(det: movenet.BodyDetections) -> Proposals:
    """The face of a detected body where its nose and both eyes are confident (width: twice the eye distance)."""
    face = np.full((len(det), 3), np.nan)
    seen = det.keypoint_scores[:, :3].min(axis=1) > 0.3
    eyes = np.linalg.norm(det.keypoints[:, 1] - det.keypoints[:, 2], axis=-1)
    face[seen, :2] = det.keypoints[seen, :3].mean(axis=1)
    face[seen, 2] = np.maximum(2.0 * eyes[seen], 4.0)
    return Proposals(movenet.body_regions(det), np.full(len(det), BODY), det.scores, face)


def from_person_detector(det: nanodet.PersonDetections) -> Proposals:
    """A detected person's box, without a face (the detector gives none)."""
    return Proposals(nanodet.person_regions(det), np.full(len(det), PERSON), det.scores,
                     np.full((len(det), 3), np.nan))


def from_tracked(people: PoseDetections, index: np.ndarray | None = None) -> Proposals:
    """The people of the previous frame, with their head as the face, twice: in the region where the landmark
    model saw them (a tight one that kept neighbours out works again), then in the region their landmarks give.
    ``index``: each row's index among the previous frame's people (default: the row's)."""
    n = len(people)
    if n == 0 or people.regions is None:
        return Proposals.concatenate([])
    head = people.keypoints[:, list(HEAD_LANDMARKS)].mean(axis=1)
    ears = np.linalg.norm(people.keypoints[:, 7] - people.keypoints[:, 8], axis=-1)
    width = np.maximum(ears, people.regions[:, 2] / 15.0)
    face = np.concatenate([head, width[:, None]], -1)
    seen = people.regions if people.seen_regions is None else people.seen_regions
    index = np.arange(n) if index is None else np.asarray(index, np.int64)
    return Proposals(np.concatenate([seen, people.regions]), np.full(2 * n, TRACKED),
                     np.tile(people.scores, 2), np.tile(face, (2, 1)), np.tile(index, 2))


def from_lost(people: PoseDetections, first_index: int) -> Proposals:
    """People missing from the last frames, as :func:`from_tracked` where they were last seen (origins from
    ``first_index`` on)."""
    last = from_tracked(people)
    return Proposals(last.regions, np.full(len(last), LOST), last.score, last.face, first_index + last.origin)


def _box_face(boxes: np.ndarray) -> np.ndarray:
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    return np.concatenate([centre, (boxes[:, 2] - boxes[:, 0])[:, None]], -1)


# ---------------------------------------------------------------------------------------------- candidates


@dataclass
class Attempt:
    """One way to look for a candidate: the landmark model on ``region``, ``passes`` times (the second on the
    region the first pass's landmarks give)."""

    region: np.ndarray  # (4,)
    face: np.ndarray  # (3,) where the candidate's head should be; NaN when unknown
    origin: int = -1  # the candidate's index among the followed people (tracked, then lost), else -1
    tracked: bool = False  # the candidate was in the previous frame: weaker evidence keeps following them
    passes: int = 2
    tight: bool = False  # a tighter region under a face: tried only after a neighbour (or nobody) was found
    min_side: float = 0.0  # landmarks whose region is smaller are a fragment (of a boxed or a tracked person)
    boxed: bool = False  # the face it looks under is also at the head of a detected person's box


def candidates(proposals: Proposals, min_region_px: float) -> list[list[int]]:
    """Proposals grouped into candidate people, each group in order of trust (source, then score): proposals
    whose faces (or, without faces, whose regions) coincide. Regions alone would merge neighbours: bodies
    standing shoulder to shoulder share most of their regions."""
    ok = np.flatnonzero(proposals.regions[:, 2] >= min_region_px)
    order = sorted(ok, key=lambda i: (int(proposals.source[i]), -proposals.score[i]))
    groups: list[list[int]] = []
    for i in order:
        owner = next((g for g in groups if _same_candidate(proposals, int(i), g[0])), None)
        if owner is None:
            groups.append([int(i)])
        else:
            owner.append(int(i))
    return groups


def attempts(proposals: Proposals, members: list[int], min_face_px: float, box_scales: int | None = None
             ) -> list[Attempt]:
    """What to try for one candidate, in order: a tracked person one pass in each of their regions (where they
    were, then where their motion puts them), then two in a larger one around the latter (a lost person: only
    in their regions); the regions of its other proposals; tighter regions under its faces (faces of at least
    ``min_face_px``: tighter crops of smaller ones are upsampled blur); last its person boxes, at their own and
    other scales. A box's region is centred on the whole person and, in a group, can show a neighbour's head
    near enough to the candidate's face to pass, so it comes after what a face placed. ``box_scales``: at most
    that many of a box's scales (its own first; None: all)."""
    origin = int(max(proposals.origin[members]))  # a candidate holds at most one followed person
    tracked = [i for i in members if proposals.source[i] == TRACKED]
    lost = [i for i in members if proposals.source[i] == LOST]
    boxes = [i for i in members if proposals.source[i] == PERSON]
    follow = bool(tracked)
    out = [Attempt(proposals.regions[i], proposals.face[i], origin, passes=1, tracked=True) for i in tracked]
    if tracked:
        region = proposals.regions[tracked[-1]]
        out.append(Attempt(np.r_[region[:2], region[2] * TRACK_SEARCH_SCALE, region[3]], proposals.face[tracked[-1]],
                           origin, tracked=True))
    out += [Attempt(proposals.regions[i], proposals.face[i], origin, passes=1) for i in lost]
    # A proposal without a face (a box, a body whose eyes are unsure) looks for the candidate's face where another
    # proposal has one: otherwise a region that shows a neighbour better would be accepted as this candidate.
    faces = [proposals.face[i] for i in members if np.isfinite(proposals.face[i]).all()]
    face = faces[0] if faces else np.full(3, np.nan)
    out += [Attempt(proposals.regions[i], proposals.face[i] if np.isfinite(proposals.face[i]).all() else face,
                    origin, tracked=follow) for i in members if i not in tracked + lost + boxes]
    # A person of the previous frame's last head counts as a face here: one half hidden behind (or in front of) a
    # neighbour is read from a crop where the neighbour sits at the edge. A person lost for longer is looked for
    # only where they were (in a clip these retries were 4 of every 30 landmark runs, for 1 person-frame in 50).
    under = [i for i in members if proposals.source[i] == FACE] + tracked[-1:]
    for hip, side in FACE_RETRIES:
        for i in under:
            x, y, width = proposals.face[i]
            if width >= min_face_px:
                out.append(Attempt(np.array([x, y + hip * width, side * width, 0.0]), proposals.face[i], origin,
                                   tight=True, tracked=follow))
    # From one frame to the next a person's landmark region changes by a few per cent (a zoom, a turn); a reading
    # of a tracked person much smaller than theirs is a fragment: on the dribble clip a player's readings shrank
    # from 467 to 281 px in a frame and slid down onto the legs by the ball while he walked on, found anew.
    shrunk = TRACK_MIN_SIDE * float(proposals.regions[tracked, 2].min()) if tracked else 0.0
    for attempt in out:
        attempt.boxed = not attempt.tracked and boxed_face(attempt.face, proposals)
        attempt.min_side = shrunk
    for scale in (nanodet.REGION_ENLARGE, *PERSON_RETRIES)[:box_scales]:
        for i in boxes:
            region = proposals.regions[i]
            side = region[2] / nanodet.REGION_ENLARGE * scale
            out.append(Attempt(np.r_[region[:2], side, region[3]], face, origin, tracked=follow,
                               min_side=max(_min_side(proposals, i), shrunk)))
    return out


def boxed_face(face: np.ndarray, proposals: Proposals) -> bool:
    """Whether a person box among ``proposals`` has ``face`` (x, y, width) at its head: in the top
    ``BOX_HEAD_SPAN`` of the box, near its middle, of a size a standing, seated or half-hidden person's face has
    in their box. Two detectors that agree on a person are evidence the landmark model's own score may miss (a
    seated man in dark clothes and sunglasses: a clear head and shoulders, but 'a person here' 0.02)."""
    if not np.isfinite(face).all():
        return False
    boxes = proposals.regions[proposals.source == PERSON]
    length = boxes[:, 2] / nanodet.REGION_ENLARGE  # the box's longer side
    below_top = (face[1] - (boxes[:, 1] - 0.5 * length)) / np.maximum(length, 1e-6)
    return bool(np.any((np.abs(face[0] - boxes[:, 0]) < 0.3 * length) & (below_top >= 0.0)
                       & (below_top <= BOX_HEAD_SPAN) & (face[2] >= length / 12.0) & (face[2] <= 0.5 * length)))


def _min_side(proposals: Proposals, i: int) -> float:
    """For a person box: the smallest landmark region that reads the whole boxed person (half the box's), not a
    skeleton squeezed into a corner of it (a player cut by the frame edge read from the few pixels in view)."""
    return PERSON_MIN_SIDE * float(proposals.regions[i, 2]) if proposals.source[i] == PERSON else 0.0


def coincides(p: Proposals, i: int, others: Proposals) -> bool:
    """Whether proposal i of ``p`` is at the same place as one of ``others``."""
    both = Proposals.concatenate([p.select([i]), others])
    return any(_same_place(both, 0, k) for k in range(1, len(both)))


def _same_candidate(p: Proposals, i: int, k: int) -> bool:
    """Two tracked proposals are one candidate exactly when they are the same person; otherwise by place."""
    if p.source[i] in FOLLOWED and p.source[k] in FOLLOWED:
        return p.origin[i] == p.origin[k]
    return _same_place(p, i, k)


def _same_place(p: Proposals, i: int, k: int) -> bool:
    """Faces of similar size at the same place; without faces, nearly the same region."""
    fi, fk = p.face[i], p.face[k]
    if np.isfinite(fi).all() and np.isfinite(fk).all():
        small, large = sorted((fi[2], fk[2]))
        return float(np.linalg.norm(fi[:2] - fk[:2])) < 0.5 * small and large < 1.6 * small
    ri, rk = p.regions[i], p.regions[k]
    close = float(np.linalg.norm(ri[:2] - rk[:2])) < 0.1 * max(ri[2], rk[2])
    return close and max(ri[2], rk[2]) < 1.25 * min(ri[2], rk[2])
