"""The fitted body points (joints, virtual hips, face and foot vertices) as a cheap differentiable function.

The fit never needs the full mesh: J(beta) and the few landmark vertices are linear in beta, so their bases are
precomputed once from the body model, and each optimiser step costs one forward kinematics pass plus skinning
of 13 vertices. The joints are exactly BodyModel.forward's joints (same J_regressor, same FK).
"""

from __future__ import annotations

import torch

from backend.body.kinematics import forward_kinematics, linear_blend_skinning
from backend.fitting.mapping import HIP_OFFSET, POINTS


class BodyPoints(torch.nn.Module):
    """Posed joints (B, 24, 3) and fitted points (B, 25, 3) from rotations (B, 24, 3, 3) and betas (B, K)."""

    def __init__(self, body_model: torch.nn.Module) -> None:
        super().__init__()
        names = list(body_model.joint_names)
        self.parents = [int(p) for p in body_model.parents.tolist()]
        self.num_betas = int(body_model.num_betas)
        # how far the fit moves the betas per step, relative to the pose (a body whose shape space spans ages,
        # Anny's, sets more: a child is two or three units from its mean shape)
        self.shape_step = float(getattr(body_model, "fit_shape_step", 1.0))
        # the shape the fit starts from and its prior pulls towards (Anny: a typical adult; others: their mean)
        mean = getattr(body_model, "shape_prior_mean", None)
        mean = torch.zeros(self.num_betas) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.register_buffer("shape_mean", mean.reshape(self.num_betas))
        landmarks = dict(body_model.landmark_vertices)
        missing = sorted({r for p in POINTS if p.kind == "vertices" for r in p.refs} - set(landmarks))
        if missing:
            raise ValueError(f"body model {getattr(body_model, 'name', '?')} lacks landmark vertices {missing}")
        vertex_names = sorted(landmarks)
        vertex_ids = torch.as_tensor([landmarks[n] for n in vertex_names])
        # The fit runs on the CPU in float32 whatever device and precision the pipeline's model uses.
        cpu = lambda t: t.detach().to("cpu", torch.float32)  # noqa: E731
        shapedirs, template = cpu(body_model.shapedirs), cpu(body_model.v_template)
        regressor = cpu(body_model.J_regressor)
        self.register_buffer("joint_template", regressor @ template)  # (24, 3)
        self.register_buffer("joint_dirs", torch.einsum("jv,vck->jck", regressor, shapedirs))  # (24, 3, K)
        self.register_buffer("vertex_template", template[vertex_ids])  # (L, 3)
        self.register_buffer("vertex_dirs", shapedirs[vertex_ids])  # (L, 3, K)
        self.register_buffer("vertex_weights", cpu(body_model.skin_weights)[vertex_ids])  # (L, 24)
        # stature: the template's crown and sole vertices, linear in beta like everything here
        ends = torch.stack([template[:, 1].argmax(), template[:, 1].argmin()])
        self.register_buffer("stature_template", template[ends, 1])  # (2,)
        self.register_buffer("stature_dirs", shapedirs[ends, 1])  # (2, K)
        # whether the fit sizes people by their common floor (``fitting.floor_height``): bodies whose shape space
        # spans ages (Anny) set it
        self.floor_heights = bool(getattr(body_model, "fit_floor_heights", False))
        self._build_selectors(names, vertex_names)

    def _build_selectors(self, joint_names: list[str], vertex_names: list[str]) -> None:
        """A (25, 24 + L + 2) matrix picking/averaging every point from [joints, vertices, virtual hips]."""
        num_j, num_v = len(joint_names), len(vertex_names)
        select = torch.zeros(len(POINTS), num_j + num_v + 2)
        for row, spec in enumerate(POINTS):
            for ref in spec.refs:
                if spec.kind == "joint":
                    col = joint_names.index(ref)
                elif spec.kind == "vertices":
                    col = num_j + vertex_names.index(ref)
                else:
                    col = num_j + num_v + (0 if ref.startswith("left") else 1)
                select[row, col] = 1.0 / len(spec.refs)
        self.register_buffer("select", select)
        self.hip_joints = (joint_names.index("left_hip"), joint_names.index("right_hip"))
        offset = torch.tensor([[HIP_OFFSET[0], HIP_OFFSET[1], HIP_OFFSET[2]],
                               [-HIP_OFFSET[0], HIP_OFFSET[1], HIP_OFFSET[2]]])
        self.register_buffer("hip_offset", offset)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """J(beta) (B, 24, 3)."""
        return self.joint_template + torch.einsum("jck,bk->bjc", self.joint_dirs, betas)

    def stature(self, betas: torch.Tensor) -> torch.Tensor:
        """(B,) standing height (crown to sole of the rest pose), metres."""
        ends = self.stature_template + betas @ self.stature_dirs.T  # (B, 2)
        return ends[:, 0] - ends[:, 1]

    def rest_points(self, betas: torch.Tensor) -> torch.Tensor:
        """The 25 fitted points in the rest pose (B, 25, 3): for bone lengths of a shape."""
        eye = torch.eye(3, dtype=betas.dtype, device=betas.device).expand(betas.shape[0], 24, 3, 3)
        _, points = self.forward(eye, betas)
        return points

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joints (B, 24, 3), points (B, 25, 3)) posed, before translation."""
        rest = self.rest_joints(betas)
        joints, transforms = forward_kinematics(rotmats, rest, self.parents)
        vertices = self.vertex_template + torch.einsum("lck,bk->blc", self.vertex_dirs, betas)
        vertices = linear_blend_skinning(vertices, transforms, self.vertex_weights)
        hips_rest = rest[:, list(self.hip_joints)] + self.hip_offset
        pelvis = transforms[:, 0]
        hips = (pelvis[:, None, :3, :3] @ hips_rest[..., None])[..., 0] + pelvis[:, None, :3, 3]
        points = torch.einsum("pk,bkc->bpc", self.select, torch.cat([joints, vertices, hips], dim=1))
        return joints, points
