"""Optional ground-plane prior: people standing on one floor put their feet on one plane.

A depth error along the camera ray moves a person's feet off the floor shared by the others, so fitting one
plane to everyone's feet and asking each person to stand on it ties their depths together, also for people who
never overlap in the image (which the mask-based ordinal loss cannot order). It assumes standing people on a
flat floor: it is off by default and skips people whose feet are outside the image or far off the plane.
"""

from __future__ import annotations

import torch

FEET = (7, 8, 10, 11)  # ankles and feet of SMPL's 24 joints
# Ridge rows pulling the floor's slopes (dy/dx, dy/dz) towards a level camera: depth errors move feet along
# their rays, which a freely tilted plane through a few people partly absorbs.
_TILT_PRIOR = torch.tensor([[20.0, 0.0, 0.0], [0.0, 20.0, 0.0]])


def ground_targets(joints: torch.Tensor, joints2d: torch.Tensor, width: int, height: int,
                   max_log_scale: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per person (N, 24, 3 joints; N, 24, 2 pixels): the log scale of the pelvis along its ray (the refinement's
    depth variable) that puts its lowest foot on the common floor, and whether that target is usable.

    Floor: y = a x + b z + c (camera axes, y down), fitted robustly; unusable when the camera is near pelvis
    height (the floor then says little about depth)."""
    n = joints.shape[0]
    lowest = joints[:, FEET, 1].argmax(1)
    foot = joints[torch.arange(n), torch.tensor(FEET)[lowest]].double()
    pix = joints2d[:, FEET]
    in_view = ((pix[..., 0] >= 0) & (pix[..., 0] < width) & (pix[..., 1] >= 0) & (pix[..., 1] < height)).all(1)
    usable = in_view.clone()
    if int(usable.sum()) < 3:
        return torch.zeros(n, dtype=joints.dtype), torch.zeros(n, dtype=torch.bool)
    weights = usable.double()
    design = torch.stack([foot[:, 0], foot[:, 2], torch.ones_like(foot[:, 0])], 1)
    for _ in range(5):  # iteratively reweighted least squares (Cauchy weights), robust to people off the floor
        w = weights.sqrt()[:, None]
        rows = torch.cat([design * w, _TILT_PRIOR.to(design)])  # a tilt must be supported by many people
        target = torch.cat([foot[:, 1:2] * w, torch.zeros(2, 1, dtype=design.dtype)])
        coef = torch.linalg.lstsq(rows, target).solution[:, 0]
        residual = foot[:, 1] - design @ coef
        scale = 1.4826 * residual[usable].abs().median().clamp(min=0.01)
        weights = usable.double() / (1.0 + (residual / (2.0 * scale)) ** 2)
    a, b, c = coef.tolist()
    normal = torch.tensor([-a, 1.0, -b], dtype=foot.dtype)
    pelvis = joints[:, 0].double()
    along = pelvis @ normal  # how fast the foot's height changes when the pelvis slides along its ray
    ratio = 1.0 + (c - foot @ normal) / along.where(along.abs() > 1e-6, torch.ones_like(along))
    ok = usable & (along.abs() > 0.2) & (ratio > 0)
    log_scale = torch.where(ok, ratio.clamp(min=1e-6).log(), torch.zeros_like(ratio))
    ok &= log_scale.abs() < max_log_scale
    return log_scale.to(joints.dtype), ok
