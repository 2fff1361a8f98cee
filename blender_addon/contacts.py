"""Foot contacts, foot planting and the floor, in plain numpy (no bpy).

Monocular reconstruction leaves feet sliding while they should stand still, and leaves the ground unknown (the
camera's tilt, its height). Here: a robust plane through the lowest foot points (the floor); contacts from each
foot's height above that plane and its speed along it, with hysteresis so a contact does not flicker; and a plant
that holds a foot where it stood during each contact, reached by moving the root part of the way and bending the
leg (two-bone IK, solved analytically) for the rest, faded in and out over a few frames so nothing pops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import swing

HIP, KNEE, ANKLE, TOE = {"L": 1, "R": 2}, {"L": 4, "R": 5}, {"L": 7, "R": 8}, {"L": 10, "R": 11}
SIDES = ("L", "R")


@dataclass
class Floor:
    """A plane ``normal . x = offset`` with ``normal`` pointing up (unit)."""

    normal: np.ndarray
    offset: float

    def height(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal - self.offset

    def horizontal(self, vectors: np.ndarray) -> np.ndarray:
        """The part of ``vectors`` (..., 3) along the floor."""
        return vectors - (vectors @ self.normal)[..., None] * self.normal

    def to_ground(self) -> np.ndarray:
        """A rigid 4x4 transform putting the floor on z = 0 with its normal along +Z (turning about the
        smallest angle, so the people keep their heading)."""
        out = np.eye(4)
        out[:3, :3] = swing(self.normal, np.array([0.0, 0.0, 1.0]))
        out[2, 3] = -self.offset
        return out


def fit_floor(points: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0]), iterations: int = 8,
              band: float = 0.05) -> Floor:
    """Robust plane through foot points (m, 3): ``z' = a x' + b y' + c`` in a frame whose z' is ``up``.

    Feet in the air lie above the floor, never below, so each round keeps the points within ``band`` of the plane
    or below it (reweighted least squares, a small ridge on the tilt keeping it near ``up`` when the points barely
    spread). Raises ``ValueError`` with fewer than 3 points.
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        raise ValueError("too few foot points to find a floor")
    frame = swing(np.array([0.0, 0.0, 1.0]), up / np.linalg.norm(up))  # local -> world
    local = points @ frame
    design = np.column_stack([local[:, 0], local[:, 1], np.ones(len(local))])
    ridge = np.diag([1.0, 1.0, 0.0]) * 1e-2 * len(local)
    weights = np.ones(len(local))
    coef = np.zeros(3)
    for _ in range(iterations):
        w = weights[:, None]
        coef = np.linalg.solve(design.T @ (w * design) + ridge, design.T @ (weights * local[:, 2]))
        residual = local[:, 2] - design @ coef
        scale = max(band, 1.4826 * float(np.median(np.abs(residual - np.median(residual)))))
        weights = np.where(residual < scale, 1.0, (scale / np.maximum(residual, 1e-9)) ** 2)
    normal_local = np.array([-coef[0], -coef[1], 1.0])
    norm = np.linalg.norm(normal_local)
    normal = frame @ (normal_local / norm)
    return Floor(normal=normal, offset=float(coef[2] / norm))


def foot_points(joints: np.ndarray, clearance: dict[int, float]) -> dict[str, np.ndarray]:
    """Per side, the point (n, 3) the foot stands on: the lower of ankle and toe joints after each joint's
    height above the sole (``clearance``), along world Z; used to find the floor and the contacts."""
    out = {}
    for side in SIDES:
        ankle = joints[:, ANKLE[side]].copy()
        toe = joints[:, TOE[side]].copy()
        ankle[:, 2] -= clearance[ANKLE[side]]
        toe[:, 2] -= clearance[TOE[side]]
        out[side] = np.where((ankle[:, 2] < toe[:, 2])[:, None], ankle, toe)
    return out


def detect_contacts(heights: np.ndarray, speeds: np.ndarray, *, height_on: float, speed_on: float,
                    min_frames: int = 3, breaks: np.ndarray | None = None) -> np.ndarray:
    """Contact flags (n,) with hysteresis: a contact starts below both ``height_on`` and ``speed_on`` and lasts
    until the foot rises above twice that height or moves faster than twice that speed. Contacts shorter than
    ``min_frames`` are dropped; ``breaks`` (n,) marks frames after a gap in the rows, where no contact carries
    over."""
    contact = np.zeros(len(heights), dtype=bool)
    on = False
    for i, (h, v) in enumerate(zip(heights, speeds, strict=True)):
        if breaks is not None and breaks[i]:
            on = False
        on = (h < 2.0 * height_on and v < 2.0 * speed_on) if on else (h < height_on and v < speed_on)
        contact[i] = on
    for start, end in segments(contact):
        if end - start + 1 < min_frames:
            contact[start:end + 1] = False
    return contact


def segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def plant_offsets(points: np.ndarray, contact: np.ndarray, floor: Floor, blend: int) -> tuple[np.ndarray, np.ndarray]:
    """Along-floor corrections (n, 3) that hold a foot still during each contact, at its mean position there,
    and their weights (n,): 1 inside a contact, easing to 0 over ``blend`` frames on each side."""
    n = len(points)
    offsets, weights = np.zeros((n, 3)), np.zeros(n)
    index = np.arange(n)
    for start, end in segments(contact):
        lock = points[start:end + 1].mean(axis=0)
        distance = np.maximum(np.maximum(start - index, index - end), 0)
        weight = np.clip(1.0 - distance / (blend + 1.0), 0.0, 1.0)
        weight = weight * weight * (3.0 - 2.0 * weight)  # smoothstep: no kink where the fade starts
        offsets += weight[:, None] * floor.horizontal(lock - points)
        weights += weight
    over = np.maximum(weights, 1.0)
    return offsets / over[:, None], np.minimum(weights, 1.0)


def sliding_mm(points: dict[str, np.ndarray], contact: dict[str, np.ndarray], floor: Floor) -> float:
    """Mean along-floor movement of the feet (per side: points (n, 3), contact flags (n,)) between consecutive
    frames of one contact, in mm per frame; 0 without contacts."""
    steps = [np.linalg.norm(floor.horizontal(np.diff(points[side][a:b + 1], axis=0)), axis=-1)
             for side in points for a, b in segments(contact[side]) if b > a]
    return 1000.0 * float(np.concatenate(steps).mean()) if steps else 0.0


def smooth(values: np.ndarray, radius: int) -> np.ndarray:
    """Moving average along axis 0 (edges repeated), so the root's share of a plant has no corners."""
    if radius <= 0:
        return values
    kernel = np.ones(2 * radius + 1) / (2 * radius + 1)
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(values.shape[1])], -1)


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Knee and ankle positions (n, 3) reaching ``target`` from ``hip`` with the leg's own segment lengths, the
    knee bending in its original plane (its offset from the hip-ankle line is the pole). Targets out of reach are
    met as closely as a straight (or fully folded) leg allows."""
    thigh = np.linalg.norm(knee - hip, axis=-1)
    shin = np.linalg.norm(ankle - knee, axis=-1)
    reach = target - hip
    dist = np.linalg.norm(reach, axis=-1)
    dist_c = np.clip(dist, np.abs(thigh - shin) + 1e-5, thigh + shin - 1e-5)
    axis = reach / np.maximum(dist, 1e-9)[:, None]
    pole = (knee - hip) - np.sum((knee - hip) * axis, axis=-1, keepdims=True) * axis
    pole_norm = np.linalg.norm(pole, axis=-1, keepdims=True)
    fallback = np.cross(axis, np.array([1.0, 0.0, 0.0]))
    pole = np.where(pole_norm > 1e-6, pole / np.maximum(pole_norm, 1e-12), fallback / np.maximum(
        np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-12))
    along = (thigh ** 2 - shin ** 2 + dist_c ** 2) / (2.0 * dist_c)
    up = np.sqrt(np.maximum(thigh ** 2 - along ** 2, 0.0))
    new_knee = hip + along[:, None] * axis + up[:, None] * pole
    return new_knee, hip + dist_c[:, None] * axis


def leg_rotations(world_rot: np.ndarray, joints: np.ndarray, new_knee: np.ndarray, new_ankle: np.ndarray,
                  side: str, root_shift: np.ndarray) -> None:
    """Turn the thigh and shin (world rotations (n, 24, 3, 3), in place) so the knee and ankle land on the IK
    solution; the foot keeps its world rotation (it stays flat where it was planted)."""
    hip, knee, ankle = joints[:, HIP[side]] + root_shift, joints[:, KNEE[side]] + root_shift, \
        joints[:, ANKLE[side]] + root_shift
    for i in range(len(joints)):
        s1 = swing(knee[i] - hip[i], new_knee[i] - hip[i])
        world_rot[i, HIP[side]] = s1 @ world_rot[i, HIP[side]]
        s2 = swing(s1 @ (ankle[i] - knee[i]), new_ankle[i] - new_knee[i])
        world_rot[i, KNEE[side]] = s2 @ s1 @ world_rot[i, KNEE[side]]


@dataclass
class PlantResult:
    """New world rotations and root positions, and the sliding figures before and after."""

    world_rot: np.ndarray  # (n, 24, 3, 3)
    root: np.ndarray  # (n, 3)
    contact: dict[str, np.ndarray]
    before_mm: float
    after_mm: float
    joints_after: np.ndarray  # (n, 24, 3)


def plant(joints: np.ndarray, world_rot: np.ndarray, floor: Floor, clearance: dict[int, float], fps: float,
          frames: np.ndarray, *, height_on: float, speed_on: float, blend: int, root_share: float = 0.5) -> PlantResult:
    """Plant both feet of one person (world joints (n, 24, 3), bone world rotations (n, 24, 3, 3)).

    During a contact the ankle is held, along the floor, at its mean position over the contact; the root takes
    ``root_share`` of the correction (smoothed), each leg's two-bone IK the rest, so swing feet keep their path.
    """
    points = foot_points(joints, clearance)
    # Heights from this person's own standing level: monocular depth errors lift or sink whole people.
    base = float(np.percentile(np.minimum(floor.height(points["L"]), floor.height(points["R"])), 10))
    gaps = np.concatenate([[True], np.diff(frames) > 1.5])
    dt = np.concatenate([[1.0], np.maximum(np.diff(frames), 1.0)]) / max(fps, 1e-6)
    contact, offsets, weights = {}, {}, {}
    for side in SIDES:
        ankle = joints[:, ANKLE[side]]
        speed = np.linalg.norm(floor.horizontal(np.diff(ankle, axis=0, prepend=ankle[:1])), axis=-1) / dt
        speed[gaps] = np.concatenate([speed[1:], [0.0]])[gaps]  # first frame of a run: the next frame's speed
        contact[side] = detect_contacts(floor.height(points[side]) - base, speed, height_on=height_on,
                                        speed_on=speed_on,
                                        breaks=gaps)
        offsets[side], weights[side] = plant_offsets(ankle, contact[side], floor, blend)
    total = weights["L"] + weights["R"]
    shared = (offsets["L"] * weights["L"][:, None] + offsets["R"] * weights["R"][:, None]) / np.maximum(total, 1.0)[:,
                                                                                                            None]
    root_shift = smooth(root_share * shared, blend)
    new_rot = world_rot.copy()
    for side in SIDES:
        target = joints[:, ANKLE[side]] + offsets[side]
        new_knee, new_ankle = two_bone_ik(joints[:, HIP[side]] + root_shift, joints[:, KNEE[side]] + root_shift,
                                          joints[:, ANKLE[side]] + root_shift, target)
        leg_rotations(new_rot, joints, new_knee, new_ankle, side, root_shift)
    after = joints + root_shift[:, None]
    for side in SIDES:  # recompute the legs' joints from the new rotations
        hip = after[:, HIP[side]]
        thigh = joints[:, KNEE[side]] - joints[:, HIP[side]]
        knee = hip + np.einsum("nij,nkj,nk->ni", new_rot[:, HIP[side]], world_rot[:, HIP[side]], thigh)
        shin = joints[:, ANKLE[side]] - joints[:, KNEE[side]]
        ankle = knee + np.einsum("nij,nkj,nk->ni", new_rot[:, KNEE[side]], world_rot[:, KNEE[side]], shin)
        toe = ankle + joints[:, TOE[side]] - joints[:, ANKLE[side]]
        after[:, KNEE[side]], after[:, ANKLE[side]], after[:, TOE[side]] = knee, ankle, toe
    before = sliding_mm({s: joints[:, ANKLE[s]] for s in SIDES}, contact, floor)
    after_mm = sliding_mm({s: after[:, ANKLE[s]] for s in SIDES}, contact, floor)
    return PlantResult(world_rot=new_rot, root=joints[:, 0] + root_shift, contact=contact, before_mm=before,
                       after_mm=after_mm, joints_after=after)
