"""Synthetic, occlusion-aware training data generated on the fly (LASOR's recipe, adapted; see README.md).

One sample = one *target* person in a small scene, seen through a person crop, as the estimator will see it:

1. poses from ``poses.sample_body_poses`` (activity modes, anatomical limits), shapes ``beta ~ N(0, 1)``;
2. a level scene frame (y down): everybody upright with a random heading (all 360 degrees), a few tilted off
   upright (the paper's view augmentation, ``pi * N(0, 0.12^2)``), feet of the bystanders on the target's ground;
3. 0-3 bystanders around the target (in front of or behind it, 0.35-1.1 m sideways: realistic overlaps) and
   0-2 box occluders, mostly in front;
4. a camera anywhere from level to steeply looking down (pitch -0.2..0.9 rad), with roll, 40-80 degree field of
   view, the target 2.5-12 m away anywhere in the central image;
5. the crop: a square around the target's 17 keypoints, x1.15-1.45, jittered; the same rule the estimator
   applies to detector keypoints (``crop_box``);
6. silhouettes from ``backend.geometry.render.rasterize`` (every mesh of the batch in one call; each sample's crop camera
   is folded into its vertices, so one canonical camera serves all): the visible target is the target's own
   coverage where it is nearer than every bystander and box of its scene, ``S = S1 - S1 * S_others``;
7. keypoints dropped the way a detector loses them: hidden behind a bystander or a box (depth test at the
   pixel), behind the body itself (half of the time), outside the crop, cut by a random image border
   (truncation), inside a random erased rectangle or a removed limb (the paper's part removal and occluding
   boxes, applied to the silhouette too), plus random dropout; visible ones get pixel noise and rare outliers.

Everything runs in torch on the body model's device, in batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from backend.body.rotations import axis_angle_to_matrix
from backend.geometry.camera import Camera
from backend.geometry.render import rasterize
from backend.lasor.body import LightBody
from backend.lasor.keypoints import NUM_KEYPOINTS
from backend.lasor.poses import sample_body_poses

BOX_FACES = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
# limbs the part-removal augmentation can take away (COCO keypoint indices)
LIMBS = ((7, 9), (8, 10), (9,), (10,), (13, 15), (14, 16), (15,), (16,), (0, 1, 2, 3, 4))


@dataclass(frozen=True)
class DataConfig:
    size: int = 64  # network input, pixels
    render_size: int = 32  # silhouettes are rasterized at this size, then resized (the estimator does the same)
    sigma: float = 1.5  # heatmap Gaussian, input pixels
    crop_scale: tuple[float, float] = (1.15, 1.45)
    max_others: int = 3
    others_p: tuple[float, ...] = (0.2, 0.45, 0.25, 0.1)
    boxes_p: tuple[float, ...] = (0.55, 0.3, 0.15)
    tilt_p: float = 0.15
    pitch: tuple[float, float] = (-0.2, 0.9)
    distance: tuple[float, float] = (2.5, 12.0)
    fov_degrees: tuple[float, float] = (40.0, 80.0)
    self_occlusion_margin: float = 0.12  # metres a keypoint may lie behind its own surface and still be seen
    self_occlusion_drop: float = 0.5
    dropout: float = 0.04
    noise: float = 0.012  # keypoint noise, fraction of the crop
    outliers: float = 0.02
    part_removal_p: float = 0.2
    erase_box_p: float = 0.25
    truncation_p: float = 0.12


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, 18, S, S): 17 keypoint heatmaps + visible silhouette
    rotmats: torch.Tensor  # (B, 24, 3, 3) ground truth, joint 0 = orientation in the camera frame
    betas: torch.Tensor  # (B, K)
    keypoints2d: torch.Tensor  # (B, 17, 2) true keypoints in crop coordinates normalised to [-1, 1]
    visible: torch.Tensor  # (B, 17) bool: the keypoint is in the input (not dropped)
    silhouette: torch.Tensor  # (B, R, R) bool: the target's whole (amodal) silhouette in the crop
    visible_silhouette: torch.Tensor  # (B, R, R) bool
    transl: torch.Tensor  # (B, 3) camera-frame translation of the target
    camera: torch.Tensor  # (B, 4) crop camera at input size: fx, fy, cx, cy (pixels)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def crop_box(points: np.ndarray, scale: float = 1.3) -> np.ndarray:
    """Square crop (x0, y0, side) around 2D points (N, 2): the keypoints' box, ``scale`` x its longer side."""
    lo, hi = points.min(0), points.max(0)
    side = max(float((hi - lo).max()) * scale, 1.0)
    centre = (lo + hi) / 2
    return np.array([centre[0] - side / 2, centre[1] - side / 2, side])


def heatmaps(points: torch.Tensor, valid: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, K, 2) pixel points -> (B, K, size, size) Gaussians, zero where not ``valid``."""
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    gx = torch.exp(-((grid - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, K, S)
    gy = torch.exp(-((grid - points[..., 1:2]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :] * valid[..., None, None].to(points.dtype)


def silhouette_input(mask: torch.Tensor, config: DataConfig) -> torch.Tensor:
    """(B, R, R) silhouettes at render size -> (B, S, S) float input channel (bilinear)."""
    return F.interpolate(mask[:, None].float(), size=(config.size, config.size), mode="bilinear",
                         align_corners=False)[:, 0]


def _rot(axis: int, angle: torch.Tensor) -> torch.Tensor:
    aa = torch.zeros((*angle.shape, 3), dtype=angle.dtype, device=angle.device)
    aa[..., axis] = angle
    return axis_angle_to_matrix(aa)


class Generator:
    """Batches of synthetic samples for ``body`` (a :class:`LightBody`); see the module docstring."""

    def __init__(self, body: LightBody, config: DataConfig | None = None) -> None:
        self.body = body
        self.config = config or DataConfig()

    @torch.no_grad()
    def batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        cfg, body = self.config, self.body
        dev = body.joint_template.device
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        b = batch_size
        n_others = rng.choice(len(cfg.others_p), size=b, p=cfg.others_p)
        owner = np.concatenate([np.arange(b), np.repeat(np.arange(b), n_others)])  # sample of each person
        n = len(owner)
        poses = sample_body_poses(rng, n)
        local = poses.rotmats().to(dev)
        betas = t(np.clip(rng.normal(0.0, 1.0, (n, body.num_betas)), -2.5, 2.5))
        # level frame: upright (model y-up -> camera y-down), heading, sometimes tilted
        flip = _rot(0, t(np.full(n, math.pi)))
        heading = _rot(1, t(rng.uniform(-math.pi, math.pi, n)))
        tilt = axis_angle_to_matrix(t(math.pi * rng.normal(0.0, 0.12, (n, 3)) * (rng.random((n, 1)) < cfg.tilt_p)))
        view = _rot(2, t(rng.normal(0.0, 0.08, b))) @ _rot(0, t(rng.uniform(*cfg.pitch, b)))  # roll @ pitch
        glob_level = tilt @ heading @ flip
        local[:, 0] = glob_level
        joints, kp3d, verts = body(local, betas)
        # bystanders: placed around the target on the same ground (lowest vertex), in the level frame
        ground = verts[..., 1].amax(1)  # y is down: the lowest point
        offset = torch.zeros(n, 3, device=dev)
        if n > b:
            k = n - b
            side = rng.choice([-1.0, 1.0], k) * rng.uniform(0.35, 1.1, k)
            depth = rng.uniform(-2.0, 3.0, k)
            offset[b:, 0], offset[b:, 2] = t(side), t(depth)
            offset[b:, 1] = ground[owner[b:]] - ground[b:]
        offset = offset - joints[:, 0]  # target pelvis at the level-frame origin, others relative to it
        # camera: intrinsics, target position along a random ray
        fov = np.radians(rng.uniform(*cfg.fov_degrees, b))
        focal = 500.0 / np.tan(fov / 2)  # a 1000 x 1000 image
        pix = rng.uniform(150, 850, (b, 2))
        dist = rng.uniform(*cfg.distance, b)
        ray = np.concatenate([(pix - 500.0) / focal[:, None], np.ones((b, 1))], 1)
        target_pos = t(ray / np.linalg.norm(ray, axis=1, keepdims=True) * dist[:, None])
        # keep bystanders in front of the camera
        if n > b:
            too_near = (offset[b:, 2] + t(dist)[owner[b:]] < 1.0)
            offset[b:, 2] = torch.where(too_near, offset[b:, 2].abs(), offset[b:, 2])
        rview = view[owner]
        glob = rview @ glob_level
        cam_j = (rview[:, None] @ (joints + offset[:, None])[..., None])[..., 0] + target_pos[owner, None]
        cam_k = (rview[:, None] @ (kp3d + offset[:, None])[..., None])[..., 0] + target_pos[owner, None]
        cam_v = (rview[:, None] @ (verts + offset[:, None])[..., None])[..., 0] + target_pos[owner, None]
        # boxes in front of the target, on its ground or floating, in the level frame
        n_boxes = rng.choice(len(cfg.boxes_p), size=b, p=cfg.boxes_p)
        box_owner = np.repeat(np.arange(b), n_boxes)
        box_v = torch.zeros(len(box_owner), 8, 3, device=dev)
        if len(box_owner):
            m = len(box_owner)
            size = rng.uniform([0.3, 0.3, 0.2], [1.0, 1.3, 0.6], (m, 3))
            centre = np.stack([rng.uniform(-0.8, 0.8, m), np.zeros(m), rng.uniform(-1.5, -0.3, m)], 1)
            g = (ground[box_owner] - joints[box_owner, 0, 1]).cpu().numpy()
            on_ground = rng.random(m) < 0.6
            centre[:, 1] = np.where(on_ground, g - size[:, 1] / 2, rng.uniform(-0.6, 0.6, m))
            corners = np.array([[a, b_, c] for a in (-0.5, 0.5) for b_ in (-0.5, 0.5) for c in (-0.5, 0.5)])
            box_l = t(centre[:, None] + corners[None] * size[:, None])
            box_l[..., 2] = torch.maximum(box_l[..., 2], -t(dist)[box_owner, None] + 0.6)  # in front of the lens
            box_v = (view[box_owner, None] @ box_l[..., None])[..., 0] + target_pos[box_owner, None]
        # crop around the target's keypoints in the 1000 px image
        f_t, c0 = t(focal), 500.0
        uv = f_t[:, None, None] * cam_k[:b, :, :2] / cam_k[:b, :, 2:3] + c0
        lo, hi = uv.amin(1), uv.amax(1)
        side = (hi - lo).amax(1) * t(rng.uniform(*cfg.crop_scale, b))
        centre = (lo + hi) / 2 + side[:, None] * t(rng.normal(0.0, 0.04, (b, 2)))
        x0 = centre - side[:, None] / 2
        # crop camera at input size: u_crop = (u - x0) * S / side
        s_in = cfg.size / side
        cam_in = torch.stack([f_t * s_in, f_t * s_in, (c0 - x0[:, 0]) * s_in, (c0 - x0[:, 1]) * s_in], 1)
        rscale = cfg.render_size / cfg.size
        frags, sample_of_mesh = self._render(cam_in * rscale, cam_v, owner, box_v, box_owner, b)
        depth = frags.depth  # (M, R, R)
        occ = torch.full((b, *depth.shape[1:]), float("inf"), device=dev)
        others = torch.arange(b, depth.shape[0], device=dev)
        if len(others):  # nearest bystander/box surface of each sample (index_reduce is still "beta")
            key = sample_of_mesh[others]
            flat = occ.reshape(b, -1)
            flat.scatter_reduce_(0, key[:, None].expand(-1, flat.shape[1]), depth[others].reshape(len(others), -1),
                                 "amin")
            occ = flat.reshape(occ.shape)
        amodal = frags.silhouettes[:b]
        visible_sil = amodal & (depth[:b] < occ)
        # keypoints
        kp_px = cam_in[:, None, :2] * cam_k[:b, :, :2] / cam_k[:b, :, 2:3] + cam_in[:, None, 2:]
        kp_r = (kp_px * rscale).round().long().clamp(0, cfg.render_size - 1)
        inside = ((kp_px >= 0) & (kp_px < cfg.size)).all(-1)
        bi = torch.arange(b, device=dev)[:, None]
        kz = cam_k[:b, :, 2]
        hidden_by_other = occ[bi, kp_r[..., 1], kp_r[..., 0]] < kz
        own = depth[:b][bi, kp_r[..., 1], kp_r[..., 0]]
        coin = lambda p: torch.as_tensor(rng.random((b, NUM_KEYPOINTS)) < p, device=dev)  # noqa: E731
        self_hidden = (own < kz - cfg.self_occlusion_margin) & coin(cfg.self_occlusion_drop)
        visible = inside & ~hidden_by_other & ~self_hidden & ~coin(cfg.dropout)
        visible_sil, visible = self._augment(rng, visible_sil, visible, kp_px * rscale)
        noisy = kp_px + t(rng.normal(0.0, cfg.noise * cfg.size, kp_px.shape))
        outlier = coin(cfg.outliers)
        noisy = torch.where(outlier[..., None], noisy + t(rng.normal(0.0, 0.15 * cfg.size, kp_px.shape)), noisy)
        inputs = torch.cat([heatmaps(noisy, visible, cfg.size, cfg.sigma),
                            silhouette_input(visible_sil, cfg)[:, None]], 1)
        rot = local[:b].clone()
        rot[:, 0] = glob[:b]
        transl = cam_j[:b, 0] - joints[:b, 0]  # posed joints = FK + transl (FK keeps the pelvis at J0)
        return Batch(inputs, rot, betas[:b], kp_px / cfg.size * 2 - 1, visible, amodal, visible_sil, transl, cam_in)

    def _render(self, cams: torch.Tensor, verts: torch.Tensor, owner: np.ndarray, box_v: torch.Tensor,
                box_owner: np.ndarray, b: int):
        """Rasterize all meshes at render size; per-sample crop cameras are folded into the vertices."""
        r = self.config.render_size
        own = torch.as_tensor(np.concatenate([owner, box_owner]), device=verts.device)
        c = cams[own]  # (M, 4)
        allv = [v for v in verts] + [v for v in box_v]
        folded = []
        for v, ci in zip(allv, c):
            z = v[:, 2:3]
            folded.append(torch.cat([(ci[0] * v[:, 0:1] + ci[2] * z) / r, (ci[1] * v[:, 1:2] + ci[3] * z) / r, z], 1))
        faces = [self.body.faces] * len(verts) + [BOX_FACES.to(verts.device)] * len(box_v)
        frags = rasterize(folded, faces, Camera(r, r, float(r), float(r), 0.0, 0.0))
        return frags, own

    def _augment(self, rng, sil: torch.Tensor, visible: torch.Tensor, kp_r: torch.Tensor):
        """Part removal, erased rectangles and truncation on the silhouette (render size) and the keypoints."""
        cfg = self.config
        b, r = sil.shape[0], sil.shape[-1]
        yy, xx = torch.meshgrid(torch.arange(r, device=sil.device), torch.arange(r, device=sil.device),
                                indexing="ij")
        erase = torch.zeros_like(sil)
        drop = torch.zeros_like(visible)
        for i in range(b):
            if rng.random() < cfg.part_removal_p:
                limb = list(LIMBS[rng.integers(len(LIMBS))])
                drop[i, limb] = True
                radius = rng.uniform(0.06, 0.12) * r
                for k in limb:
                    erase[i] |= (xx - kp_r[i, k, 0]) ** 2 + (yy - kp_r[i, k, 1]) ** 2 < radius**2
            if rng.random() < cfg.erase_box_p:
                w, h = rng.uniform(0.15, 0.5, 2) * r
                x, y = rng.uniform(0, r - w), rng.uniform(0, r - h)
                erase[i] |= (xx >= x) & (xx < x + w) & (yy >= y) & (yy < y + h)
                kx, ky = kp_r[i, :, 0], kp_r[i, :, 1]
                drop[i] |= (kx >= x) & (kx < x + w) & (ky >= y) & (ky < y + h)
            if rng.random() < cfg.truncation_p:  # an image border crossing the crop
                edge, cut = rng.integers(4), rng.uniform(0.3, 0.7) * r
                coord = (xx, yy, xx, yy)[edge]
                gone = coord > cut if edge < 2 else coord < cut
                erase[i] |= gone
                kc = kp_r[i, :, edge % 2]
                drop[i] |= kc > cut if edge < 2 else kc < cut
        return sil & ~erase, visible & ~drop
