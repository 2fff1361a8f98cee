"""Signed distance primitives and their smooth union, the building blocks of the open body's surface.

A part is a tapered capsule with elliptic cross-sections (an ellipsoid when both ends coincide). Its value is
a distance bound, not an exact distance: good enough for a marching-cubes surface and for telling which
part a surface point belongs to, and cheap to evaluate on a grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAR = 1.0  # value used for points far from a part
FAR_MARGIN = 0.08  # beyond this a part cannot affect the union's surface (blend radii are at most 0.04)


@dataclass(frozen=True)
class Part:
    """A body part: segment a -> b, radii (across-1, across-2, along) at each end, driven by ``joint``.

    ``side`` fixes the first cross-section axis (made perpendicular to the segment); ``axis`` is the
    segment direction used when a == b; ``blend`` is the smooth-union radius with the parts before it in
    its ``group`` (the first part of a group: with the core).
    """

    name: str
    joint: int
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radii_a: tuple[float, float, float]
    radii_b: tuple[float, float, float]
    side: tuple[float, float, float] = (1.0, 0.0, 0.0)
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    blend: float = 0.02
    group: str = "core"

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Orthonormal (e1, e2, e3) with e3 along the segment, and the segment length."""
        seg = np.subtract(self.b, self.a, dtype=np.float64)
        length = float(np.linalg.norm(seg))
        e3 = seg / length if length > 1e-9 else np.asarray(self.axis, dtype=np.float64) / np.linalg.norm(self.axis)
        e1 = np.asarray(self.side, dtype=np.float64)
        e1 = e1 - e3 * (e1 @ e3)
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(e3, e1), e3, length

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box outside which the part can be treated as far away (see ``evaluate``)."""
        radii = np.concatenate([self.radii_a, self.radii_b])
        margin = radii.max() + FAR_MARGIN * radii.max() / radii.min()
        ends = np.array([self.a, self.b], dtype=np.float64)
        return ends.min(axis=0) - margin, ends.max(axis=0) + margin

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """Signed distance bound of points (N, 3), negative inside; ``FAR`` outside ``bounds()``.

        The bound's slope is at least min/max radius, so outside the box it exceeds ``FAR_MARGIN``, where it
        can no longer change a smooth union near the surface: skipping it keeps the result and saves time.
        """
        lower, upper = self.bounds()
        inside = np.all((points >= lower) & (points <= upper), axis=1)
        out = np.full(len(points), FAR, dtype=points.dtype)
        out[inside] = self._evaluate(points[inside])
        return out

    def _evaluate(self, points: np.ndarray) -> np.ndarray:
        e1, e2, e3, length = self.frame()
        q = points - np.asarray(self.a)
        x1, x2, x3 = q @ e1, q @ e2, q @ e3
        t = np.clip(x3 / length, 0.0, 1.0) if length > 1e-9 else np.zeros_like(x3)
        ra, rb = np.asarray(self.radii_a), np.asarray(self.radii_b)
        r = ra[None, :] * (1.0 - t[:, None]) + rb[None, :] * t[:, None]
        axial = x3 - t * length
        scaled = np.sqrt((x1 / r[:, 0]) ** 2 + (x2 / r[:, 1]) ** 2 + (axial / r[:, 2]) ** 2)
        return (scaled - 1.0) * r.min(axis=1)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (a fillet of radius about k where two surfaces meet)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _chain(parts: list[Part], points: np.ndarray) -> np.ndarray:
    """Smooth union of the parts, in list order."""
    value = parts[0].evaluate(points)
    for part in parts[1:]:
        value = smooth_min(value, part.evaluate(points), part.blend)
    return value


def union(parts: list[Part], points: np.ndarray) -> np.ndarray:
    """The "core" group blended with each other group; groups are not blended with one another.

    min over groups of smin(core, group): a leg merges smoothly into the hips but never into the other
    leg, so the two stay apart even where they come close.
    """
    core = _chain([p for p in parts if p.group == "core"], points)
    groups = sorted({p.group for p in parts} - {"core"})
    value = core
    for group in groups:
        members = [p for p in parts if p.group == group]
        value = np.minimum(value, smooth_min(core, _chain(members, points), members[0].blend))
    return value
