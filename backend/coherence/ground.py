"""Ground contact: people standing on one flat floor put their feet on one plane.

A depth error along the camera ray moves a person off the floor shared by the others, so one plane fitted to
everyone's feet ties their depths together, also for people who never overlap in the image (which the
mask-based ordinal loss cannot order). Two steps, both robust:

1. ``fit_floor``: a plane through the lowest foot/ankle of every person whose feet are in view, by iteratively
   reweighted least squares (Cauchy weights), then a gate. The floor is rejected (the term is off for that
   frame) when fewer than 3 people support it, when their feet do not lie on one plane within what their depth
   errors explain (people on steps, sitting at several heights), when the plane is tilted away from the
   people's own up direction, or when it is not below the camera and below the people.
2. ``ground_targets``: per person, the log depth scale along the pelvis ray (the refinement's depth variable)
   that puts it on that floor. Where the person's instance mask shows its feet, the contact is the bottom of
   the mask: the floor point seen at that pixel fixes the depth independently of the body's estimated size
   (the image row of the feet on a known floor). Otherwise, the lowest foot of the 3D body is moved onto the
   plane (weaker: it relies on the body's own leg length, and says little when the camera is at hip height).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.coherence.contact import SPINE, bottom_vertex, instance_owner, mask_contact
from backend.geometry.camera import Camera

FEET = (7, 8, 10, 11)  # ankles and feet of SMPL's 24 joints
# Ridge rows pulling the floor's slopes (dy/dx, dy/dz) towards a level camera: depth errors move feet along
# their rays, which a freely tilted plane through a few people partly absorbs.
_TILT_PRIOR = 20.0


@dataclass(frozen=True)
class GroundGate:
    """When a fitted floor is trusted; the defaults accept the synthetic crowd's floors and reject steps."""

    min_people: int = 3
    base_residual: float = 0.06  # metres of foot height a correct depth still leaves (pose, shape, contact)
    depth_noise: float = 0.2  # log depth a monocular estimate is typically off by: feet move along their rays
    inlier_sigmas: float = 2.5  # a foot within this many tolerances of the plane supports it
    min_inlier_fraction: float = 0.8
    max_tilt_degrees: float = 20.0  # plane normal vs the people's mean up direction
    min_camera_height: float = 0.3  # metres: the floor must be below the camera ...
    min_pelvis_height: float = 0.25  # ... and below the people's pelvises
    max_log_scale: float = 0.4  # larger corrections are not a depth error the floor can explain
    mask_agreement: float = 0.3  # bottom of the mask vs the body's own sole row, in pelvis-to-sole heights
    max_cue_disagreement: float = 0.2  # log depth: mask contact vs 3D feet (a hidden foot cuts the mask short)
    feet_weight: float = 1.0  # weight of the 3D-feet target where the mask does not show the contact


@dataclass(frozen=True)
class Floor:
    """y = a x + b z + c in camera axes (y down); ``inliers``: the people that support it."""

    a: float
    b: float
    c: float
    inliers: torch.Tensor  # (N,) bool

    @property
    def normal(self) -> np.ndarray:
        """Unit normal pointing down (towards +y, into the floor)."""
        n = np.array([-self.a, 1.0, -self.b])
        return n / np.linalg.norm(n)


def _lowest_feet(joints: torch.Tensor) -> torch.Tensor:
    n = joints.shape[0]
    lowest = joints[:, FEET, 1].argmax(1)
    return joints[torch.arange(n), torch.tensor(FEET)[lowest]].double()


def _soles(vertices: torch.Tensor) -> torch.Tensor:
    """Each person's lowest vertex (largest y: camera axes point down), (N, 3)."""
    lowest = vertices[..., 1].argmax(1)
    return vertices[torch.arange(vertices.shape[0]), lowest].double()


def fit_floor(joints: torch.Tensor, joints2d: torch.Tensor, camera: Camera, gate: GroundGate | None = None,
              vertices: torch.Tensor | None = None) -> Floor | None:
    """The floor under people (N, 24, 3 joints; N, 24, 2 pixels), or None when the gate rejects it. With
    ``vertices`` (N, V, 3) it goes through the soles (lowest vertices), else through the lowest foot joints."""
    gate = gate or GroundGate()
    n = joints.shape[0]
    if n < gate.min_people:
        return None
    foot = _lowest_feet(joints) if vertices is None else _soles(vertices)
    pix = joints2d[:, FEET].double()
    in_view = ((pix[..., 0] >= 0) & (pix[..., 0] < camera.width) & (pix[..., 1] >= 0)
               & (pix[..., 1] < camera.height) & torch.isfinite(pix).all(-1)).all(1)
    if int(in_view.sum()) < gate.min_people:
        return None
    pelvis = joints[:, 0].double()
    up = (joints[:, SPINE[1]] - joints[:, SPINE[0]]).double()
    up = up / up.norm(dim=1, keepdim=True).clamp(min=1e-9)
    mean_up = up[in_view].mean(0)
    mean_up = mean_up / mean_up.norm().clamp(min=1e-9)
    if float(-mean_up[1]) < np.cos(np.radians(60.0)):  # people lying or upside down: no floor to speak of
        return None
    # the tilt prior is a level camera: the spine (pelvis -> neck) leans a few degrees forward even in people
    # standing straight, so the people's mean up direction only gates the plane (below)
    a0, b0 = 0.0, 0.0
    prior = torch.tensor([[_TILT_PRIOR, 0, 0], [0, _TILT_PRIOR, 0]], dtype=torch.float64)
    prior_rhs = torch.tensor([[_TILT_PRIOR * a0], [_TILT_PRIOR * b0]], dtype=torch.float64)
    design = torch.stack([foot[:, 0], foot[:, 2], torch.ones_like(foot[:, 0])], 1)
    # tolerance of each foot's height: what a typical depth error (moving the foot along the pelvis ray) leaves
    tolerance = gate.base_residual + gate.depth_noise * pelvis[:, 1].abs()
    weights = in_view.double()
    for _ in range(8):  # IRLS with Cauchy weights on tolerance-normalised residuals
        w = (weights / tolerance.square()).sqrt()[:, None]
        rows = torch.cat([design * w, prior])
        rhs = torch.cat([foot[:, 1:2] * w, prior_rhs])
        coef = torch.linalg.lstsq(rows, rhs).solution[:, 0]
        residual = (foot[:, 1] - design @ coef) / tolerance
        weights = in_view.double() / (1.0 + (residual / gate.inlier_sigmas) ** 2)
    a, b, c = coef.tolist()
    inliers = in_view & (residual.abs() < gate.inlier_sigmas)
    floor = Floor(a, b, c, inliers)
    if int(inliers.sum()) < gate.min_people or float(inliers.sum()) < gate.min_inlier_fraction * float(in_view.sum()):
        return None  # feet at several heights (steps, people sitting on things), or too few people
    normal = torch.tensor(floor.normal)
    if float(-(normal @ mean_up)) < np.cos(np.radians(gate.max_tilt_degrees)):
        return None  # a plane tilted away from how the people stand is not their floor
    if c / float(torch.linalg.norm(torch.tensor([-a, 1.0, -b]))) < gate.min_camera_height:
        return None  # the floor must be below the camera
    up_axis = torch.tensor([-a, 1.0, -b], dtype=torch.float64) / float(normal.norm() * np.linalg.norm([-a, 1.0, -b]))
    if bool(((foot @ up_axis)[in_view] < gate.min_camera_height).any()):
        return None  # feet at or above the camera's height: not one floor under a camera above it (steps, slopes)
    below = (design[:, :2] @ coef[:2].double() + c - pelvis[:, 1]) * float(normal[1])
    if float(below[inliers].median()) < gate.min_pelvis_height:
        return None  # ... and below the people
    return floor


def ground_targets(joints: torch.Tensor, vertices: torch.Tensor, joints2d: torch.Tensor, camera: Camera,
                   masks: list[np.ndarray | None] | None = None, gate: GroundGate | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per person: the log depth scale along the pelvis ray that puts it on the common floor, and the target's
    weight (0: none; 1: the mask shows the foot contact; less: only the 3D feet, by how much the floor says).

    ``joints`` (N, 24, 3), ``vertices`` (N, V, 3), ``joints2d`` (N, 24, 2) of the current estimates;
    ``masks``: full-resolution instance masks (None where unknown)."""
    gate = gate or GroundGate()
    n = joints.shape[0]
    zeros = torch.zeros(n, dtype=joints.dtype)
    floor = fit_floor(joints, joints2d, camera, gate, vertices)
    if floor is None:
        return zeros, zeros.clone()
    a, b, c = floor.a, floor.b, floor.c
    normal = torch.tensor([-a, 1.0, -b], dtype=torch.float64)
    pelvis = joints[:, 0].double()
    along = pelvis @ normal  # how fast the feet's height above the floor changes with the log depth scale
    foot = _soles(vertices)
    safe = along.where(along.abs() > 1e-6, torch.ones_like(along))
    ratio = 1.0 + (c - foot @ normal) / safe
    target = ratio.clamp(min=1e-6).log()
    weight = (floor.inliers & (ratio > 0) & (along.abs() > 0.1)).double() * (along.abs() / 0.8).clamp(max=1.0) ** 2
    owner = instance_owner(masks, camera) if masks is not None else None
    contact_seen = torch.zeros(n, dtype=torch.bool)
    for k in range(n):
        mask = None if masks is None else masks[k]
        if mask is None or not bool(floor.inliers[k]):
            continue
        contact = mask_contact(np.asarray(mask), vertices[k].double(), pelvis[k], camera, owner, k,
                                gate.mask_agreement)
        if contact is None:
            continue
        u, v = contact
        denom = _ray_height(u, v, camera, a, b)
        if denom <= 1e-3:
            continue  # the contact pixel is at or above the horizon
        depth = c / denom  # the floor point the mask's contact pixel sees
        bottom = vertices[k].double()[bottom_vertex(vertices[k].double(), camera)]
        scale = 1.0 + (depth - float(bottom[2])) / float(pelvis[k, 2])
        if scale <= 0:
            continue
        log_scale = torch.tensor(np.log(scale), dtype=torch.float64)
        pixel = 1.0 / (float(denom) * camera.fy)  # log depth per pixel of contact row: the mask's own precision
        log_scale = log_scale.sign() * (log_scale.abs() - pixel).clamp(min=0)
        if weight[k] > 0 and abs(float(log_scale - target[k])) > gate.max_cue_disagreement:
            continue  # a hidden foot (occluder, edge of the picture) cuts the mask short: keep the 3D cue
        target[k], contact_seen[k] = log_scale, True
    weight = torch.where(contact_seen, 1.0, weight * gate.feet_weight)
    ok = (weight > 0) & (target.abs() < gate.max_log_scale)
    return torch.where(ok, target, 0.0).to(joints.dtype), torch.where(ok, weight, 0.0).to(joints.dtype)


def _ray_height(u: float, v: float, camera: Camera, a: float, b: float) -> float:
    """How fast the pixel's ray drops below the camera, relative to the floor (y = a x + b z + c): the floor
    point seen at (u, v) is at depth c / this."""
    return (v - camera.cy) / camera.fy - a * (u - camera.cx) / camera.fx - b
