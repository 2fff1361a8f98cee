"""A light copy of a body model for LASOR: exact joints and keypoints, a decimated mesh for silhouettes.

Posing the full open body (5.7k vertices) and rasterizing its 11k triangles into a 64 px crop costs far more
than the network on a CPU, and at that size most triangles are smaller than a pixel. ``LightBody`` keeps:

* the joints exactly (same J_regressor, same forward kinematics, precomputed linear bases in beta);
* the 17 keypoints exactly (landmark vertices skinned like the full model, virtual hips as the fit defines them);
* a vertex-clustered mesh (one representative original vertex per ``cell`` metres, faces remapped, degenerate
  ones dropped) whose vertices are exactly those original vertices: silhouettes and the vertex loss use it.
"""

from __future__ import annotations

import numpy as np
import torch

from backend.body.kinematics import forward_kinematics, linear_blend_skinning
from backend.lasor.keypoints import BODY_SOURCE, HIP_OFFSET


def cluster_mesh(vertices: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: (kept original vertex ids (N,), faces (F', 3) indexing into them)."""
    keys = np.floor(vertices / cell).astype(np.int64)
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    count = cluster.max() + 1
    centre = np.zeros((count, 3))
    np.add.at(centre, cluster, vertices)
    centre /= np.bincount(cluster, minlength=count)[:, None]
    dist = np.linalg.norm(vertices - centre[cluster], axis=1)
    order = np.lexsort((dist, cluster))  # per cluster, nearest to its centre first
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    rep = order[first]  # rep[c] = representative vertex of cluster c (clusters come sorted)
    new_faces = cluster[faces]
    keep = (new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2]) & \
        (new_faces[:, 0] != new_faces[:, 2])
    new_faces = np.unique(np.sort(new_faces[keep], axis=1), axis=0)
    return rep, new_faces


class LightBody(torch.nn.Module):
    """Posed joints (B, 24, 3), keypoints (B, 17, 3) and coarse vertices (B, N, 3) from rotations and betas."""

    def __init__(self, body_model: torch.nn.Module, cell: float = 0.045) -> None:
        super().__init__()
        cpu = lambda t: t.detach().to("cpu", torch.float32)  # noqa: E731
        template, shapedirs = cpu(body_model.v_template), cpu(body_model.shapedirs)
        regressor, weights = cpu(body_model.J_regressor), cpu(body_model.skin_weights)
        self.parents = [int(p) for p in body_model.parents.tolist()]
        self.joint_names = list(body_model.joint_names)
        self.num_betas = int(body_model.num_betas)
        self.name = getattr(body_model, "name", "body")
        rep, faces = cluster_mesh(template.numpy(), body_model.faces.cpu().numpy(), cell)
        landmarks = dict(body_model.landmark_vertices)
        kp_vertex = [landmarks[name] for kind, name in BODY_SOURCE if kind == "vertex"]
        ids = torch.as_tensor(np.concatenate([rep, kp_vertex]), dtype=torch.long)
        self.num_mesh = len(rep)
        self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.long))
        self.register_buffer("joint_template", regressor @ template)
        self.register_buffer("joint_dirs", torch.einsum("jv,vck->jck", regressor, shapedirs))
        self.register_buffer("vertex_template", template[ids])
        self.register_buffer("vertex_dirs", shapedirs[ids])
        self.register_buffer("vertex_weights", weights[ids])
        posedirs = getattr(body_model, "posedirs", None)
        self.register_buffer("posedirs", None if posedirs is None else cpu(posedirs)[ids])
        # keypoint k = select[k] @ [joints (24), keypoint vertices (Lk), virtual hips (2)]
        select = torch.zeros(len(BODY_SOURCE), 24 + len(kp_vertex) + 2)
        vi = 0
        for k, (kind, name) in enumerate(BODY_SOURCE):
            if kind == "joint":
                select[k, self.joint_names.index(name)] = 1.0
            elif kind == "vertex":
                select[k, 24 + vi] = 1.0
                vi += 1
            else:
                select[k, 24 + len(kp_vertex) + (0 if name.startswith("left") else 1)] = 1.0
        self.register_buffer("select", select)
        self.hips = (self.joint_names.index("left_hip"), self.joint_names.index("right_hip"))
        self.register_buffer("hip_offset", torch.tensor([[HIP_OFFSET[0], HIP_OFFSET[1], HIP_OFFSET[2]],
                                                         [-HIP_OFFSET[0], HIP_OFFSET[1], HIP_OFFSET[2]]]))

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        return self.joint_template + torch.einsum("jck,bk->bjc", self.joint_dirs, betas)

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(joints (B, 24, 3), keypoints (B, 17, 3), mesh vertices (B, N, 3)), before translation."""
        rest = self.rest_joints(betas)
        joints, transforms = forward_kinematics(rotmats, rest, self.parents)
        verts = self.vertex_template + torch.einsum("vck,bk->bvc", self.vertex_dirs, betas)
        if self.posedirs is not None:
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            feature = (rotmats[:, 1:] - eye).reshape(rotmats.shape[0], -1)
            verts = verts + torch.einsum("vcp,bp->bvc", self.posedirs, feature)
        verts = linear_blend_skinning(verts, transforms, self.vertex_weights)
        hips_rest = rest[:, list(self.hips)] + self.hip_offset
        pelvis = transforms[:, 0]
        hips = (pelvis[:, None, :3, :3] @ hips_rest[..., None])[..., 0] + pelvis[:, None, :3, 3]
        keypoints = torch.einsum("kp,bpc->bkc", self.select, torch.cat([joints, verts[:, self.num_mesh:], hips], 1))
        return joints, keypoints, verts[:, : self.num_mesh]
