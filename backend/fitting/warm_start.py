"""Temporal warm start: which fitted person of the previous frame a new detection should start from.

Matching is by 2D boxes, one-to-one and greedy by distance between box centres measured in units of the larger
box's longer side, with boxes agreeing in size within 1.5x. Boxes of visible landmarks jump by a good part of
their width between video frames (a limb becomes hidden, the camera pans), so IoU would drop many true matches
of tall, thin boxes; a centre distance under half a body size is a stable criterion at 25-60 fps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SIZE_RATIO = 1.5


@dataclass
class Previous:
    """Boxes and fitted parameters of P people; rows with NaN translation carry no warm start."""

    boxes: np.ndarray  # (P, 4) x0, y0, x1, y1 pixels
    poses: np.ndarray  # (P, 24, 3) axis-angle
    betas: np.ndarray  # (P, K)
    transl: np.ndarray  # (P, 3)
    size: tuple[int, int]  # (width, height) of the frames they come from
    ids: np.ndarray | None = None  # (P,) the people finder's index of each person in their frame (default: 0..P-1)

    def __post_init__(self) -> None:
        if self.ids is None:
            self.ids = np.arange(len(self.boxes))

    def rows(self, index: np.ndarray) -> "Previous":
        return Previous(self.boxes[index], self.poses[index], self.betas[index], self.transl[index], self.size,
                        self.ids[index])

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.transl[:, 0])


def from_estimates(people: Sequence, size: tuple[int, int]) -> Previous | None:
    """From PersonEstimate-like objects (``bbox``, ``poses``, ``betas``, ``transl``, ``joints2d``)."""
    if not people:
        return None
    boxes = [p.bbox if p.bbox is not None else np.r_[p.joints2d.min(axis=0), p.joints2d.max(axis=0)] for p in people]
    stack = lambda name: np.stack([getattr(p, name) for p in people]).astype(np.float64)  # noqa: E731
    ids = np.array([p.extras.get("finder_person", k) for k, p in enumerate(people)], np.int64)
    return Previous(np.stack(boxes).astype(np.float64), stack("poses"), stack("betas"), stack("transl"), size, ids)


def box_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) centre distance over the larger box side; infinite when the sizes differ by more than 1.5x."""
    size_a = np.maximum(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1])[:, None]
    size_b = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])[None, :]
    centre_a, centre_b = 0.5 * (a[:, None, :2] + a[:, None, 2:]), 0.5 * (b[None, :, :2] + b[None, :, 2:])
    larger = np.maximum(np.maximum(size_a, size_b), 1.0)
    distance = np.linalg.norm(centre_a - centre_b, axis=-1) / larger
    ratio = larger / np.maximum(np.minimum(size_a, size_b), 1.0)
    return np.where(ratio <= SIZE_RATIO, distance, np.inf)


def assign(cost: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy one-to-one assignment of rows to columns by ascending cost; -1 for rows left unassigned."""
    cost = cost.astype(np.float64).copy()
    assigned = np.full(cost.shape[0], -1)
    for _ in range(min(cost.shape)):
        row, col = np.unravel_index(np.argmin(cost), cost.shape)
        if not cost[row, col] <= threshold:
            break
        assigned[row] = col
        cost[row, :], cost[:, col] = np.inf, np.inf
    return assigned


def match(source: Previous, boxes: np.ndarray, groups: np.ndarray, threshold: float) -> Previous | None:
    """Warm starts for detections (``boxes``, person id ``groups``: hypotheses of one person share it): each
    person takes the nearest previous person; all its hypotheses start from that person's parameters."""
    if len(boxes) == 0 or len(source.boxes) == 0:
        return None
    people = np.unique(groups)
    cost = np.stack([box_distance(boxes[groups == g], source.boxes).min(axis=0) for g in people])
    index = assign(cost, threshold)[np.searchsorted(people, groups)]
    if (index < 0).all():
        return None
    out = source.rows(np.maximum(index, 0))
    out.boxes = boxes.copy()
    out.transl = out.transl.copy()
    out.transl[index < 0] = np.nan
    return out


def followed(source: Previous, det, threshold: float) -> Previous | None:
    """Warm starts by identity: a detection whose ``origin`` is the index of a previous person (the people
    finder followed them) starts from that person; the others are matched by box (:func:`match`) among the
    previous people nobody followed."""
    row_of = {int(i): r for r, i in enumerate(source.ids)}
    origin = np.array([row_of.get(int(o), -1) for o in det.origin], np.int64)  # rows of source
    known = origin >= 0
    known[known] &= source.valid[origin[known]]
    free = np.setdiff1d(np.arange(len(source.boxes)), origin[known])
    unknown = np.flatnonzero(~known)
    by_box = match(source.rows(free), det.boxes[unknown], det.group[unknown], threshold) if len(free) else None
    if not known.any() and by_box is None:
        return None
    n = len(det.boxes)
    out = Previous(det.boxes.copy(), np.zeros((n, *source.poses.shape[1:])), np.zeros((n, source.betas.shape[1])),
                   np.full((n, 3), np.nan), source.size)
    take = origin[known]
    out.poses[known], out.betas[known], out.transl[known] = source.poses[take], source.betas[take], source.transl[take]
    if by_box is not None:
        out.poses[unknown], out.betas[unknown], out.transl[unknown] = by_box.poses, by_box.betas, by_box.transl
    return out


def per_person(init: Previous | None, groups: np.ndarray) -> Previous | None:
    """What the next frame of a chunk starts from: this frame's people (one row each, in the order of their
    group ids, NaN translation where a person has no warm start), carrying the parameters they start from, since
    this frame's own fit is not done yet (the chunk is fitted at once)."""
    if init is None:
        return None
    people, first = np.unique(groups, return_index=True)
    out = init.rows(first)
    out.ids = people
    return out if out.valid.any() else None
