"""Forward kinematics and linear blend skinning, the two operations every body model shares.

Same maths as SMPL/smplx (``batch_rigid_transform`` and ``lbs``), written for any number of leading batch
dimensions so callers can pass (B, ...) or (B, T, ...) alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch


def _parent_list(parents: torch.Tensor | Sequence[int]) -> list[int]:
    """Parents as Python ints, checked to be topologically ordered (a parent precedes its child)."""
    values = parents.tolist() if isinstance(parents, torch.Tensor) else [int(p) for p in parents]
    for child, parent in enumerate(values):
        if (child == 0) != (parent < 0) or parent >= child:
            raise ValueError(f"parents must list the root first and each parent before its children: {values}")
    return values


class _LevelPlan(NamedTuple):
    """The tree by depth, as index tensors on one device (built once per tree and device)."""

    by_level: torch.Tensor  # joints in level order (depth 0 first)
    sizes: tuple[int, ...]  # joints per level
    parents_above: list[torch.Tensor | None]  # per level below the root: each joint's parent's position in the
    # level above, ``None`` where that is the level above itself in order (no gather needed)
    order: torch.Tensor  # joint j's position in level order
    parent_of: torch.Tensor  # each joint's parent (the root: itself)
    has_parent: torch.Tensor  # 0 for the root, 1 elsewhere


@functools.lru_cache(maxsize=32)
def _level_plan(parent: tuple[int, ...], device: torch.device) -> _LevelPlan:
    """Every joint of one depth is posed in one batched product (9 products instead of 23 for SMPL), each level
    a contiguous slice of the joints put in level order once: few, larger tensor operations, forward and
    backward, which is what a fit taking hundreds of steps on a few people spends its time on. The tensors are
    normal ones even when first made under ``torch.inference_mode``: later passes save them for backward."""
    with torch.inference_mode(False):
        return _make_level_plan(parent, device)


def _make_level_plan(parent: tuple[int, ...], device: torch.device) -> _LevelPlan:
    depth = [0] * len(parent)
    for child, p in enumerate(parent):
        depth[child] = 0 if p < 0 else depth[p] + 1
    levels = [[j for j in range(len(parent)) if depth[j] == d] for d in range(max(depth) + 1)]
    slot = {j: i for level in levels for i, j in enumerate(level)}
    flat = [j for level in levels for j in level]
    above = []
    for level in levels[1:]:
        slots = [slot[parent[j]] for j in level]
        same = len(slots) == len(levels[len(above)]) and slots == list(range(len(slots)))
        above.append(None if same else torch.tensor(slots, device=device))
    return _LevelPlan(
        torch.tensor(flat, device=device), tuple(len(level) for level in levels), above,
        torch.tensor([flat.index(j) for j in range(len(parent))], device=device),
        torch.tensor([max(p, 0) for p in parent], device=device),
        torch.tensor([0.0 if p < 0 else 1.0 for p in parent], device=device),
    )


def forward_kinematics(
    rotmats: torch.Tensor, rest_joints: torch.Tensor, parents: torch.Tensor | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a skeleton: local rotations (..., J, 3, 3) about rest joints (..., J, 3).

    Returns the posed joints (..., J, 3) and the skinning transforms (..., J, 4, 4), which map a point of the
    rest pose rigidly attached to joint j to its posed position (world transform times inverse bind pose).
    Joint 0 rotates about its own rest position, as in SMPL.
    """
    plan = _level_plan(tuple(_parent_list(parents)), rotmats.device)
    has_parent = plan.has_parent.to(rest_joints.dtype)[:, None]
    offsets = rest_joints - rest_joints.index_select(-2, plan.parent_of) * has_parent  # bone vectors; root: itself
    local = _rigid(rotmats.index_select(-3, plan.by_level), offsets.index_select(-2, plan.by_level))
    levels = torch.split(local, plan.sizes, dim=-3)  # one backward concatenation, not a zero-filled copy each
    posed_levels = [levels[0]]
    for level, above in zip(levels[1:], plan.parents_above):  # one depth of the tree at a time
        parent = posed_levels[-1] if above is None else posed_levels[-1].index_select(-3, above)
        posed_levels.append(parent @ level)
    world = torch.cat(posed_levels, dim=-3).index_select(-3, plan.order)  # (..., J, 4, 4): joint to world
    rot, posed = world[..., :3, :3], world[..., :3, 3]
    trans = posed - (rot @ rest_joints[..., None])[..., 0]
    return posed, _rigid(rot, trans)


def _rigid(rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """4x4 transforms (..., 4, 4) from rotations (..., 3, 3) and translations (..., 3)."""
    bottom = torch.zeros(4, dtype=rot.dtype, device=rot.device)
    bottom[3] = 1.0
    top = torch.cat([rot, trans[..., None]], dim=-1)
    return torch.cat([top, bottom.expand(*top.shape[:-2], 1, 4)], dim=-2)


def linear_blend_skinning(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Move rest vertices (..., V, 3) by the weight-blended transforms (..., J, 4, 4); weights are (V, J)."""
    blended = torch.einsum("vj,...jab->...vab", weights, transforms[..., :3, :])
    return (blended[..., :3] @ vertices[..., None])[..., 0] + blended[..., 3]
