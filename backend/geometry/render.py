"""A small batched z-buffer rasterizer in torch: per-mesh depth maps, an instance index map and silhouettes.

Coherence (ordinal depth loss), evaluation (ground-truth masks, keypoint visibility) and the synthetic scenes
all need "which mesh is nearest at this pixel, and how deep is each mesh there". Meshes are rasterized
independently into their own z-buffer, so a hidden person still has a depth where it is covered; that is what
lets the ordinal depth loss push the hidden person forward (Jiang et al. 2020, Sec. 3.4).

Which triangle covers a pixel, and its screen-space barycentrics, are found without gradients (vectorised
per-triangle bounding-box tiling, no per-pixel Python loops); the depth is then re-interpolated from the
vertex depths with those barycentrics held fixed (perspective-correct: 1/z is linear in screen space), so depth
is differentiable with respect to the vertices. Pixel centres sit at integer coordinates (OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from backend.geometry.camera import Camera

NEAR = 1e-2  # metres: triangles with a vertex nearer than this are skipped (no clipping)
_MAX_CANDIDATES = 1 << 22  # candidate (triangle, pixel) pairs evaluated at once: bounds memory


@dataclass
class Fragments:
    """Per-mesh rasterization of M meshes into an H x W image."""

    depth: torch.Tensor  # (M, H, W) camera-frame z, +inf where the mesh does not cover the pixel
    face: torch.Tensor  # (M, H, W) long: index into that mesh's faces, -1 where empty
    bary: torch.Tensor  # (M, H, W, 3) screen-space barycentrics in that face (no gradient)

    @property
    def silhouettes(self) -> torch.Tensor:
        """(M, H, W) bool coverage of each mesh on its own (amodal)."""
        return self.face >= 0

    @property
    def index_map(self) -> torch.Tensor:
        """(H, W) long: index of the nearest mesh at each pixel, -1 for background."""
        return nearest_index(self.depth)


def nearest_index(depth: torch.Tensor) -> torch.Tensor:
    """Instance map from per-mesh depths (M, H, W): the argmin over meshes, -1 where every depth is inf."""
    if depth.shape[0] == 0:
        return torch.full(depth.shape[1:], -1, dtype=torch.long, device=depth.device)
    best, index = depth.detach().min(dim=0)
    return torch.where(torch.isfinite(best), index, torch.full_like(index, -1))


def triangle_coverage(tri: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, ...]:
    """All (triangle, pixel centre) pairs with the centre inside the 2D triangle.

    ``tri`` (F, 3, 2) in pixels. Returns ``face`` (K,), ``px`` (K,), ``py`` (K,) and barycentrics ``bary``
    (K, 3). Triangles are grouped by the power-of-two size of their pixel bounding box and tiled, so the work is
    proportional to the covered area, not to F x H x W. Both windings count (no back-face culling).
    """
    lo = tri.amin(1).ceil().long()
    hi = tri.amax(1).floor().long()
    lo = torch.maximum(lo, torch.zeros_like(lo))
    hi = torch.minimum(hi, torch.tensor([width - 1, height - 1], device=tri.device))
    extent = (hi - lo + 1).amax(1)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # twice the signed area
    valid = (extent > 0) & (area.abs() > 1e-12) & (hi >= lo).all(1)
    outputs: list[list[torch.Tensor]] = [[], [], [], []]
    tile = 1
    while True:
        group = torch.nonzero(valid & (extent <= tile) & (extent > tile // 2)).squeeze(1)
        if group.numel():
            chunk = max(1, _MAX_CANDIDATES // (tile * tile))
            for start in range(0, group.numel(), chunk):
                for out, part in zip(outputs, _tile(tri, area, lo, hi, group[start:start + chunk], tile)):
                    out.append(part)
        if tile >= int(extent.max().item() if extent.numel() else 0):
            break
        tile *= 2
    if not outputs[0]:
        empty = torch.zeros(0, dtype=torch.long, device=tri.device)
        return empty, empty, empty, torch.zeros(0, 3, dtype=tri.dtype, device=tri.device)
    return tuple(torch.cat(out) for out in outputs)


def _tile(tri: torch.Tensor, area: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, faces: torch.Tensor,
          tile: int) -> tuple[torch.Tensor, ...]:
    offsets = torch.arange(tile * tile, device=tri.device)
    px = lo[faces, 0, None] + offsets % tile
    py = lo[faces, 1, None] + offsets // tile
    keep = (px <= hi[faces, 0, None]) & (py <= hi[faces, 1, None])
    bary = _barycentrics(tri[faces], area[faces], px.to(tri.dtype), py.to(tri.dtype))
    keep &= (bary >= -1e-7).all(-1)
    face_id = faces[:, None].expand_as(px)
    return face_id[keep], px[keep], py[keep], bary[keep]


def _barycentrics(tri: torch.Tensor, area: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentrics (F, K, 3) of points (F, K) in triangles (F, 3, 2) of signed area ``area``."""
    x, y = tri[..., 0, None], tri[..., 1, None]  # (F, 3, 1)
    x1, y1, x2, y2 = x.roll(-1, 1), y.roll(-1, 1), x.roll(-2, 1), y.roll(-2, 1)
    # weight of vertex k: signed area of (p, v_{k+1}, v_{k+2}) over the triangle's
    w = (x1 - px[:, None]) * (y2 - py[:, None]) - (x2 - px[:, None]) * (y1 - py[:, None])
    return (w / area[:, None, None]).transpose(1, 2)


def rasterize(
    vertices: torch.Tensor | Sequence[torch.Tensor],
    faces: torch.Tensor | Sequence[torch.Tensor],
    camera: Camera,
) -> Fragments:
    """Rasterize M meshes independently into ``camera``'s image.

    ``vertices``: (M, V, 3) with shared ``faces`` (F, 3), or lists of per-mesh (V_m, 3) / (F_m, 3) (e.g. bodies
    and box occluders). Use ``Camera.resized`` for a smaller image. Depth is differentiable w.r.t. vertex z.
    """
    verts, tris, mesh_of_face, face_offset = _pack(vertices, faces)
    m, h, w = len(face_offset), camera.height, camera.width
    with torch.no_grad():
        tri_z = verts[:, 2][tris]
        usable = (tri_z > NEAR).all(1)
        index = torch.nonzero(usable).squeeze(1)
        tri2d = camera.project(verts.detach(), NEAR)[tris[index]]
        face, px, py, bary = triangle_coverage(tri2d, w, h)
        face = index[face]
        inv_z = (bary / tri_z[face]).sum(-1)
        key = mesh_of_face[face] * (h * w) + py * w + px
        zbuf = torch.full((m * h * w,), float("inf"), device=verts.device, dtype=verts.dtype)
        zbuf.scatter_reduce_(0, key, 1.0 / inv_z, "amin")
        winner = (1.0 / inv_z) <= zbuf[key]
        face_buf = torch.full((m * h * w,), -1, dtype=torch.long, device=verts.device)
        face_buf.scatter_reduce_(0, key[winner], face[winner], "amax")
        bary_buf = torch.zeros(m * h * w, 3, dtype=verts.dtype, device=verts.device)
        chosen = winner & (face_buf[key] == face)
        bary_buf[key[chosen]] = bary[chosen]
    local = torch.where(face_buf >= 0, face_buf - face_offset[mesh_of_face[face_buf.clamp(min=0)]], -1)
    face_map, bary_map = local.view(m, h, w), bary_buf.view(m, h, w, 3)
    return Fragments(interpolate_depth(face_map, bary_map, vertices, faces), face_map, bary_map)


def interpolate_depth(face: torch.Tensor, bary: torch.Tensor, vertices: torch.Tensor | Sequence[torch.Tensor],
                      faces: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-mesh depth (M, H, W) from a fixed triangle assignment and barycentrics, differentiable in the vertices.

    Also serves to re-evaluate depth after a small vertex motion without rasterizing again.
    """
    verts, tris, _, face_offset = _pack(vertices, faces)
    m = face.shape[0]
    covered = face >= 0
    mesh = torch.arange(m, device=face.device)[:, None, None].expand_as(face)
    packed = (face + face_offset[mesh])[covered]
    inv = (bary[covered] / verts[:, 2][tris[packed]]).sum(-1)
    depth = torch.full(face.shape, float("inf"), dtype=verts.dtype, device=verts.device)
    return depth.masked_scatter(covered, 1.0 / inv)


def _pack(vertices: torch.Tensor | Sequence[torch.Tensor], faces: torch.Tensor | Sequence[torch.Tensor]):
    """Concatenate meshes: packed vertices, packed faces, the mesh of each face, each mesh's first face."""
    if isinstance(vertices, torch.Tensor):
        vertices = list(vertices)
    if isinstance(faces, torch.Tensor):
        faces = [faces] * len(vertices)
    if len(vertices) != len(faces):
        raise ValueError(f"{len(vertices)} vertex sets but {len(faces)} face sets")
    device = vertices[0].device if len(vertices) else torch.device("cpu")
    v_counts = torch.tensor([len(v) for v in vertices], device=device)
    f_counts = torch.tensor([len(f) for f in faces], device=device)
    v_start = torch.cumsum(v_counts, 0) - v_counts
    f_start = torch.cumsum(f_counts, 0) - f_counts
    verts = torch.cat(list(vertices)) if len(vertices) else torch.zeros(0, 3)
    tris = torch.cat([f.to(device).long() + v_start[i] for i, f in enumerate(faces)]) if len(faces) else \
        torch.zeros(0, 3, dtype=torch.long)
    mesh_of_face = torch.repeat_interleave(torch.arange(len(faces), device=device), f_counts)
    return verts, tris, mesh_of_face, f_start
