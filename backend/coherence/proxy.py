"""The mesh coherence works on: the body's own, or a vertex-clustered copy for dense bodies (Anny).

Coherence's cost grows with the mesh (penetration fields are built from its triangles, the penetration loss reads
every vertex, masks are rasterized from it). The open body (5.7k vertices) is used as it is; a denser body such as
Anny (13.7k) is reduced by vertex clustering (``backend.lasor.body.cluster_mesh``: one original vertex per cell,
faces remapped) to about the open body's size. Its vertices are original vertices, so the posed proxy is simply
the posed body indexed by ``vertex_ids``; only translations are refined, so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_VERTICES = 6000  # bodies up to this size are used as they are
_FIRST_CELL = 0.012  # metres; grown by 15 % until the proxy fits


@dataclass(frozen=True)
class CoherenceMesh:
    vertex_ids: torch.Tensor | None  # (P,) indices into the body's vertices, None for the whole mesh
    faces: torch.Tensor  # (F', 3) indices into the proxy's vertices
    skin_weights: torch.Tensor  # (P, J)

    def select(self, vertices: torch.Tensor) -> torch.Tensor:
        """The proxy's vertices (..., P, 3) of posed body vertices (..., V, 3)."""
        return vertices if self.vertex_ids is None else vertices[..., self.vertex_ids, :]


def coherence_mesh(body: torch.nn.Module) -> CoherenceMesh:
    """The body's coherence mesh, made once per body model object."""
    cached = getattr(body, "_coherence_mesh", None)
    if cached is not None:
        return cached
    if int(body.v_template.shape[0]) <= MAX_VERTICES:
        mesh = CoherenceMesh(None, body.faces, body.skin_weights)
    else:
        from backend.lasor.body import cluster_mesh

        template = body.v_template.detach().cpu().double().numpy()
        faces = body.faces.cpu().numpy()
        cell = _FIRST_CELL
        ids, kept = cluster_mesh(template, faces, cell)
        while len(ids) > MAX_VERTICES:
            cell *= 1.15
            ids, kept = cluster_mesh(template, faces, cell)
        device = body.faces.device
        index = torch.as_tensor(ids, dtype=torch.long, device=device)
        mesh = CoherenceMesh(index, torch.as_tensor(kept, dtype=torch.long, device=device), body.skin_weights[index])
    body.__dict__["_coherence_mesh"] = mesh  # a plain attribute, not a registered module or buffer
    return mesh
