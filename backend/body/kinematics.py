"""Forward kinematics and linear blend skinning, the two operations every body model shares.

Same maths as SMPL/smplx (``batch_rigid_transform`` and ``lbs``), written for any number of leading batch
dimensions so callers can pass (B, ...) or (B, T, ...) alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _parent_list(parents: torch.Tensor | Sequence[int]) -> list[int]:
    """Parents as Python ints, checked to be topologically ordered (a parent precedes its child)."""
    values = parents.tolist() if isinstance(parents, torch.Tensor) else [int(p) for p in parents]
    for child, parent in enumerate(values):
        if (child == 0) != (parent < 0) or parent >= child:
            raise ValueError(f"parents must list the root first and each parent before its children: {values}")
    return values


def forward_kinematics(
    rotmats: torch.Tensor, rest_joints: torch.Tensor, parents: torch.Tensor | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a skeleton: local rotations (..., J, 3, 3) about rest joints (..., J, 3).

    Returns the posed joints (..., J, 3) and the skinning transforms (..., J, 4, 4), which map a point of the
    rest pose rigidly attached to joint j to its posed position (world transform times inverse bind pose).
    Joint 0 rotates about its own rest position, as in SMPL.
    """
    parent = _parent_list(parents)
    offsets = rest_joints.clone()
    offsets[..., 1:, :] = rest_joints[..., 1:, :] - rest_joints[..., parent[1:], :]
    world_rot: list[torch.Tensor] = []
    world_pos: list[torch.Tensor] = []
    for j, p in enumerate(parent):
        if p < 0:
            world_rot.append(rotmats[..., j, :, :])
            world_pos.append(offsets[..., j, :])
        else:
            world_rot.append(world_rot[p] @ rotmats[..., j, :, :])
            world_pos.append(world_pos[p] + (world_rot[p] @ offsets[..., j, :, None])[..., 0])
    rot = torch.stack(world_rot, dim=-3)
    posed = torch.stack(world_pos, dim=-2)
    trans = posed - (rot @ rest_joints[..., None])[..., 0]
    bottom = torch.zeros((*rot.shape[:-2], 1, 4), dtype=rot.dtype, device=rot.device)
    bottom[..., 0, 3] = 1.0
    transforms = torch.cat([torch.cat([rot, trans[..., None]], dim=-1), bottom], dim=-2)
    return posed, transforms


def linear_blend_skinning(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Move rest vertices (..., V, 3) by the weight-blended transforms (..., J, 4, 4); weights are (V, J)."""
    blended = torch.einsum("vj,...jab->...vab", weights, transforms[..., :3, :])
    return (blended[..., :3] @ vertices[..., None])[..., 0] + blended[..., 3]
