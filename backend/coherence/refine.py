"""Test-time coherence refinement after Jiang et al. (CVPR 2020): move people so they do not interpenetrate and
their depth order agrees with the observed instance masks, while their 2D projections stay where they were.

The free variables are per observation: a log-scale ``s`` of the pelvis along its camera ray (depth, the
direction a monocular estimate is least sure of) and a small lateral offset, bounded to ``max_lateral`` of the
person's image size: a body moved beside its person is worse than two bodies that touch. The body keeps its
size, so a move along the ray rescales its drawing about the pelvis and takes the head off the face it was
fitted to; ``s`` is bounded too (``max_depth_drift``: no joint's drawing moves by more than that fraction of
the person's size), around the current depth and the depth at which the body is drawn the size the detector saw
its person (``coherence.drawing``): a fitted body stays on its person, a regressed one drawn at the wrong size
may still go where it is drawn right. Poses and shapes are kept; meshes therefore move rigidly, so each person's
penetration field is built once (when a pair's boxes first overlap) and shifted. Terms:

- interpenetration: robust sum of other people's vertices inside each person's field (paper Eq. 3);
- ordinal depth: ranking loss on pixels where the render and the masks disagree (paper Eq. 4);
- contact order: of people standing below the camera, the one whose feet meet the ground lower in the image
  is nearer (``coherence.contact``); orders people whose silhouettes do not overlap;
- reprojection drift: the projected pelvis and the 2D joint pattern (up to scale) stay near the input
  ``joints2d``, normalised by the person's size;
- depth prior: the log depth scale stays near 0;
- smoothness (clips): corrections of one track change slowly from frame to frame.

Every term is zero with zero gradient at the start when the scene is already coherent, so such a scene does
not move.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from backend.coherence.contact import (
    ContactGate,
    bottom_vertex,
    contact_order,
    detected_contact_row,
    foot_vertices,
    lowest_seen_row,
)
from backend.coherence.drawing import detected_scale
from backend.coherence.fields import LazyField
from backend.coherence.ground import ground_targets
from backend.coherence.losses import (
    disagreement_pairs,
    interpenetration_loss,
    observed_index_map,
    order_excess,
    ordinal_depth_loss,
    pair_penetration,
)
from backend.coherence.proxy import coherence_mesh
from backend.estimators.base import PersonEstimate
from backend.fitting.adam import Adam
from backend.geometry.camera import Camera
from backend.geometry.render import interpolate_depth, rasterize
from backend.runtime.torch_threads import single_thread


@dataclass(frozen=True)
class CoherenceOptions:
    """Weights and budgets of the refinement; the defaults are tuned on the synthetic crowd set."""

    order_iterations: int = 40  # first stage: depth order only (swapping people passes through a collision)
    iterations: int = 40  # second stage: all terms
    learning_rate: float = 0.01  # Adam step: about 1% of depth per iteration
    render_width: int = 160  # masks and depth are compared at this width
    rerender_every: int = 3  # between rasterizations depth is re-evaluated with the triangles held fixed
    grid_resolution: int = 32
    collision_weight: float = 1.0
    collision_sigma: float = 2.0  # Geman-McClure scale, in metre-vertices of penetration
    depth_order_weight: float = 1.0
    depth_temperature: float = 0.05  # metres: how decisively an order is enforced
    min_disagreement_pixels: int = 4
    min_disagreement_fraction: float = 0.08  # of the smaller silhouette: thin-limb overlaps are misalignment
    max_depth_ratio: float = 1.35  # a swap needing more depth change than this is misalignment, not order
    reprojection_weight: float = 20.0
    depth_prior_weight: float = 0.5
    smoothness_weight: float = 50.0
    lateral: bool = True  # also allow a small image-plane offset (helps side-by-side collisions)
    max_lateral: float = 0.03  # ... of at most this fraction of the person's image size
    # A move along the ray rescales the person's drawing about the pelvis (the body keeps its size): bounded so
    # that no joint of the drawing moves by more than this fraction of the person's image size beyond the range
    # between its depth and the depth that draws it the detected size (a fitted body pushed 20 % back draws its
    # head a face width below the face it was fitted to). None: unbounded.
    max_depth_drift: float | None = 0.03
    min_penetration: float = 0.25  # metre-vertices: less is touching (arms brushing), not a collision
    check_every: int = 5  # iterations between checks whether the scene is coherent yet (then it stops) ...
    min_progress: float = 0.1  # ... or whether what is left changed by this fraction over two checks
    contact_order_weight: float = 1000.0  # 0: off (see coherence.contact)
    contact_margin: float = 0.03  # log depth: how far beyond a restored contact order people are put
    contact_gate: ContactGate = ContactGate()
    ground_weight: float = 0.0  # > 0: everyone stands on one fitted, gated floor (see coherence.ground)
    ground_scale: float = 0.15  # log depth: Cauchy scale of the floor term (a wrong contact cannot drag far)
    ground_deadband: float = 0.02  # log depth: a person this close to the floor is on it (coherent scenes stay)


@dataclass
class _Observation:
    frame: int
    track: int
    vertices: torch.Tensor  # (V, 3) posed, detached
    joints: torch.Tensor  # (24, 3)
    anchor: torch.Tensor  # (24, 2) input joints2d
    size: float  # pixels: the person's 2D extent, to normalise reprojection drift
    field: LazyField
    contact: tuple[float, float] | None  # detected contact row and its uncertainty (see coherence.contact)
    seen_row: float  # the feet are at least this low in the image (NaN: unknown)
    detected_scale: float  # the detected keypoints' size over the drawn body's (1: unknown; coherence.drawing)


def refine_people(
    people: Sequence[PersonEstimate],
    body: torch.nn.Module,
    camera: Camera,
    masks: Sequence[np.ndarray | None] | None = None,
    options: CoherenceOptions | None = None,
) -> list[PersonEstimate]:
    """One frame: new estimates with updated ``transl`` and ``joints2d`` (poses and betas unchanged).

    ``masks``: one observed instance mask (H, W) per person (None where unknown); by default each
    person's own ``mask``.
    """
    frame_masks = None if masks is None else [list(masks)]
    return refine_clip([list(people)], None, body, camera, frame_masks, options)[0]


def refine_clip(
    frames: Sequence[Sequence[PersonEstimate]],
    track_ids: Sequence[Sequence[int]] | None,
    body: torch.nn.Module,
    camera: Camera,
    masks: Sequence[Sequence[np.ndarray | None]] | None = None,
    options: CoherenceOptions | None = None,
) -> list[list[PersonEstimate]]:
    """A chunk of frames solved jointly; corrections of the same ``track_ids[f][k]`` are kept smooth in time.

    ``track_ids`` None: no temporal coupling. Returns new estimates in the same nesting as ``frames``.
    """
    with single_thread():  # many tiny tensors: threads only add overhead (see backend.runtime.torch_threads)
        return _refine_clip(frames, track_ids, body, camera, masks, options)


def _refine_clip(
    frames: Sequence[Sequence[PersonEstimate]],
    track_ids: Sequence[Sequence[int]] | None,
    body: torch.nn.Module,
    camera: Camera,
    masks: Sequence[Sequence[np.ndarray | None]] | None,
    options: CoherenceOptions | None,
) -> list[list[PersonEstimate]]:
    options = options or CoherenceOptions()
    if masks is None:
        masks = [[p.mask for p in people] for people in frames]
    device = body.v_template.device
    small = camera.resized(options.render_width)
    observations = _observations(frames, track_ids, body, camera, options, device)
    observed = [torch.as_tensor(observed_index_map(m, small.height, small.width), device=device) for m in masks]
    problem = _Problem(observations, observed, coherence_mesh(body).faces, small, camera, options, masks)
    shifts = problem.solve()
    return _updated(frames, observations, shifts, camera)


def _observations(frames, track_ids, body, camera, options, device) -> list[_Observation]:
    out: list[_Observation] = []
    mesh = coherence_mesh(body)
    feet = foot_vertices(mesh.skin_weights)
    for f, people in enumerate(frames):
        if not people:
            continue
        dtype = body.v_template.dtype
        poses = torch.as_tensor(np.stack([p.poses for p in people]), dtype=dtype, device=device)
        betas = torch.as_tensor(np.stack([p.betas for p in people]), dtype=dtype, device=device)
        transl = torch.as_tensor(np.stack([p.transl for p in people]), dtype=dtype, device=device)
        with torch.no_grad():
            posed = body(poses, betas, transl)
        vertices = mesh.select(posed.vertices)
        for k, person in enumerate(people):
            anchor = torch.as_tensor(person.joints2d, dtype=dtype, device=device)
            extent = (anchor.amax(0) - anchor.amin(0)).max().item()
            track = track_ids[f][k] if track_ids is not None else -1 - len(out)
            field = LazyField(vertices[k], mesh.faces, options.grid_resolution)
            drawn = camera.project(vertices[k]).cpu().numpy()
            contact = detected_contact_row(person.extras, np.asarray(person.joints2d), drawn, feet,
                                           options.contact_gate)
            seen = lowest_seen_row(person.extras, np.asarray(person.joints2d), drawn, feet, options.contact_gate)
            scale = detected_scale(person.extras, np.asarray(person.joints2d))
            out.append(_Observation(f, track, vertices[k], posed.joints[k], anchor, max(extent, 1.0), field,
                                    contact, seen, 1.0 if scale is None else scale))
    return out


class _Problem:
    """The joint objective over all observations of a chunk, and its Adam loop."""

    def __init__(self, observations: list[_Observation], observed: list[torch.Tensor], faces: torch.Tensor,
                 small: Camera, camera: Camera, options: CoherenceOptions,
                 masks: Sequence[Sequence[np.ndarray | None]] | None = None) -> None:
        self.obs, self.observed, self.faces = observations, observed, faces
        self.small, self.camera, self.options = small, camera, options
        self.frames = sorted({o.frame for o in observations})
        self.members = {f: [i for i, o in enumerate(observations) if o.frame == f] for f in self.frames}
        self.pairs: dict[int, set[tuple[int, int]]] = {f: set() for f in self.frames}
        self.fragments: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.pelvis = torch.stack([o.joints[0] for o in observations]) if observations else torch.zeros(0, 3)
        sizes = torch.tensor([o.size for o in observations], dtype=self.pelvis.dtype, device=self.pelvis.device)
        self.lateral_bound = options.max_lateral * sizes / (0.5 * (camera.fx + camera.fy))  # x/z units
        self.depth_bound = _depth_bounds(observations, sizes, options.max_depth_drift)
        self.links = _track_links(observations)
        empty = torch.zeros(0, 3, dtype=self.pelvis.dtype, device=self.pelvis.device)
        self.vertex_lo = torch.stack([o.vertices.amin(0) for o in observations]) if observations else empty
        self.vertex_hi = torch.stack([o.vertices.amax(0) for o in observations]) if observations else empty
        self.ground, self.ground_weights = self._ground_targets(masks)
        self.grounded = self.ground_weights > 0
        self.sole_z = torch.stack([o.vertices[bottom_vertex(o.vertices, camera), 2] for o in observations]) \
            if observations else torch.zeros(0)
        self.contact_pairs, self.contact_margins = self._contact_pairs(masks)
        self.contact_active = self._reachable_contacts()
        self.contact_row = {tuple(p): r for r, p in enumerate(self.contact_pairs.tolist())}

    def _contact_pairs(self, masks) -> tuple[torch.Tensor, torch.Tensor]:
        """(C, 2) observation indices (near, far) that the contact rows order, and each pair's hinge margin:
        ``contact_margin`` where the estimates violate the order, else their current gap if smaller (so the term
        is zero at the start for pairs in order, and keeps them from crossing)."""
        pairs: list[tuple[int, int]] = []
        if self.options.contact_order_weight > 0:
            for f in self.frames:
                idx = self.members[f]
                joints = torch.stack([self.obs[i].joints for i in idx]).cpu()
                verts = torch.stack([self.obs[i].vertices for i in idx]).cpu()
                found = contact_order(joints, verts, self.camera, None if masks is None else list(masks[f]),
                                      [self.obs[i].contact for i in idx], [self.obs[i].seen_row for i in idx],
                                      self.options.contact_gate)
                pairs.extend((idx[a], idx[b]) for a, b in found)
        index = torch.tensor(pairs, dtype=torch.long, device=self.pelvis.device).reshape(-1, 2)
        log_depth = self._sole_depth(torch.zeros_like(self.pelvis[:, 0])).log()
        gap = log_depth[index[:, 1]] - log_depth[index[:, 0]]  # > 0: in order
        margin = torch.where(gap > 0, gap.clamp(max=self.options.contact_margin), self.options.contact_margin)
        return index, margin

    def log_scale(self, params: torch.Tensor) -> torch.Tensor:
        """(N,) each person's log depth change: the free parameter squashed into ``depth_bound`` (0 at 0)."""
        if self.depth_bound is None:
            return params[:, 0]
        low, high = self.depth_bound
        centre, half = 0.5 * (low + high), 0.5 * (high - low)
        return centre + half * torch.tanh(params[:, 0] / half + torch.atanh(-centre / half))

    def _sole_depth(self, log_scale: torch.Tensor) -> torch.Tensor:
        """(N,) depth of each person's lowest point after scaling the pelvis depth by exp(log_scale): the contact
        rows order where people touch the ground, which can be a stride in front of or behind the pelvis."""
        return (self.sole_z + self.pelvis[:, 2] * torch.expm1(log_scale)).clamp(min=1e-3)

    def _contact_violation(self, params: torch.Tensor) -> torch.Tensor:
        """(C,) how far each contact-ordered pair is from its margin (> 0: violated)."""
        if not self.contact_pairs.numel():
            return params.new_zeros(0)
        log_depth = self._sole_depth(self.log_scale(params)).log()
        near, far = self.contact_pairs[:, 0], self.contact_pairs[:, 1]
        violation = log_depth[near] - log_depth[far] + self.contact_margins
        return torch.where(self.contact_active, violation, -1.0)

    def _ground_targets(self, masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Per observation: the floor's log depth target and its weight (0: no usable floor or contact)."""
        n = len(self.obs)
        target = torch.zeros(n, dtype=self.pelvis.dtype, device=self.pelvis.device)
        weight = torch.zeros(n, dtype=self.pelvis.dtype, device=self.pelvis.device)
        if self.options.ground_weight <= 0:
            return target, weight
        for f in self.frames:
            idx = self.members[f]
            joints = torch.stack([self.obs[i].joints for i in idx]).cpu()
            verts = torch.stack([self.obs[i].vertices for i in idx]).cpu()
            pixels = torch.stack([self.obs[i].anchor for i in idx]).cpu()
            frame_masks = None if masks is None else list(masks[f])
            log_scale, w = ground_targets(joints, verts, pixels, self.camera, frame_masks)
            target[idx], weight[idx] = log_scale.to(target), w.to(weight)
        return target, weight

    def _contact_excess(self, params: torch.Tensor) -> float:
        """Summed violation of the contact orders beyond half their margins: an order restored short of its
        whole margin (the hinge and the depth prior balance just inside it) is restored."""
        if not self.contact_pairs.numel():
            return 0.0
        return float((self._contact_violation(params) - 0.5 * self.contact_margins).clamp(min=0).sum())

    def _floor_excess(self, params: torch.Tensor) -> float:
        """Summed log depth by which grounded people are off the floor beyond ``ground_deadband``."""
        off = (self.ground - self.log_scale(params)).abs() - self.options.ground_deadband
        return float(off[self.grounded].clamp(min=0).sum())

    def shifts(self, params: torch.Tensor) -> torch.Tensor:
        """Translation change (N, 3) of each observation: pelvis scaled along its ray, plus a bounded lateral
        offset (``max_lateral`` of the person's image size)."""
        along = self.pelvis * torch.expm1(self.log_scale(params))[:, None]
        offset = torch.tanh(params[:, 1:3]) * self.lateral_bound[:, None]
        lateral = torch.cat([offset, torch.zeros_like(params[:, :1])], 1) * self.pelvis[:, 2:3]
        return along + (lateral if self.options.lateral else 0)

    def solve(self) -> torch.Tensor:
        n = len(self.obs)
        params = torch.zeros(n, 3, dtype=self.pelvis.dtype, device=self.pelvis.device, requires_grad=True)
        if n == 0 or not self._incoherent():
            return self.shifts(params).detach()
        if any(self.pairs.values()):
            ended = self._descend(params, self.options.order_iterations, collisions=False)
            if ended is not None and not ended[2]:
                return self.shifts(params).detach()  # nobody inside anyone: the collision stage would add nothing
        self._descend(params, self.options.iterations, collisions=True)
        return self.shifts(params).detach()

    def _descend(self, params: torch.Tensor, iterations: int, collisions: bool
                 ) -> tuple[float, float, float] | None:
        """Adam steps on ``params``; what was left to fix when it ended early (coherent or stuck), else None."""
        optimizer = Adam([([params], self.options.learning_rate)])
        checked: list[tuple[float, float, float]] = []
        for step in range(iterations):
            optimizer.zero_grad()
            self.loss(params, rerender=step % self.options.rerender_every == 0, collisions=collisions).backward()
            optimizer.step()
            if (step + 1) % self.options.check_every or self.links.numel():
                continue  # (a coupled clip runs on: its smoothness has no end point to check for)
            earlier = checked[-2] if len(checked) > 1 else None
            contact = self._contact_left(params.detach())
            if contact > 0 and (earlier is None or not self._stuck(earlier[:1], (contact,))):
                checked.append((contact, math.nan, math.nan))  # still moving on a contact order: no render needed
                continue
            left = self._left_to_fix(params.detach())
            if not any(left) or (earlier is not None and self._stuck(earlier, left)):
                return left  # coherent now, or what is left does not yield to the bounded moves
            checked.append(left)
        return None

    def _stuck(self, before: tuple[float, ...], now: tuple[float, ...]) -> bool:
        """Whether no kind of incoherence changed by ``min_progress`` of itself over two checks (people held at
        their bounds: descents that would run their whole length and move nobody). Two, as penetration can
        rise for a check while people slide past each other."""
        return all(math.isfinite(b) and abs(b - n) <= self.options.min_progress * b for b, n in zip(before, now))

    def _incoherent(self, params: torch.Tensor | None = None) -> bool:
        """Anything (left) to fix? (Keeps a coherent scene exactly where it is; a violated contact order answers
        without a render.)"""
        return self._contact_left(params) > 0 or any(self._left_to_fix(params))

    def _contact_left(self, params: torch.Tensor | None = None) -> float:
        """The first of :meth:`_left_to_fix`, without rendering: violated contact orders and people off the floor."""
        if params is None:
            params = torch.zeros(len(self.obs), 3, dtype=self.pelvis.dtype, device=self.pelvis.device)
        with torch.no_grad():
            return self._contact_excess(params) + self._floor_excess(params)

    def _left_to_fix(self, params: torch.Tensor | None = None) -> tuple[float, float, float]:
        """How incoherent the scene is, by kind (all 0: coherent): the excess of violated contact orders and of
        people off the floor (log depth), how far behind their back people the masks' front people are drawn
        (metres; inf for a pair found just now) and the penetration beyond ``min_penetration``."""
        if params is None:
            params = torch.zeros(len(self.obs), 3, dtype=self.pelvis.dtype, device=self.pelvis.device)
        contact = self._contact_left(params)
        with torch.no_grad():
            shifts = self.shifts(params)
            order = penetration = 0.0
            for f in self.frames:
                idx = self.members[f]
                verts = [self.obs[i].vertices + shifts[i] for i in idx]
                had = bool(self.pairs[f])
                self._ordinal(f, verts, rerender=True)  # renders, and finds the disagreeing pairs of this frame
                if self.pairs[f]:
                    order += self._order_excess(f, verts) if had else float("inf")
                depths = pair_penetration(verts, [self.obs[i].field for i in idx], shifts[idx],
                                          self._boxes(idx, shifts))
                penetration += sum(max(v.item() - self.options.min_penetration, 0.0) for v in depths.values())
        return contact, order, penetration

    def _boxes(self, idx: list[int], shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The boxes of these people's shifted vertices: each mesh moves rigidly, so its first box moved (the
        same numbers as the moved vertices' own box, without a pass over every vertex)."""
        moved = shifts[idx].detach()
        return self.vertex_lo[idx] + moved, self.vertex_hi[idx] + moved

    def loss(self, params: torch.Tensor, rerender: bool, collisions: bool = True) -> torch.Tensor:
        o = self.options
        shifts = self.shifts(params)
        total = params.new_zeros(())
        for f in self.frames:
            idx = self.members[f]
            verts = [self.obs[i].vertices + shifts[i] for i in idx]
            if collisions:
                total = total + o.collision_weight * interpenetration_loss(
                    verts, [self.obs[i].field for i in idx], shifts[idx], o.collision_sigma, self._boxes(idx, shifts))
            if self.pairs[f]:  # without disagreeing pairs, only the coherence checks render (to find new ones)
                total = total + o.depth_order_weight * self._ordinal(f, verts, rerender)
        joints = torch.stack([ob.joints for ob in self.obs]) + shifts[:, None]
        anchors = torch.stack([ob.anchor for ob in self.obs])
        size = torch.tensor([ob.size for ob in self.obs], dtype=joints.dtype, device=joints.device)
        drift = _drift(self.camera.project(joints), anchors) / size.square()
        depth_prior = self.log_scale(params).square().sum()
        total = total + o.reprojection_weight * drift.sum() + o.depth_prior_weight * depth_prior
        if self.contact_pairs.numel():
            total = total + o.contact_order_weight * self._contact_violation(params).clamp(min=0).square().sum()
        if self.grounded.any():
            off = (self.log_scale(params) - self.ground)[self.grounded]
            off = off.sign() * (off.abs() - o.ground_deadband).clamp(min=0)
            cauchy = o.ground_scale ** 2 * torch.log1p((off / o.ground_scale).square())
            total = total + o.ground_weight * (self.ground_weights[self.grounded] * cauchy).sum()
        if self.links.numel():
            step = shifts[self.links[:, 0]] - shifts[self.links[:, 1]]
            total = total + o.smoothness_weight * step.square().sum()
        return total

    def _ordinal(self, frame: int, verts: list[torch.Tensor], rerender: bool) -> torch.Tensor:
        """Ordinal depth loss of one frame; finds newly disagreeing pairs whenever it rasterizes."""
        o = self.options
        if rerender or frame not in self.fragments:
            frags = rasterize([v.detach() for v in verts], self.faces, self.small)
            self.fragments[frame] = (frags.face, frags.bary)
            found = disagreement_pairs(frags.index_map, self.observed[frame], frags.silhouettes,
                                       o.min_disagreement_pixels, o.min_disagreement_fraction)
            # the first evidence fixes a pair's order: while people pass through each other to swap, the
            # render briefly contradicts the masks the other way round too
            z = torch.stack([v[:, 2].mean() for v in verts]).detach()
            self.pairs[frame].update(p for p in found if (p[1], p[0]) not in self.pairs[frame]
                                     and z[p[0]] < o.max_depth_ratio * z[p[1]])
            self._drop_contradicted_contacts(frame)
        if not self.pairs[frame]:
            return verts[0].new_zeros(())
        face, bary = self.fragments[frame]
        depth = interpolate_depth(face, bary, verts, self.faces)
        return ordinal_depth_loss(depth, self.observed[frame], sorted(self.pairs[frame]), o.depth_temperature)

    def _order_excess(self, frame: int, verts: list[torch.Tensor]) -> float:
        face, bary = self.fragments[frame]
        depth = interpolate_depth(face, bary, verts, self.faces)
        return order_excess(depth, self.observed[frame], sorted(self.pairs[frame]))

    def _reachable_contacts(self) -> torch.Tensor:
        """(C,) bool: the contact orders the bounded depth moves can restore (the near person at its nearest, the
        far one at its farthest). Enforcing one they cannot would pin both people at their bounds for nothing."""
        active = torch.ones(len(self.contact_pairs), dtype=torch.bool, device=self.pelvis.device)
        if self.depth_bound is None or not self.contact_pairs.numel():
            return active
        low, high = self.depth_bound
        near, far = self.contact_pairs[:, 0], self.contact_pairs[:, 1]
        best = self._sole_depth(low).log()[near] - self._sole_depth(high).log()[far] + self.contact_margins
        return best <= 0

    def _drop_contradicted_contacts(self, frame: int) -> None:
        """Occlusion seen in the masks outranks the contact rows (a stray foot keypoint, a person on a step)."""
        idx = self.members[frame]
        for front, back in self.pairs[frame]:
            row = self.contact_row.get((idx[back], idx[front]))
            if row is not None:
                self.contact_active[row] = False


def _depth_bounds(observations: list[_Observation], sizes: torch.Tensor, drift: float | None
                  ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(N,), (N,): the range of each person's log depth change. Scaling the depth by exp(s) moves a joint r
    pixels from the pelvis by r |1 - exp(-s)|; it may move by ``drift`` of the person's image size, d = drift *
    size / r, i.e. |s| <= log(1 + d) (the tighter of the two sides), around both the current depth and the depth
    that draws the body the size the detector saw it (``detected_scale`` k: s = -log k). A fitted body is drawn
    that size already, so it stays within the bound; a regressed one drawn too small may go to where it fits."""
    if drift is None or not observations:
        return None
    anchors = torch.stack([ob.anchor for ob in observations])
    reach = (anchors - anchors[:, :1]).norm(dim=-1).amax(-1).clamp(min=1.0)
    bound = torch.log1p((drift * sizes / reach).clamp(max=0.5))
    fits = -torch.log(torch.tensor([ob.detected_scale for ob in observations], dtype=sizes.dtype,
                                   device=sizes.device).clamp(0.5, 2.0))
    return torch.minimum(fits, torch.zeros_like(fits)) - bound, torch.maximum(fits, torch.zeros_like(fits)) + bound


def _drift(pixels: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Squared 2D drift (N,) of the pelvis plus the joints' pattern after the best uniform scale about it.

    Moving along the camera ray only rescales the 2D pattern of a person (to first order), so the ray stays the
    free direction; the pattern's position and shape are held.
    """
    p, a = pixels - pixels[:, :1], anchors - anchors[:, :1]
    scale = (p * a).sum((1, 2)) / p.square().sum((1, 2)).clamp(min=1e-9)
    shape = (scale[:, None, None] * p - a).square().sum(-1).mean(-1)
    return (pixels[:, 0] - anchors[:, 0]).square().sum(-1) + shape


def _track_links(observations: list[_Observation]) -> torch.Tensor:
    """(L, 2) pairs of observation indices: the same track in consecutive frames of the chunk."""
    last: dict[int, tuple[int, int]] = {}
    links = []
    for i, ob in sorted(enumerate(observations), key=lambda item: item[1].frame):
        if ob.track >= 0 and ob.track in last and last[ob.track][0] == ob.frame - 1:
            links.append((last[ob.track][1], i))
        last[ob.track] = (ob.frame, i)
    return torch.tensor(links, dtype=torch.long).reshape(-1, 2)


def _updated(frames, observations, shifts, camera) -> list[list[PersonEstimate]]:
    out: list[list[PersonEstimate]] = [[] for _ in frames]
    cursor = 0
    for f, people in enumerate(frames):
        for person in people:
            ob, shift = observations[cursor], shifts[cursor]
            cursor += 1
            joints2d = camera.project(ob.joints + shift).cpu().numpy().astype(np.asarray(person.joints2d).dtype)
            if not bool(shift.abs().max() > 0):
                joints2d = np.array(person.joints2d, copy=True)
            transl = np.asarray(person.transl) + shift.cpu().numpy().astype(np.asarray(person.transl).dtype)
            out[f].append(dataclasses.replace(person, transl=transl, joints2d=joints2d))
    return out
