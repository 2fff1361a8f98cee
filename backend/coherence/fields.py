"""Per-person penetration fields: phi = -min(SDF, 0) on a tight voxel grid, sampled trilinearly.

Jiang et al. (Eq. 1-2) penalise vertices of person j by person i's phi_i. phi only has to be a fixed field
to sample from (no gradient through its construction), so it is built once per mesh: inside/outside by
ray parity along z-columns (the columns are "rasterized" with ``render.triangle_coverage``), then the inside
depth by a Euclidean distance transform. Sampling is differentiable with respect to the query points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from backend.geometry.render import triangle_coverage

_JITTER = np.array([0.3183, 0.2718, 0.0])  # fraction of a voxel: keeps rays off mesh vertices and edges


@dataclass
class PenetrationField:
    """phi on a grid: voxel (i, j, k) centre = origin + (i, j, k) * spacing; phi >= 0, zero outside the body."""

    origin: torch.Tensor  # (3,)
    spacing: torch.Tensor  # (3,)
    phi: torch.Tensor  # (Nx, Ny, Nz) metres below the surface

    @property
    def upper(self) -> torch.Tensor:
        return self.origin + (torch.tensor(self.phi.shape, device=self.phi.device) - 1) * self.spacing

    def sample(self, points: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """phi at points (..., 3) (trilinear, 0 outside the grid); ``shift`` translates the field rigidly."""
        origin = self.origin if shift is None else self.origin + shift
        grid = (points - origin) / ((self.upper - self.origin) / 2) - 1.0  # [-1, 1] over the voxel centres
        flat = grid.reshape(1, -1, 1, 1, 3).flip(-1)  # grid_sample wants (x, y, z) = (k, j, i)
        values = torch.nn.functional.grid_sample(
            self.phi[None, None], flat.to(self.phi.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
        )
        return values.reshape(points.shape[:-1])


class LazyField:
    """A person's field built on first use: its box (``origin``, ``upper``) is known at once, so pairs of people
    whose boxes never overlap (most pairs in a frame) never pay for the voxel grid."""

    def __init__(self, vertices: torch.Tensor, faces: torch.Tensor, resolution: int = 32, padding: float = 0.02):
        verts = vertices.detach()
        self.origin = verts.amin(0) - padding
        self.upper = verts.amax(0) + padding
        self._build = lambda: penetration_field(vertices, faces, resolution, padding)  # noqa: E731
        self._field: PenetrationField | None = None

    def sample(self, points: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        if self._field is None:
            self._field = self._build()
        return self._field.sample(points, shift)


def penetration_field(vertices: torch.Tensor, faces: torch.Tensor, resolution: int = 32,
                      padding: float = 0.02) -> PenetrationField:
    """The field of one closed mesh (V, 3) / (F, 3) on a ``resolution``^3 grid over its padded bounding box."""
    verts = vertices.detach().double()
    lo, hi = verts.amin(0) - padding, verts.amax(0) + padding
    spacing = (hi - lo) / (resolution - 1)
    inside = inside_voxels(verts, faces, lo, spacing, resolution)
    step = spacing.cpu().numpy()
    depth = ndimage.distance_transform_edt(inside, sampling=step) - 0.5 * step.min()
    phi = np.where(inside, np.maximum(depth, 0.0), 0.0)
    dtype = vertices.dtype
    return PenetrationField(lo.to(dtype), spacing.to(dtype), torch.as_tensor(phi, dtype=dtype, device=vertices.device))


def inside_voxels(verts: torch.Tensor, faces: torch.Tensor, origin: torch.Tensor, spacing: torch.Tensor,
                  resolution: int) -> np.ndarray:
    """Bool (N, N, N): voxel centres inside the mesh, by the parity of surface crossings along +z."""
    jitter = torch.as_tensor(_JITTER, dtype=verts.dtype, device=verts.device)
    grid = (verts - origin) / spacing - jitter  # voxel units; column (i, j) sits at integer (x, y)
    tri = grid[faces.long()]
    face, px, py, bary = triangle_coverage(tri[..., :2], resolution, resolution)
    z_hit = (bary * tri[face, :, 2]).sum(-1)
    first_inside = torch.ceil(z_hit).clamp(0, resolution).long()  # voxels k >= z_hit are past this crossing
    crossings = torch.zeros(resolution, resolution, resolution + 1, dtype=torch.long, device=verts.device)
    crossings.index_put_((px, py, first_inside), torch.ones_like(px), accumulate=True)
    return (crossings.cumsum(-1)[..., :resolution] % 2 == 1).cpu().numpy()
