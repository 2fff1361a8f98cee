"""LASOR's losses with homoscedastic-uncertainty weighting (Kendall et al.), as in the paper:

``L = sum_x L_x / sigma_x^2 + log(prod sigma_x)`` over vertices, 3D joints, pose, shape, 2D keypoints and
silhouette, sigma learned, initialised to the paper's 1, 1, 0.1, 0.1, 0.1, 0.1.

* ``v``, ``j3d``: squared errors of the (coarse) vertices and 24 joints, pelvis-centred, metres;
* ``pose``: squared error of the rotation matrices; ``shape``: squared error of the betas;
* ``j2d``: weak-perspective reprojection of the 17 keypoints vs the true ones, normalised crop coordinates,
  over keypoints visible in the input (the paper's omega_i);
* ``sil``: the paper renders the predicted silhouette with a differentiable renderer (NMR). The project's
  rasterizer gives depth gradients but no silhouette gradients, so the silhouette term here is a symmetric
  chamfer distance in the crop between the projected predicted vertices and pixels of the true (amodal)
  silhouette: it pulls the body into the silhouette and makes it fill it, which is what the paper's loss does.
"""

from __future__ import annotations

import torch
from torch import nn

from backend.lasor.body import LightBody

TERMS = ("v", "j3d", "pose", "shape", "j2d", "sil")
INIT_SIGMA = (1.0, 1.0, 0.1, 0.1, 0.1, 0.1)


def weak_perspective(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) body points (before translation), cam (B, 3) = (s, tx, ty) -> (B, N, 2) in [-1, 1] crop units."""
    return cam[:, None, :1] * (points[..., :2] + cam[:, None, 1:])


def silhouette_points(mask: torch.Tensor, count: int, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random pixel centres of each (B, R, R) mask in [-1, 1] crop units: (B, count, 2) and validity (B,)."""
    b, r = mask.shape[0], mask.shape[-1]
    flat = mask.reshape(b, -1).float()
    valid = flat.sum(1) > 0
    probs = torch.where(valid[:, None], flat, torch.ones_like(flat))
    idx = torch.multinomial(probs, count, replacement=True, generator=generator)
    xy = torch.stack([idx % r, idx // r], -1).float()
    return xy / r * 2 - 1, valid  # the rasterizer puts pixel centres at integers


class LasorLoss(nn.Module):
    def __init__(self, body: LightBody, sil_points: int = 256) -> None:
        super().__init__()
        self.body = body
        self.sil_points = sil_points
        self.log_sigma = nn.Parameter(torch.log(torch.tensor(INIT_SIGMA)))

    def terms(self, pred: dict, batch) -> dict[str, torch.Tensor]:
        body = self.body
        joints, kp, verts = body(pred["rotmats"], pred["betas"])
        with torch.no_grad():
            gt_joints, _, gt_verts = body(batch.rotmats, batch.betas)
        root, gt_root = joints[:, :1], gt_joints[:, :1]
        out = {
            "v": ((verts - root) - (gt_verts - gt_root)).pow(2).sum(-1).mean(),
            "j3d": ((joints - root) - (gt_joints - gt_root)).pow(2).sum(-1).mean(),
            "pose": (pred["rotmats"] - batch.rotmats).pow(2).sum((-1, -2)).mean(),
            "shape": (pred["betas"] - batch.betas).pow(2).mean(),
        }
        proj = weak_perspective(kp, pred["cam"])
        w = batch.visible.float()
        out["j2d"] = ((proj - batch.keypoints2d).pow(2).sum(-1) * w).sum() / w.sum().clamp(min=1.0)
        pts, valid = silhouette_points(batch.silhouette, self.sil_points)
        vproj = weak_perspective(verts, pred["cam"])
        d = torch.cdist(vproj, pts)  # (B, V, P)
        chamfer = d.amin(2).pow(2).mean(1) + d.amin(1).pow(2).mean(1)
        out["sil"] = (chamfer * valid).sum() / valid.sum().clamp(min=1)
        return out

    def forward(self, pred: dict, batch) -> tuple[torch.Tensor, dict[str, float]]:
        terms = self.terms(pred, batch)
        total = self.log_sigma.sum()
        for i, name in enumerate(TERMS):
            total = total + terms[name] * torch.exp(-2 * self.log_sigma[i])
        return total, {k: float(v.detach()) for k, v in terms.items()}
