"""Pose and shape priors that need no learned (licensed) prior: anatomical joint limits plus a weighted L2.

Limits are boxes on SMPL's local axis-angle components (radians), which is accurate enough in the range people
reach. The signs follow SMPL's axes (checked on the body model): knee flexion is +x, hip flexion -x, left elbow
flexion -y and right elbow flexion +y, left hip abduction +z and right -z. A squared hinge outside the box
keeps knees and elbows from bending backwards and hinges from twisting sideways.
"""

from __future__ import annotations

import torch

from backend.body.skeleton import JOINT_NAMES

_INF = 9.0  # "no limit" for a component
# joint: ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))
LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-2.6, 0.7), (-0.9, 0.9), (-0.6, 1.3)),
    "right_hip": ((-2.6, 0.7), (-0.9, 0.9), (-1.3, 0.6)),
    "spine1": ((-0.5, 0.9), (-0.6, 0.6), (-0.5, 0.5)),
    "left_knee": ((-0.05, 2.6), (-0.15, 0.15), (-0.15, 0.15)),
    "right_knee": ((-0.05, 2.6), (-0.15, 0.15), (-0.15, 0.15)),
    "spine2": ((-0.3, 0.5), (-0.4, 0.4), (-0.3, 0.3)),
    "left_ankle": ((-0.8, 0.8), (-0.5, 0.5), (-0.4, 0.4)),
    "right_ankle": ((-0.8, 0.8), (-0.5, 0.5), (-0.4, 0.4)),
    "spine3": ((-0.3, 0.5), (-0.4, 0.4), (-0.3, 0.3)),
    "left_foot": ((-0.4, 0.4), (-0.2, 0.2), (-0.2, 0.2)),
    "right_foot": ((-0.4, 0.4), (-0.2, 0.2), (-0.2, 0.2)),
    "neck": ((-0.6, 0.8), (-0.9, 0.9), (-0.5, 0.5)),
    "left_collar": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
    "right_collar": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
    "head": ((-0.6, 0.6), (-0.9, 0.9), (-0.5, 0.5)),
    "left_shoulder": ((-1.6, 1.6), (-_INF, _INF), (-_INF, _INF)),
    "right_shoulder": ((-1.6, 1.6), (-_INF, _INF), (-_INF, _INF)),
    "left_elbow": ((-1.5, 1.5), (-2.7, 0.05), (-0.4, 0.4)),
    "right_elbow": ((-1.5, 1.5), (-0.05, 2.7), (-0.4, 0.4)),
    "left_wrist": ((-1.5, 1.5), (-1.2, 1.2), (-1.0, 1.0)),
    "right_wrist": ((-1.5, 1.5), (-1.2, 1.2), (-1.0, 1.0)),
    "left_hand": ((-0.5, 0.5), (-0.5, 0.5), (-0.5, 0.5)),
    "right_hand": ((-0.5, 0.5), (-0.5, 0.5), (-0.5, 0.5)),
}
# Relative L2 weight per joint: stiff where the images say little (spine, collars, hands, feet), loose on limbs.
L2_WEIGHTS: dict[str, float] = {
    "left_hip": 0.3, "right_hip": 0.3, "spine1": 1.0, "left_knee": 0.2, "right_knee": 0.2, "spine2": 2.0,
    "left_ankle": 1.0, "right_ankle": 1.0, "spine3": 2.0, "left_foot": 3.0, "right_foot": 3.0, "neck": 1.0,
    "left_collar": 3.0, "right_collar": 3.0, "head": 1.0, "left_shoulder": 0.2, "right_shoulder": 0.2,
    "left_elbow": 0.2, "right_elbow": 0.2, "left_wrist": 1.0, "right_wrist": 1.0, "left_hand": 3.0,
    "right_hand": 3.0,
}
BODY_JOINTS = JOINT_NAMES[1:]  # the 23 joints of the body pose (joint 0 is the global orientation)


class PosePrior(torch.nn.Module):
    """Per person: sum of hinge^2 outside the limits (weighted ``limit_weight``) + weighted L2 of the body pose."""

    def __init__(self, limit_weight: float = 10.0) -> None:
        super().__init__()
        lo = torch.tensor([[c[0] for c in LIMITS[j]] for j in BODY_JOINTS])
        hi = torch.tensor([[c[1] for c in LIMITS[j]] for j in BODY_JOINTS])
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)
        self.register_buffer("l2", torch.tensor([L2_WEIGHTS[j] for j in BODY_JOINTS])[:, None].expand(23, 3).clone())
        self.limit_weight = limit_weight

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        """body_pose (B, 23, 3) axis-angle -> (B,) prior energy."""
        outside = torch.relu(self.lo - body_pose) + torch.relu(body_pose - self.hi)
        return self.limit_weight * (outside**2).sum((1, 2)) + (self.l2 * body_pose**2).sum((1, 2))


def shape_prior(betas: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K) -> (B,): betas are unit-variance coefficients for every body model; ``mean`` (K,) is the prior's
    centre where it is not the shape space's mean (Anny's spans every age: its prior is a typical adult)."""
    return ((betas if mean is None else betas - mean) ** 2).sum(-1)
