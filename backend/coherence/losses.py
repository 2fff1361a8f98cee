"""The two scene terms of Jiang et al. (CVPR 2020): robust interpenetration (Sec. 3.3) and ordinal depth (3.4)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from backend.coherence.fields import LazyField, PenetrationField


def geman_mcclure(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """rho(x) = x^2 / (x^2 + sigma^2): bounded, so one heavy collision cannot dominate the translations."""
    return x * x / (x * x + sigma * sigma)


def boxes_overlap(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(P, P) bool: axis-aligned boxes (P, 3) that intersect, diagonal excluded (skips far pairs cheaply)."""
    hit = ((lo[:, None] <= hi[None]) & (lo[None] <= hi[:, None])).all(-1)
    return hit & ~torch.eye(len(lo), dtype=torch.bool, device=lo.device)


def pair_penetration(vertices: Sequence[torch.Tensor], fields: Sequence[PenetrationField | LazyField],
                     shifts: torch.Tensor | None = None,
                     vertex_boxes: tuple[torch.Tensor, torch.Tensor] | None = None
                     ) -> dict[tuple[int, int], torch.Tensor]:
    """P_ij = sum over vertices v of person j of phi_i(v), for pairs whose boxes overlap.

    ``fields[i]`` was built at person i's initial placement; ``shifts[i]`` is how far person i has moved since
    (rigid motion: the field moves with it). ``vertex_boxes``: the corners (P, 3), (P, 3) of ``vertices``' boxes
    when the caller knows them (a rigidly moved mesh's box is its first box moved), else found here.
    """
    lo = torch.stack([f.origin for f in fields]) + (0 if shifts is None else shifts.detach())
    hi = torch.stack([f.upper for f in fields]) + (0 if shifts is None else shifts.detach())
    if vertex_boxes is None:
        vertex_boxes = (torch.stack([v.detach().amin(0) for v in vertices]),
                        torch.stack([v.detach().amax(0) for v in vertices]))
    v_lo, v_hi = vertex_boxes
    hit = ((lo[:, None] <= v_hi[None]) & (v_lo[None] <= hi[:, None])).all(-1)
    hit &= ~torch.eye(len(fields), dtype=torch.bool, device=lo.device)
    out = {}
    for i, j in torch.nonzero(hit).tolist():
        shift = None if shifts is None else shifts[i]
        out[(i, j)] = fields[i].sample(vertices[j], shift).sum()
    return out


def interpenetration_loss(vertices: Sequence[torch.Tensor], fields: Sequence[PenetrationField | LazyField],
                          shifts: torch.Tensor | None = None, sigma: float = 1.0,
                          vertex_boxes: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """L_P = sum_j rho(sum_{i != j} P_ij) (Jiang et al. Eq. 3)."""
    per_person: dict[int, torch.Tensor] = {}
    for (_, j), value in pair_penetration(vertices, fields, shifts, vertex_boxes).items():
        per_person[j] = per_person.get(j, 0) + value
    if not per_person:
        return vertices[0].new_zeros(()) if len(vertices) else torch.zeros(())
    return sum(geman_mcclure(v, sigma) for v in per_person.values())


def observed_index_map(masks: Sequence[np.ndarray | None], height: int, width: int) -> np.ndarray:
    """Instance index per pixel (-1 background or ambiguous) from per-person masks, resized to (height, width).

    A pixel claimed by two masks says nothing reliable about which of them is in front, so it is ignored.
    """
    import cv2

    count = np.zeros((height, width), dtype=np.int32)
    index = np.full((height, width), -1, dtype=np.int64)
    for i, mask in enumerate(masks):
        if mask is None:
            continue
        m = cv2.resize(np.asarray(mask, dtype=np.float32), (width, height), interpolation=cv2.INTER_AREA) > 0.5
        count += m
        index[m] = i
    index[count > 1] = -1
    return index


def disagreement_pairs(rendered: torch.Tensor, observed: torch.Tensor, covered: torch.Tensor,
                       min_pixels: int = 4, min_fraction: float = 0.08, touch_radius: int = 2
                       ) -> list[tuple[int, int]]:
    """Ordered pairs (front, back) whose rendered order the masks contradict, with enough evidence.

    Pixel disagreements alone are mostly misalignment (a limb of the nearer person drawn over the visible
    edge of the farther one), so a pair also needs: where both are rendered, ``front`` is observed at least
    twice as often as ``back`` and on at least ``min_fraction`` of the smaller silhouette; and the two masks
    touch (someone hidden behind another person has a visible part bordering the occluder's mask).
    """
    wrong = (observed >= 0) & (rendered >= 0) & (observed != rendered)
    rows, cols = torch.meshgrid(torch.arange(observed.shape[0], device=observed.device),
                                torch.arange(observed.shape[1], device=observed.device), indexing="ij")
    wrong &= covered[observed.clamp(min=0), rows, cols]
    if not bool(wrong.any()):
        return []
    pairs = torch.stack([observed[wrong], rendered[wrong]], 1)
    unique, counts = torch.unique(pairs, dim=0, return_counts=True)
    area = covered.sum((1, 2))
    out = []
    for (front, back), n in zip(unique.tolist(), counts.tolist()):
        both = covered[front] & covered[back]
        seen_front, seen_back = int((both & (observed == front)).sum()), int((both & (observed == back)).sum())
        if (n >= min_pixels and seen_front >= 2 * seen_back
                and seen_front >= min_fraction * int(torch.minimum(area[front], area[back]))
                and _touching(observed == front, observed == back, touch_radius) >= min_pixels):
            out.append((front, back))
    return out


def _touching(a: torch.Tensor, b: torch.Tensor, radius: int) -> int:
    """Pixels of mask ``b`` within ``radius`` pixels (Chebyshev) of mask ``a``."""
    grown = torch.nn.functional.max_pool2d(a[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0]
    return int((grown.bool() & b).sum())


def order_excess(depth: torch.Tensor, observed: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> float:
    """How far (summed over the (front, back) pairs drawn in the wrong order) the front person is drawn behind
    the back one, on average over the pixels where the front one is observed; 0: every order is right."""
    total = 0.0
    for front, back in pairs:
        sel = (observed == front) & torch.isfinite(depth[front]) & torch.isfinite(depth[back])
        if bool(sel.any()):
            gap = float((depth[front][sel] - depth[back][sel]).mean())
            total += gap if gap >= 0 else 0.0
    return total


def ordinal_depth_loss(depth: torch.Tensor, observed: torch.Tensor, pairs: Sequence[tuple[int, int]],
                       temperature: float = 1.0) -> torch.Tensor:
    """Over pixels p, log(1 + exp((D_front(p) - D_back(p)) / temperature)) for each (front, back) pair.

    The pixels are those where ``front`` is observed and both people are rendered: the ranking loss of
    Jiang et al. (Eq. 4) with gradients to both people's depths, the hidden one included. It is averaged per
    pair (the paper sums pixels) so the push does not depend on the render resolution or the overlap area.
    Callers keep a pair once it has disagreed, so the order is pushed past the tie rather than to it;
    ``temperature`` (m) sets how far (the paper's loss is temperature = 1 m).
    """
    total = depth.new_zeros(())
    for front, back in pairs:
        sel = (observed == front) & torch.isfinite(depth[front].detach()) & torch.isfinite(depth[back].detach())
        if bool(sel.any()):
            diff = (depth[front][sel] - depth[back][sel]) / temperature
            total = total + torch.nn.functional.softplus(diff).mean()
    return total
