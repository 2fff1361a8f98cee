"""Bodies re-posed through another lens, so their joints land on the same 2D joints.

The estimators fit every frame of a clip through one lens. When the camera zooms, the frame's real lens is
longer: a body seen through it must stand further away, and a rigid body cannot then project onto the same 2D
joints (perspective differs; at 1.4x zoom, 6 m away in a 640 px picture, a re-solved translation leaves 14 px,
a rigid re-fit of orientation and translation 5 px). So each zoomed row is re-fitted, joints only (forward
kinematics on the track's rest skeleton, no mesh), through its frame's intrinsics onto its ``joints2d``: the
translation, the global orientation and, held near the estimate by a prior, the joint rotations.

Levenberg-Marquardt, every row its own small problem (75 unknowns, 48 pixel residuals and 69 prior ones) but all
rows batched, with the Jacobian in closed form: turning joint j by a small vector w (in its own frame, whose
world rotation is G_j) moves every joint k below it by -[p_k - p_j]x G_j w.
"""

from __future__ import annotations

import numpy as np
import torch

from backend.body.kinematics import forward_kinematics
from backend.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from backend.geometry.camera import solve_translation

POSE_PRIOR_PX = 5.0  # pixels of residual that one radian of change in a joint's rotation weighs (the root is free)
ITERATIONS = 15
_CHUNK = 512  # rows solved together (the Jacobian's joint-by-joint terms take 0.04 MB a row)


def refit_through_lens(poses: np.ndarray, rest_joints: np.ndarray, parents: np.ndarray, pixels: np.ndarray,
                       intrinsics: np.ndarray, prior_px: float = POSE_PRIOR_PX,
                       iterations: int = ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Poses (n, J, 3) and translations (n, 3) whose joints, FK(poses, ``rest_joints``) + translation, project
    through ``intrinsics`` (n, 4: fx, fy, cx, cy) onto ``pixels`` (n, J, 2), starting from ``poses``."""
    poses = np.asarray(poses, np.float64)
    if not len(poses):
        return poses.copy(), np.zeros((0, 3))
    parts = [_Problem(poses[rows], rest_joints[rows], parents, pixels[rows], intrinsics[rows], prior_px).solve(
        iterations) for rows in (slice(start, start + _CHUNK) for start in range(0, len(poses), _CHUNK))]
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


class _Problem:
    @torch.no_grad()
    def __init__(self, poses: np.ndarray, rest: np.ndarray, parents: np.ndarray, pixels: np.ndarray,
                 intrinsics: np.ndarray, prior_px: float) -> None:
        self.start = axis_angle_to_matrix(torch.as_tensor(poses))
        self.rest = torch.as_tensor(np.asarray(rest, np.float64))
        self.parents = [int(p) for p in parents]
        self.target = torch.as_tensor(np.asarray(pixels, np.float64))
        self.k = torch.as_tensor(np.asarray(intrinsics, np.float64))
        self.prior = prior_px
        self.joints = self.start.shape[1]
        self.below = _descendants(self.parents)  # (J, J): joint k (row) moves with joint j (column)
        self.d_prior = torch.zeros(1, 3 * (self.joints - 1), 3 * self.joints + 3, dtype=torch.float64)
        self.d_prior[0, :, 3:3 * self.joints] = self.prior * torch.eye(3 * (self.joints - 1), dtype=torch.float64)
        relative = forward_kinematics(self.start, self.rest, self.parents)[0]
        self.transl0 = solve_translation(relative, self.target, self.k[:, None])

    def evaluate(self, rotations: torch.Tensor, transl: torch.Tensor, delta: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residuals (n, 2J + 3(J-1)), posed joints (n, J, 3) and their world rotations (n, J, 3, 3)."""
        joints, transforms = forward_kinematics(rotations, self.rest, self.parents)
        points = joints + transl[:, None]
        depth = points[..., 2].clamp(min=1e-3)
        u = self.k[:, None, 0] * points[..., 0] / depth + self.k[:, None, 2] - self.target[..., 0]
        v = self.k[:, None, 1] * points[..., 1] / depth + self.k[:, None, 3] - self.target[..., 1]
        residual = torch.cat([u, v, self.prior * delta[:, 1:].reshape(len(delta), -1)], dim=1)
        return residual, points, transforms[..., :3, :3]

    def jacobian(self, points: torch.Tensor, world_rotations: torch.Tensor) -> torch.Tensor:
        """(n, residuals, 3J + 3) at the current pose (rotation steps taken on the right of each joint's).

        A pixel row d (du or dv of joint k) times the move -[p_k - p_j]x G_j of joint k by a turn of joint j is
        ((p_k - p_j) x d)^T G_j: one cross product and one 3-vector product per (k, j), not 3x3 products."""
        n, j = points.shape[:2]
        depth = points[..., 2].clamp(min=1e-3)
        zeros = torch.zeros_like(depth)
        du = torch.stack([self.k[:, None, 0] / depth, zeros, -self.k[:, None, 0] * points[..., 0] / depth ** 2], -1)
        dv = torch.stack([zeros, self.k[:, None, 1] / depth, -self.k[:, None, 1] * points[..., 1] / depth ** 2], -1)
        pixel = torch.stack([du, dv], 1)  # (n, 2, k, 3)
        offset = points[:, :, None] - points[:, None, :]  # (n, k, j, 3): p_k - p_j
        turned = torch.linalg.cross(offset[:, None], pixel[:, :, :, None].expand(-1, -1, -1, j, -1), dim=-1)
        by_rotation = torch.einsum("nrkja,njac->nrkjc", turned, world_rotations) * self.below[None, None, ..., None]
        d_pixel = torch.cat([by_rotation.reshape(n, 2, j, 3 * j), pixel], dim=-1).reshape(n, 2 * j, 3 * j + 3)
        return torch.cat([d_pixel, self.d_prior.expand(n, -1, -1)], dim=1)

    @torch.no_grad()
    def solve(self, iterations: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.start)
        rotations, transl = self.start.clone(), self.transl0.clone()
        delta = torch.zeros(n, self.joints, 3, dtype=torch.float64)  # the prior's measure of the change
        residual, points, world = self.evaluate(rotations, transl, delta)
        cost = (residual ** 2).sum(1)
        damping = torch.full((n,), 1e-3, dtype=torch.float64)
        for _ in range(iterations):
            jacobian = self.jacobian(points, world)
            normal = jacobian.transpose(1, 2) @ jacobian
            gradient = (jacobian.transpose(1, 2) @ residual[..., None])[..., 0]
            scale = torch.diagonal(normal, dim1=1, dim2=2).clamp(min=1e-9)
            step = torch.linalg.solve_ex(normal + damping[:, None, None] * torch.diag_embed(scale), -gradient)[0]
            turn = step[:, :3 * self.joints].reshape(n, self.joints, 3)
            trial = (rotations @ axis_angle_to_matrix(turn), transl + step[:, 3 * self.joints:], delta + turn)
            trial_residual, trial_points, trial_world = self.evaluate(*trial)
            trial_cost = (trial_residual ** 2).sum(1)
            better = trial_cost < cost
            pick = lambda new, old: torch.where(better.view(-1, *[1] * (new.ndim - 1)), new, old)  # noqa: E731
            rotations, transl, delta = (pick(new, old) for new, old in zip(trial, (rotations, transl, delta)))
            residual, points, world = pick(trial_residual, residual), pick(trial_points, points), pick(trial_world,
                                                                                                       world)
            cost = torch.where(better, trial_cost, cost)
            damping = torch.where(better, damping / 3, damping * 4).clamp(1e-9, 1e9)
        return matrix_to_axis_angle(rotations).numpy(), transl.numpy()


def _descendants(parents: list[int]) -> torch.Tensor:
    """(J, J) float: [k, j] = 1 where joint k is j or below it."""
    below = torch.eye(len(parents), dtype=torch.float64)
    for k, parent in enumerate(parents):
        if parent >= 0:
            below[k] += below[parent]
    return below.clamp(max=1.0)


__all__ = ["POSE_PRIOR_PX", "refit_through_lens"]
