"""The "perturbed ground truth" estimator: ground truth with the errors a monocular regressor makes.

Image-based estimators cannot run meaningfully on rendered grey meshes, and coherence corrects depth and
placement errors, not pixels: so coherence is evaluated on ground truth whose depth along the camera ray is
off by a log-normal factor (the scale ambiguity of a single view), with joint-angle and shape noise. Its
``joints2d`` are the projection of its own (wrong) 3D, as every estimator's are; its masks are the true visible
masks and its detected keypoints (``extras``) the scene's noisy ones; people with too little visible are missed,
as a detector would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.estimators.base import PersonEstimate
from backend.evaluation.scenes import SyntheticScene


@dataclass(frozen=True)
class Perturbation:
    name: str = "perturbed-gt"
    depth_sigma: float = 0.10  # log depth: about 10% of the distance
    pose_sigma: float = 0.06  # radians per joint axis
    orient_sigma: float = 0.05
    betas_sigma: float = 0.3
    min_visible_keypoints: int = 6
    min_mask_pixels: int = 150


PERTURBATIONS = {p.name: p for p in (Perturbation(), Perturbation("perturbed-gt-hard", depth_sigma=0.18))}


def perturbed_estimates(scene: SyntheticScene, body: torch.nn.Module, rng: np.random.Generator,
                        perturbation: Perturbation) -> list[PersonEstimate]:
    """Estimates for the detected people; ``extras["gt_index"]`` says which true person each one is."""
    out = []
    for i in range(scene.num_people):
        mask = scene.mask(i)
        visible = int(np.isfinite(scene.keypoints[i, :, 0]).sum())
        if visible < perturbation.min_visible_keypoints or mask.sum() < perturbation.min_mask_pixels:
            continue
        out.append(_perturb(scene, body, i, mask, rng, perturbation))
    return out


def _perturb(scene, body, i, mask, rng, perturbation) -> PersonEstimate:
    poses = scene.poses[i].copy()
    poses[0] += rng.normal(0.0, perturbation.orient_sigma, 3)
    poses[1:] += rng.normal(0.0, perturbation.pose_sigma, (23, 3))
    betas = scene.betas[i] + rng.normal(0.0, perturbation.betas_sigma, scene.betas.shape[1])
    with torch.no_grad():
        posed = body(torch.tensor(poses[None], dtype=torch.float32), torch.tensor(betas[None], dtype=torch.float32))
    root = posed.joints[0, 0].numpy().astype(np.float64)
    true_pelvis = scene.joints[i, 0].astype(np.float64)
    transl = true_pelvis * np.exp(rng.normal(0.0, perturbation.depth_sigma)) - root
    joints = posed.joints[0] + torch.tensor(transl, dtype=torch.float32)
    rows, cols = np.nonzero(mask)
    return PersonEstimate(
        poses=poses, betas=betas, transl=transl, joints2d=scene.camera.project(joints).numpy(), confidence=0.9,
        bbox=np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64), mask=mask,
        extras={"gt_index": i, "keypoints2d": scene.keypoints[i].astype(np.float32), "keypoint_layout": "smpl24",
                "keypoint_visibility": np.isfinite(scene.keypoints[i]).all(-1).astype(np.float32)},
    )
