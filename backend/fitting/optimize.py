"""The batched multi-person fit: every person of a frame (or of a chunk of frames) in one optimisation.

Per person: global orientation (6D, continuous), body pose (axis-angle with joint limits and an L2 prior),
betas, and the pelvis position as (x/z, y/z, log z) -- image-plane position and log-depth decouple, so the
optimiser moves a person across the image and along its ray independently. People share nothing, so the
batch energy is the sum of per-person energies and batching only amortises Python and kernel overhead.

Two stages: (1) orientation and position with the pose held, so the body turns the right way before the limbs
move; (2) everything. Adam is the default: on 2 CPU cores it reached LBFGS's energies in less time (LBFGS
needs several closure evaluations per step; see benchmarks/bench_mediapipe_fit.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from backend.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from backend.fitting.adam import Adam, cosine_rates
from backend.fitting.body_points import BodyPoints
from backend.fitting.init import depth_from_limbs, ik_body_pose, orientation_from_world, ray_rotations, torso_centre
from backend.fitting.losses import reprojection_loss, world_loss
from backend.fitting.mapping import POINT_WEIGHTS, TORSO_POINTS
from backend.fitting.priors import PosePrior, shape_prior
from backend.geometry.camera import project
from backend.runtime.torch_threads import single_thread


@dataclass
class FitInput:
    """Observations of B people (one row per person, any mix of frames), body points of ``mapping.POINTS``."""

    keypoints: np.ndarray  # (B, 25, 2) pixels
    confidence: np.ndarray  # (B, 25) 0..1
    world: np.ndarray  # (B, 25, 3) metres, hip-centred, axes of the person's crop camera (MediaPipe world)
    size_px: np.ndarray  # (B,) person size in pixels (normalises reprojection residuals)
    init_poses: np.ndarray | None = None  # (B, 24, 3) axis-angle warm start, rows valid where init_valid
    init_betas: np.ndarray | None = None  # (B, K)
    init_transl: np.ndarray | None = None  # (B, 3)
    init_valid: np.ndarray | None = None  # (B,) bool
    # (B,) bool: valid rows whose start is a fresh guess (e.g. LASOR's regression), not the previous frame's
    # solution: they start from it but still get the full schedule.
    init_full: np.ndarray | None = None
    # (B,) bool: valid rows whose start gives only the global orientation and the pelvis depth; limbs, shape
    # and the pelvis's image position stay the cold start's (MediaPipe's 3D landmarks, the torso's 2D ray).
    init_root_only: np.ndarray | None = None
    # (B,) metres: a stature the image gives the person (``fitting.floor_height``), NaN where none
    target_height: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


@dataclass
class FitOptions:
    """Weights and schedule. Energies are per person; reprojection residuals are fractions of the person size."""

    orient_steps: int = 30
    full_steps: int = 90
    warm_orient_steps: int = 0
    warm_full_steps: int = 40
    optimizer: str = "adam"  # or "lbfgs"
    lr: float = 0.02  # body pose and betas; orientation and position take smaller steps (see _run)
    reprojection_weight: float = 1000.0
    reprojection_sigma: float = 0.1
    world_weight: float = 300.0
    world_sigma: float = 0.15
    pose_weight: float = 0.5
    shape_weight: float = 0.2
    ordinal_weight: float = 100.0
    ordinal_margin: float = 0.1  # metres
    height_weight: float = 1.0  # stature vs ``FitInput.target_height``, in units of ``height_sigma``
    height_sigma: float = 0.02  # metres


@dataclass
class FitResult:
    """Per person: SMPL parameters in the camera frame and how well they explain the observations."""

    poses: np.ndarray  # (B, 24, 3) axis-angle, joint 0 global orientation in the camera frame
    betas: np.ndarray  # (B, K)
    transl: np.ndarray  # (B, 3): posed joints = FK(poses, betas) + transl
    joints: np.ndarray  # (B, 24, 3) camera frame, metres
    joints2d: np.ndarray  # (B, 24, 2) pixels
    points2d: np.ndarray  # (B, 25, 2) fitted body points projected, pixels
    reprojection_px: np.ndarray  # (B,) mean pixel error over confidently seen points
    energy: np.ndarray  # (B,) final energy
    extras: dict = field(default_factory=dict)


class _Params(torch.nn.Module):
    """The optimised variables of B people."""

    def __init__(self, rot6d: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor, root: torch.Tensor) -> None:
        super().__init__()
        self.rot6d = torch.nn.Parameter(rot6d)
        self.body_pose = torch.nn.Parameter(body_pose)
        self.betas = torch.nn.Parameter(betas)
        self.image_xy = torch.nn.Parameter(root[:, :2].clone())  # pelvis x/z, y/z
        self.log_depth = torch.nn.Parameter(root[:, 2:].clone())  # pelvis log z

    def rotmats(self) -> torch.Tensor:
        glob = rot6d_to_matrix(self.rot6d)[:, None]
        return torch.cat([glob, axis_angle_to_matrix(self.body_pose)], dim=1)

    def pelvis(self) -> torch.Tensor:
        z = torch.exp(self.log_depth)
        return torch.cat([self.image_xy * z, z], dim=-1)


class _Problem:
    """Observations as tensors plus the energy of a parameter set."""

    def __init__(self, body: BodyPoints, data: FitInput, intrinsics: np.ndarray, options: FitOptions,
                 ordinal_pairs: np.ndarray | None) -> None:
        self.body, self.options = body, options
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.intrinsics = t(intrinsics)
        self.keypoints = t(data.keypoints)
        self.confidence = t(data.confidence)
        self.weights = self.confidence * t(POINT_WEIGHTS)
        centres = torso_centre(data.keypoints, data.confidence)
        self.world = t(np.einsum("bij,bpj->bpi", ray_rotations(centres, intrinsics), data.world))
        self.size = t(np.maximum(data.size_px, 8.0))
        self.prior = PosePrior()
        self.torso = list(TORSO_POINTS)
        heights = None if data.target_height is None else np.asarray(data.target_height, np.float64)
        self.height = None if heights is None or not np.isfinite(heights).any() else t(np.nan_to_num(heights))
        self.height_mask = None if self.height is None else t(np.isfinite(heights))
        self.pairs = None if ordinal_pairs is None or len(ordinal_pairs) == 0 else torch.as_tensor(ordinal_pairs)

    def posed(self, params: _Params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(joints_cam, points_cam, transl)."""
        joints, points = self.body(params.rotmats(), params.betas)
        transl = params.pelvis() - joints[:, 0]
        return joints + transl[:, None], points + transl[:, None], transl

    def energy(self, params: _Params, with_pose: bool = True) -> torch.Tensor:
        """(B,) energy per person."""
        o = self.options
        _, points, _ = self.posed(params)
        e = o.reprojection_weight * reprojection_loss(points, self.keypoints, self.weights, self.size, self.intrinsics,
                                                      o.reprojection_sigma)
        e = e + o.world_weight * world_loss(points, self.world, self.weights, self.torso, o.world_sigma)
        if with_pose:
            e = e + o.pose_weight * self.prior(params.body_pose)
            e = e + o.shape_weight * shape_prior(params.betas, self.body.shape_mean)
        if with_pose and self.height is not None:
            off = (self.body.stature(params.betas) - self.height) / o.height_sigma
            e = e + o.height_weight * self.height_mask * off**2
        if self.pairs is not None:
            e = e + o.ordinal_weight * self.ordinal(params)
        return e

    def ordinal(self, params: _Params) -> torch.Tensor:
        """(B,) hinge on pelvis depths for (front, back) pairs: the occluder must be nearer by ``ordinal_margin``."""
        z = params.pelvis()[:, 2]
        front, back = self.pairs[:, 0], self.pairs[:, 1]
        violation = torch.relu(z[front] - z[back] + self.options.ordinal_margin) ** 2
        out = torch.zeros_like(z)
        return out.index_add(0, front, violation).index_add(0, back, violation)


def temporal_warm(data: FitInput) -> np.ndarray:
    """(B,) rows starting from a previous solution (valid and not flagged ``init_full``)."""
    if data.init_valid is None:
        return np.zeros(len(data), bool)
    warm = np.asarray(data.init_valid, bool)
    return warm if data.init_full is None else warm & ~np.asarray(data.init_full, bool)


def initial_params(body: BodyPoints, data: FitInput, intrinsics: np.ndarray) -> _Params:
    """Cold start from the observations; rows with a valid warm start take it instead."""
    glob, body_pose, betas, pelvis = _cold_start(body, data, intrinsics)
    if data.init_valid is not None and data.init_valid.any():
        glob, body_pose, betas, pelvis = _apply_warm_start(body, data, glob, body_pose, betas, pelvis)
    root = np.concatenate([pelvis[:, :2] / pelvis[:, 2:3], np.log(np.maximum(pelvis[:, 2:3], 0.1))], -1)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return _Params(matrix_to_rot6d(f(glob)), f(body_pose), f(betas), f(root))


def _cold_start(body: BodyPoints, data: FitInput, intrinsics: np.ndarray) -> tuple[np.ndarray, ...]:
    """Prior mean shape; orientation and limbs from MediaPipe's 3D landmarks; torso centre on its 2D ray at the depth
    the limb lengths give. Returns (global rotation (B,3,3), body pose (B,23,3), betas, pelvis (B,3))."""
    b, k = len(data), body.num_betas
    centres = torso_centre(data.keypoints, data.confidence)
    world = np.einsum("bij,bpj->bpi", ray_rotations(centres, intrinsics), data.world)
    mean = body.shape_mean[None].float()
    with torch.no_grad():
        rest_points = body.rest_points(mean).numpy()
        rest_joints = body.rest_joints(mean)[0].numpy()
    glob = orientation_from_world(world, rest_points[0])
    local = ik_body_pose(glob, world, rest_joints)
    body_pose = matrix_to_axis_angle(torch.as_tensor(local)).numpy()
    betas = np.repeat(mean.numpy().astype(np.float64), b, axis=0)
    focal = 0.5 * (intrinsics[0] + intrinsics[1])
    depth = depth_from_limbs(data.keypoints, world, data.confidence, rest_points, focal, data.size_px)
    rotmats = torch.as_tensor(np.concatenate([glob[:, None], local], axis=1), dtype=torch.float32)
    with torch.no_grad():
        joints, points = body(rotmats, mean.expand(b, k))
    offset = (points[:, list(TORSO_POINTS)].mean(1) - joints[:, 0]).numpy()  # pelvis -> torso centre
    ray = np.stack([(centres[:, 0] - intrinsics[2]) / intrinsics[0], (centres[:, 1] - intrinsics[3]) / intrinsics[1],
                    np.ones(b)], -1)
    return glob, body_pose, betas, ray * depth[:, None] - offset


def _apply_warm_start(body: BodyPoints, data: FitInput, glob: np.ndarray, body_pose: np.ndarray, betas: np.ndarray,
                      pelvis: np.ndarray) -> tuple[np.ndarray, ...]:
    valid = np.asarray(data.init_valid, bool)
    root_only = valid & (False if data.init_root_only is None else np.asarray(data.init_root_only, bool))
    whole = valid & ~root_only
    poses = torch.as_tensor(data.init_poses, dtype=torch.float32)
    glob, body_pose, betas, pelvis = glob.copy(), body_pose.copy(), betas.copy(), pelvis.copy()
    glob[valid] = axis_angle_to_matrix(poses[valid, 0]).numpy()
    body_pose[whole] = poses[whole, 1:].numpy()
    n = min(betas.shape[1], data.init_betas.shape[1])
    start_betas = np.zeros((len(data), betas.shape[1]))
    start_betas[:, :n] = data.init_betas[:, :n]
    betas[whole] = start_betas[whole]
    with torch.no_grad():
        root_rest = body.rest_joints(torch.as_tensor(start_betas, dtype=torch.float32))[:, 0].numpy()
    start_pelvis = data.init_transl + root_rest
    pelvis[whole] = start_pelvis[whole]
    # root-only rows move along the cold start's pelvis ray to the given depth
    pelvis[root_only] *= (start_pelvis[root_only, 2] / pelvis[root_only, 2])[:, None]
    return glob, body_pose, betas, pelvis


def _run(problem: _Problem, params: _Params, steps: int, names: tuple[str, ...], options: FitOptions,
         with_pose: bool) -> None:
    if steps <= 0:
        return
    variables = [getattr(params, n) for n in names]
    if options.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(variables, lr=1.0, max_iter=steps, line_search_fn="strong_wolfe", history_size=20)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = problem.energy(params, with_pose).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return
    # Per-variable step sizes (Adam moves each by ~lr per step): 0.1 of the image-plane position is ~100 px, so
    # it gets small steps; log-depth moves ~0.5 % per step; rotations and shape the base rate.
    scales = {"rot6d": 0.5, "body_pose": 1.0, "betas": problem.body.shape_step, "image_xy": 0.1, "log_depth": 0.25}
    opt = Adam([([getattr(params, n)], options.lr * scales[n]) for n in names])
    for step in range(steps):
        cosine_rates(opt, step, steps, options.lr * 0.1)
        opt.zero_grad()
        # gradients of the variables being optimised only (the first stage holds the pose and shape: their part of
        # the graph is not differentiated)
        problem.energy(params, with_pose).sum().backward(inputs=variables)
        opt.step()


def fit_people(
    body: BodyPoints, data: FitInput, intrinsics: np.ndarray | tuple[float, float, float, float],
    options: FitOptions | None = None, ordinal_pairs: np.ndarray | None = None,
) -> FitResult:
    """Fit B people at once. ``intrinsics`` = (fx, fy, cx, cy); ``ordinal_pairs`` (M, 2) rows (front, back)."""
    options = options or FitOptions()
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    if len(data) == 0:
        return _empty(body.num_betas)
    with single_thread():
        return _fit(body, data, intrinsics, options, ordinal_pairs)


def _fit(body: BodyPoints, data: FitInput, intrinsics: np.ndarray, options: FitOptions,
         ordinal_pairs: np.ndarray | None) -> FitResult:
    problem = _Problem(body, data, intrinsics, options, ordinal_pairs)
    params = initial_params(body, data, intrinsics)
    # One schedule per batch: the short one only when everybody starts warm (from a previous frame; a row marked
    # ``init_full`` starts from its given values but is not warm). A batch with new people runs the full schedule
    # for all (one optimisation costs about the same for 10 or 60 people on the CPU).
    warm = data.init_valid is not None and bool(np.all(temporal_warm(data)))
    orient_steps = options.warm_orient_steps if warm else options.orient_steps
    full_steps = options.warm_full_steps if warm else options.full_steps
    _run(problem, params, orient_steps, ("rot6d", "image_xy", "log_depth"), options, with_pose=False)
    _run(problem, params, full_steps, ("rot6d", "body_pose", "betas", "image_xy", "log_depth"), options,
         with_pose=True)
    return _result(problem, params)


def _result(problem: _Problem, params: _Params) -> FitResult:
    with torch.no_grad():
        joints, points, transl = problem.posed(params)
        energy = problem.energy(params)
        glob = matrix_to_axis_angle(rot6d_to_matrix(params.rot6d))
        poses = torch.cat([glob[:, None], params.body_pose], dim=1)
        points2d = project(points, problem.intrinsics)
        joints2d = project(joints, problem.intrinsics)
        seen = problem.confidence > 0.5
        err = (points2d - problem.keypoints).norm(dim=-1)
        reproj = (err * seen).sum(-1) / seen.sum(-1).clamp(min=1)
    n = lambda x: x.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    return FitResult(n(poses), n(params.betas), n(transl), n(joints), n(joints2d), n(points2d), n(reproj), n(energy))


def _empty(num_betas: int) -> FitResult:
    z = np.zeros
    return FitResult(z((0, 24, 3)), z((0, num_betas)), z((0, 3)), z((0, 24, 3)), z((0, 24, 2)), z((0, 25, 2)),
                     z((0,)), z((0,)))
