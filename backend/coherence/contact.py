"""Foot-contact depth order: of people standing below the camera, the one whose feet meet the ground lower in
the image is nearer.

A ground point at depth Z, a height h below a camera without roll, is drawn fy h / Z rows below the horizon
(pitch only moves the horizon). People standing on ground at similar heights below the camera are therefore
ordered in depth by the image rows of their contact points: lower, nearer. This orders people whose silhouettes
never overlap, which the mask-based ordinal loss cannot, and it needs no fitted floor: ground that rises away
from the camera (steps up a street, a slope) keeps the order, where a single fitted plane misreads it.

Where a person meets the ground is what the detector saw (``detected_contact_row``): the lowest point of the
body's own planted foot, moved by how far the detected leg keypoints sit from the body's drawn joints. The
body's drawing alone is not evidence: a depth error redraws it. Estimates without keypoints fall back on the
bottom of the instance mask where it shows the feet. A person whose feet are hidden still bounds its contact
(``lowest_seen_row``): the feet are at least as low as what is seen, so someone cut by the bottom of
the picture is nearer than everyone standing in view.

It is used as an order with margins, never as a depth: a pair is ordered only when the rows differ by more
than lifted feet or keypoint noise explain, only among upright people under a camera with little roll and
above their feet, and only when the estimates' own order contradicts it by less than ``max_depth_ratio`` (more
is a person on a bench or a mis-detection, not a depth error). The refinement restores a violated order just
beyond a margin, keeps pairs in order from crossing, and lets occlusion seen in the masks overrule it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.geometry.camera import Camera

SPINE = (0, 12)  # pelvis -> neck: a person's up direction
# (detected keypoint, SMPL joint) pairs down the left and the right leg (hip, knee, ankle, foot), per
# ``extras["keypoint_layout"]``; MediaPipe's toe tips stand in for SMPL's balls of the feet
LEG_KEYPOINTS = {
    "mediapipe33": (((23, 1), (25, 4), (27, 7), (31, 10)), ((24, 2), (26, 5), (28, 8), (32, 11))),
    "smpl24": (((1, 1), (4, 4), (7, 7), (10, 10)), ((2, 2), (5, 5), (8, 8), (11, 11))),
}


@dataclass(frozen=True)
class ContactGate:
    """Which contacts and pairs the order trusts."""

    mask_agreement: float = 0.08  # mask bottom vs the body's own sole row, in pelvis-to-sole heights
    max_lean_degrees: float = 35.0  # a person's spine vs the people's mean up direction: upright people only
    max_roll_degrees: float = 8.0  # the people's mean up direction vs the picture's vertical
    min_camera_height: float = 0.5  # metres: the soles must be this far below the camera
    row_margin: float = 0.025  # contact rows must differ by this fraction of the pair's mean body height ...
    min_row_margin_px: float = 3.0  # ... and by at least this many pixels
    max_depth_ratio: float = 1.6  # an order contradicted by more than this is not a depth error
    min_visibility: float = 0.5  # detected foot keypoints below this are not seen
    max_spread_px: float = 6.0  # a leg's two lowest keypoints that disagree more than this (plus the scale
    # error below over the distance between them) about where the leg is: unusable
    scale_error: float = 0.15  # relative size error of an estimate's drawing: extrapolating from a keypoint
    # to the sole is uncertain by this fraction of the drawn distance
    lifted_foot: float = 0.03  # of the body's drawn height: a foot drawn this far above the other is lifted


def foot_vertices(skin_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the vertices that move mostly with the left and the right foot (ankle and foot joints)."""
    owner = skin_weights.argmax(1)
    return tuple(torch.nonzero((owner == j0) | (owner == j1))[:, 0] for j0, j1 in ((7, 10), (8, 11)))


def detected_contact_row(extras: dict, joints2d: np.ndarray, vertices2d: np.ndarray,
                         feet: tuple[torch.Tensor, torch.Tensor], gate: ContactGate | None = None
                         ) -> tuple[float, float] | None:
    """Image row where the detector saw the person's feet meet the ground, and its uncertainty in pixels:
    NaNs when its keypoints saw no usable leg, None when the estimate has no keypoints at all.

    Each leg whose two lowest keypoints (``extras["keypoints2d"]``, ``["keypoint_visibility"]``, layout
    ``["keypoint_layout"]``: see ``LEG_KEYPOINTS``) were seen, and agree, gives the lowest drawn point of the
    body's own foot (``vertices2d`` (V, 2), ``feet``: ``foot_vertices``) moved by how far those keypoints sit
    from the body's drawn joints (``joints2d``); the further the sole is from them, the less certain. The lower
    leg is the one on the ground; a leg the body lifts says nothing about it.
    """
    gate = gate or ContactGate()
    layout = _leg_layout(extras)
    keypoints, visibility = extras.get("keypoints2d"), extras.get("keypoint_visibility")
    if layout is None or keypoints is None or visibility is None:
        return None
    soles = [float(vertices2d[ids.cpu().numpy(), 1].max()) for ids in feet]
    height = float(np.ptp(vertices2d[:, 1]))
    best = (float("nan"), float("nan"))
    for leg, sole in zip(layout, soles):
        if max(soles) - sole > gate.lifted_foot * height:
            continue  # the body lifts this foot: the foot on the ground was not seen
        seen = [(float(keypoints[k][1]) - float(joints2d[j][1]), float(joints2d[j][1]))
                for k, j in reversed(leg) if _seen(keypoints, visibility, k, gate)][:2]
        if len(seen) < 2:
            continue
        (low_shift, low_row), (high_shift, high_row) = seen
        if abs(low_shift - high_shift) > gate.max_spread_px + gate.scale_error * abs(low_row - high_row):
            continue
        row = sole + 0.5 * (low_shift + high_shift)
        uncertainty = gate.scale_error * max(sole - low_row, 0.0)
        if np.isnan(best[0]) or row > best[0]:
            best = (row, uncertainty)
    return best


def lowest_seen_row(extras: dict, joints2d: np.ndarray | None = None, vertices2d: np.ndarray | None = None,
                    feet: tuple[torch.Tensor, torch.Tensor] | None = None, gate: ContactGate | None = None) -> float:
    """A row the person's feet are at least as low as (NaN: unknown), from the detected keypoints.

    Every keypoint seen bounds it by its own row; a leg keypoint, with the body (``joints2d``, ``vertices2d``,
    ``feet`` as for ``detected_contact_row``), by its row plus the drawn distance from that joint down to the
    foot shrunk by twice ``scale_error`` (the drawing may be that much too large). The second-largest bound is
    returned, so that one stray keypoint cannot claim the person is nearer.
    """
    gate = gate or ContactGate()
    keypoints, visibility = extras.get("keypoints2d"), extras.get("keypoint_visibility")
    if keypoints is None or visibility is None:
        return float("nan")
    bounds = {k: float(keypoints[k][1]) for k in range(len(keypoints)) if _seen(keypoints, visibility, k, gate)}
    layout = _leg_layout(extras)
    if layout is not None and joints2d is not None and vertices2d is not None and feet is not None:
        shrink = max(1.0 - 2.0 * gate.scale_error, 0.0)
        for leg, ids in zip(layout, feet):
            sole = float(vertices2d[ids.cpu().numpy(), 1].max())
            for k, j in leg:
                if k in bounds:
                    bounds[k] += shrink * max(sole - float(joints2d[j][1]), 0.0)
    rows = sorted(bounds.values())
    return rows[-2] if len(rows) >= 2 else float("nan")


def _leg_layout(extras: dict) -> tuple | None:
    """The leg keypoints of the estimate's layout, or None when unknown or when its arrays are too short for it
    (keypoints from some other detector must not index past their end)."""
    layout = LEG_KEYPOINTS.get(extras.get("keypoint_layout", ""))
    needed = 1 + max(k for leg in layout for k, _ in leg) if layout is not None else 0
    arrays = (extras.get("keypoints2d"), extras.get("keypoint_visibility"))
    if layout is None or any(a is None or len(a) < needed for a in arrays):
        return None
    return layout


def _seen(keypoints, visibility, k: int, gate: ContactGate) -> bool:
    return float(visibility[k]) >= gate.min_visibility and bool(np.isfinite(keypoints[k]).all())


def contact_order(joints: torch.Tensor, vertices: torch.Tensor, camera: Camera,
                  masks: list[np.ndarray | None] | None,
                  detected: list[tuple[float, float] | None] | None = None,
                  seen_rows: list[float] | None = None, gate: ContactGate | None = None) -> list[tuple[int, int]]:
    """Pairs ``(near, far)`` of one frame's people that their contact rows order.

    ``joints`` (N, 24, 3), ``vertices`` (N, V, 3) in camera axes (y down); ``masks``: full-resolution instance
    masks (None where unknown); ``detected``: per person, ``detected_contact_row``; the bottom of the
    mask is the contact only for people without keypoints (None): keypoints know when the feet are hidden, a
    mask cut short by an occluder does not; ``seen_rows``: ``lowest_seen_row``.

    Where a person's contact is hidden, its lowest visible pixel still bounds it: the feet are at least that
    low, so the person is nearer than anyone whose contact is seen clearly higher (people cut by the bottom
    edge of the picture are nearer than everyone standing in view).
    """
    gate = gate or ContactGate()
    n = joints.shape[0]
    masks = list(masks) if masks is not None else [None] * n
    detected = list(detected) if detected is not None else [None] * n
    if n < 2:
        return []
    joints, vertices = joints.double(), vertices.double()
    down = _mean_down(joints, gate)
    if down is None:
        return []
    owner = instance_owner(masks, camera) if any(m is not None for m in masks) else None
    exact = torch.full((n,), float("nan"), dtype=torch.float64)
    at_least, heights, uncertainty = exact.clone(), torch.zeros_like(exact), torch.zeros_like(exact)
    seen_rows = list(seen_rows) if seen_rows is not None else [float("nan")] * n
    for k in range(n):
        sole = vertices[k, bottom_vertex(vertices[k], camera)]
        if float(sole @ down) < gate.min_camera_height or not _upright(joints[k], down, gate):
            continue
        mask = None if masks[k] is None else np.asarray(masks[k]) > 0.5
        mask = mask if mask is not None and mask.shape == (camera.height, camera.width) else None
        row, spread = (float("nan"), 0.0) if detected[k] is None else detected[k]
        row = row if row < camera.height - 2 else float("nan")
        uncertainty[k] = spread if np.isfinite(row) else 0.0
        if detected[k] is None and mask is not None:
            contact = mask_contact(mask, vertices[k], joints[k, 0], camera, owner, k, gate.mask_agreement)
            row = float("nan") if contact is None else contact[1]
        bottom = float(np.nonzero(mask.any(1))[0].max()) + 1.0 if mask is not None and mask.any() else float("nan")
        exact[k], at_least[k] = row, np.nanmax([row, seen_rows[k], bottom, -np.inf])
        heights[k] = _pixel_height(vertices[k], camera)
    return _ordered_pairs(exact, at_least, heights, uncertainty, joints[:, 0, 2], gate)


def _spine(joints: torch.Tensor) -> torch.Tensor:
    up = joints[..., SPINE[1], :] - joints[..., SPINE[0], :]
    return up / up.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def _mean_down(joints: torch.Tensor, gate: ContactGate) -> torch.Tensor | None:
    """The people's mean down direction; None when the camera looks rolled or steeply up or down at them.
    People more than 60 degrees off the picture's vertical (lying, or a failed fit) do not count."""
    spines = _spine(joints)
    spines = spines[-spines[:, 1] >= np.cos(np.radians(60.0))]  # camera axes: up is -y
    if len(spines) == 0:
        return None
    up = spines.mean(0)
    up = up / up.norm().clamp(min=1e-9)
    if abs(float(np.degrees(np.arctan2(float(up[0]), float(-up[1]))))) > gate.max_roll_degrees:
        return None  # rows are not heights above the ground in a rolled picture
    return -up


def _upright(joints: torch.Tensor, down: torch.Tensor, gate: ContactGate) -> bool:
    """Standing, not sitting, lying or bending: the contact is then the ground under the person."""
    return float(-(_spine(joints) @ down)) >= np.cos(np.radians(gate.max_lean_degrees))


def _pixel_height(vertices: torch.Tensor, camera: Camera) -> float:
    rows = camera.fy * vertices[:, 1] / vertices[:, 2].clamp(min=1e-3)
    return float(rows.max() - rows.min())


def _ordered_pairs(exact: torch.Tensor, at_least: torch.Tensor, heights: torch.Tensor, uncertainty: torch.Tensor,
                   depth: torch.Tensor, gate: ContactGate) -> list[tuple[int, int]]:
    pairs = []
    for a in range(len(exact)):
        for b in range(len(exact)):
            if a == b or not bool(torch.isfinite(at_least[a]) & torch.isfinite(exact[b])):
                continue
            margin = max(gate.min_row_margin_px, gate.row_margin * 0.5 * float(heights[a] + heights[b]))
            margin += float(uncertainty[a] + uncertainty[b])
            if float(at_least[a] - exact[b]) > margin and float(depth[a]) < gate.max_depth_ratio * float(depth[b]):
                pairs.append((a, b))
    return pairs


def instance_owner(masks: list[np.ndarray | None], camera: Camera) -> np.ndarray:
    """Which person's mask covers each pixel (-1: none; the later mask wins where they overlap)."""
    owner = np.full((camera.height, camera.width), -1, dtype=np.int32)
    for k, m in enumerate(masks):
        if m is not None and np.shape(m) == owner.shape:
            owner[np.asarray(m) > 0.5] = k
    return owner


def bottom_vertex(vertices: torch.Tensor, camera: Camera) -> int:
    """The vertex drawn lowest in the image (the bottom of the silhouette)."""
    rows = camera.fy * vertices[:, 1] / vertices[:, 2].clamp(min=1e-3)
    return int(rows.argmax())


def mask_contact(mask: np.ndarray, vertices: torch.Tensor, pelvis: torch.Tensor, camera: Camera,
                 owner: np.ndarray | None, k: int, agreement: float) -> tuple[float, float] | None:
    """The image point (u, v) where person ``k``'s mask shows its feet meeting the ground, or None when the mask
    does not show them: cut by the picture's edge, by another person just below (``owner``: see
    ``instance_owner``), or farther than ``agreement`` pelvis-to-sole heights from where the body's sole is
    drawn (an occluder cuts the legs short)."""
    if mask.shape != (camera.height, camera.width):
        return None
    rows, cols = np.nonzero(mask > 0.5)
    if rows.size == 0:
        return None
    bottom = int(rows.max())
    if bottom >= camera.height - 2:
        return None  # feet at or beyond the bottom edge
    near = rows >= bottom - 1
    sole = vertices[bottom_vertex(vertices, camera)]
    v_sole = float(camera.fy * sole[1] / sole[2] + camera.cy)
    v_pelvis = float(camera.fy * pelvis[1] / pelvis[2] + camera.cy)
    if v_sole - v_pelvis <= 1.0 or abs(bottom + 0.5 - v_sole) > agreement * (v_sole - v_pelvis):
        return None
    if owner is not None:  # another person directly below the feet may hide them
        lo, hi = max(int(cols[near].min()) - 2, 0), min(int(cols[near].max()) + 3, camera.width)
        below = owner[bottom + 1:min(bottom + 4, camera.height), lo:hi]
        if ((below >= 0) & (below != k)).any():
            return None
    return float(cols[near].mean()), bottom + 0.5
