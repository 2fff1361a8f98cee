"""``bev``: BEV v1 (ROMP with a bird's-eye view of depth) with the user's official checkpoint.

Same preprocessing, precision and body handling as :mod:`backend.estimators.romp`. BEV parses a 3D centre map
(depth x y x x), reads each person's camera (s, y, x) from the 3D camera map and regresses 146 parameters:
cam, 6D global orientation, 21 x 6D joints and 11 betas. The 11th beta blends SMPL towards the kid template
(SMPL-A); it is ignored here, as is the SMIL switch for ``betas[10] > 0.8``, because no kid template is supplied
to the pipeline's body models (it is kept in ``extras['age']``).

Camera: BEV's translation is closed-form for FOV 60 degrees at 512 px: depth = 1/(s tan30 + 1e-3) and
(x, y) = (cam_x, cam_y) * depth * tan30, for the body's root. To express people in the pipeline's camera
without disturbing BEV's relative depths, every person's depth is multiplied by the same ratio f_pipeline / f_net
(f_net = 443.4 * side/512 in original pixels), and x, y are chosen so that the root projects through the
pipeline camera onto the pixel where the network's camera put it. Apparent sizes and the depth order of the
people are thus preserved.

Root (a deliberate deviation): the official ``SMPLA_parser`` runs with ``root_align=True`` and subtracts the
mean of joints 45 and 46 of its 71-joint output, SPIN's regressed right/left hips (rows of
``J_regressor_extra9``, fitted to LSP/H36M hip annotations), so the translation above places THAT point. The
pipeline's body models do not carry ``J_regressor_extra`` (the open body has none, and SPIN's regressor is
defined on SMPL's vertices only), so the mean of SMPL kinematic joints 1 (L_Hip) and 2 (R_Hip), computed by
forward kinematics from the same pose and betas, stands in for it. Both are midpoints between the hips near the
pelvis; the stand-in shifts each body by the (pose-dependent, few-centimetre) offset between the two
midpoints, i.e. a few pixels of image position, and leaves depths, relative depths and sizes unchanged.

Post-processing (``process_normal_image`` of simple_romp/bev/main.py, both stages batched on the device):
1. Duplicate suppression (``suppressing_redundant_prediction_via_projection``, scale-based): the root-aligned
   joints are projected through the network's camera (f = 443.4 at 512, translation above) and mapped to
   original pixels; for each pair (i < j, detection order) in a frame, the mean over joints of the 2D
   distance, divided by the larger of 2*s_i, 2*s_j, is compared with ``nms_thresh * max(h, w) / 640``
   (``nms_thresh`` 20). Every pair below it drops its member of smaller scale s (the farther one; on a tie the
   later one). The official code compares its 71 joints; here the 24 SMPL joints are compared (the vertex, extra
   and H36M joints need the SMPL mesh), which changes the mean slightly, not its scale.
2. Outlier removal (``remove_outlier``), on the survivors, in frames with at least 3 people: the pairwise 3D
   distances of the network-camera translations, each row's smallest (itself) and largest dropped, averaged;
   a person whose average exceeds ``relative_scale_thresh`` times the mean of the other people's averages AND
   whose scale s < ``scale_thresh`` (0.25) is removed. ``relative_scale_thresh`` defaults to 1.6 for BEV.pth
   and 2 for BEV_ft_agora.pth (``conf_dict``; note the official ``bev_settings`` reads that entry with the
   module-level ``model_id`` = 2, so it actually applies 1.6 to both models; pass 1.6 to reproduce that).
Finally people whose root lies behind the camera (s < about -0.0017) are dropped.

Not implemented (documented gaps): the SMIL baby model switch; the crowd-mode sliding window for images at
least twice as wide as tall (its confidence-based NMS variant); the ByteTrack-style temporal tracker (tracking
is the pipeline's job).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from backend.estimators.base import EstimatorError
from backend.estimators.centermaps import BEV_CENTER_THRESH, BEV_FT_AGORA_CENTER_THRESH, parse_centers_3d
from backend.estimators.one_stage import (
    INPUT_SIZE,
    NET_FOCAL,
    OneStageEstimator,
    People,
    autocast,
    decode_poses,
    input_to_image,
    preprocess,
)
from backend.estimators.weights import find_checkpoint
from backend.geometry.camera import Camera, project

MODELS = {"bev": BEV_CENTER_THRESH, "bev-ft-agora": BEV_FT_AGORA_CENTER_THRESH}
RELATIVE_SCALE_THRESH = {"bev": 1.6, "bev-ft-agora": 2.0}  # conf_dict[model_id][2]
NMS_THRESH = 20.0  # pixels of mean joint distance per unit of 2*s, for a 640-pixel image
SCALE_THRESH = 0.25  # remove_outlier: only people smaller than this can be outliers


def frame_slots(frame: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, int]:
    """Each person's position within its frame (in the given order) and the most people in one frame, so that
    (N, ...) tensors can be scattered into padded (num_frames, M, ...) grids."""
    counts = torch.bincount(frame, minlength=num_frames)
    order = torch.argsort(frame, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(frame)
    slot[order] = torch.arange(len(frame), device=frame.device) - starts[frame[order]]
    return slot, int(counts.max()) if len(frame) else 0


def _grid(values: torch.Tensor, frame: torch.Tensor, slot: torch.Tensor, num_frames: int, m: int) -> torch.Tensor:
    out = values.new_zeros(num_frames, m, *values.shape[1:])
    out[frame, slot] = values
    return out


def suppress_duplicates(frame: torch.Tensor, pj2d: torch.Tensor, scale: torch.Tensor, side: torch.Tensor,
                        num_frames: int, thresh: float = NMS_THRESH) -> torch.Tensor:
    """Keep mask (N,) of ``suppressing_redundant_prediction_via_projection`` (scale-based), per frame, batched.

    pj2d (N, J, 2): joints projected through the network's camera, original pixels; scale (N,): cam s;
    side (N,): max(h, w) of each person's frame."""
    n = len(frame)
    if n < 2:
        return torch.ones(n, dtype=torch.bool, device=frame.device)
    slot, m = frame_slots(frame, num_frames)
    pts = _grid(pj2d.float(), frame, slot, num_frames, m)  # (B, M, J, 2)
    ps = _grid(2 * scale.float(), frame, slot, num_frames, m)  # person_scales
    valid = _grid(torch.ones_like(frame, dtype=torch.bool), frame, slot, num_frames, m)
    limit = _grid(thresh * side.float() / 640, frame, slot, num_frames, m).amax(1)  # (B,)
    dist = (pts[:, :, None] - pts[:, None]).norm(dim=-1).mean(-1)  # (B, M, M)
    normalized = dist / torch.maximum(ps[:, :, None], ps[:, None, :])
    upper = torch.ones(m, m, dtype=torch.bool, device=frame.device).triu(1)
    pair = upper & valid[:, :, None] & valid[:, None, :] & (normalized < limit[:, None, None])
    first_smaller = ps[:, :, None] < ps[:, None, :]  # (i, j): remove i, else j
    removed = (pair & first_smaller).any(2) | (pair & ~first_smaller).any(1)
    return ~removed[frame, slot]


def remove_outliers(frame: torch.Tensor, trans: torch.Tensor, scale: torch.Tensor, num_frames: int,
                    relative_scale_thresh: float, scale_thresh: float = SCALE_THRESH) -> torch.Tensor:
    """Keep mask (N,) of ``remove_outlier``, per frame, batched; trans (N, 3): network-camera translations."""
    n = len(frame)
    if n < 3:
        return torch.ones(n, dtype=torch.bool, device=frame.device)
    slot, m = frame_slots(frame, num_frames)
    t = _grid(trans.float(), frame, slot, num_frames, m)
    valid = _grid(torch.ones_like(frame, dtype=torch.bool), frame, slot, num_frames, m)
    count = valid.sum(1, keepdim=True).float()  # (B, 1)
    dist = (t[:, :, None] - t[:, None]).norm(dim=-1)  # (B, M, M)
    both = valid[:, :, None] & valid[:, None, :]
    big = torch.finfo(dist.dtype).max
    lowest = torch.where(both, dist, torch.full_like(dist, big)).amin(2)
    highest = torch.where(both, dist, torch.zeros_like(dist)).amax(2)
    # sorted row [1:-1].mean() == (sum - min - max) / (n - 2)
    mean_dist = ((dist * both).sum(2) - lowest - highest) / (count - 2).clamp_min(1)
    mean_dist = mean_dist * valid
    others = (mean_dist.sum(1, keepdim=True) - mean_dist) / (count - 1).clamp_min(1)
    relative = mean_dist / others
    outlier = valid & (count >= 3) & (relative > relative_scale_thresh)
    outlier &= _grid(scale.float(), frame, slot, num_frames, m) < scale_thresh
    return ~outlier[frame, slot]


def bev_translation(cams: torch.Tensor, tan_half_fov: float) -> torch.Tensor:
    """(N, 3) cams (s, y, x) -> translation (x, y, depth) of the root in the network's camera."""
    depth = 1.0 / (cams[:, 0] * tan_half_fov + 1e-3)
    xy = cams[:, [2, 1]] * (depth * tan_half_fov)[:, None]
    return torch.cat([xy, depth[:, None]], dim=1)


def to_pipeline_camera(root: torch.Tensor, pads: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Roots (N, 3) in the network camera -> the pipeline camera: depth scaled by the focal ratio, the root
    reprojecting onto the same original pixel."""
    f_net = NET_FOCAL * pads[:, 0] / INPUT_SIZE  # in original pixels
    uv_input = NET_FOCAL * root[:, :2] / root[:, 2:] / (INPUT_SIZE / 2)  # normalised [-1, 1] input coordinates
    uv = input_to_image(uv_input[:, None], pads)[:, 0]
    fx, fy, cx, cy = intrinsics.unbind(-1)
    depth = root[:, 2] * torch.sqrt(fx * fy) / f_net
    return torch.stack([(uv[:, 0] - cx) * depth / fx, (uv[:, 1] - cy) * depth / fy, depth], dim=1)


class BevEstimator(OneStageEstimator):
    """BEV v1. Options: ``model`` (bev | bev-ft-agora: which official file), ``checkpoint`` (a path),
    ``center_thresh`` (default: the official crowd-mode value, 0.08 / 0.12), ``nms_thresh`` (20),
    ``relative_scale_thresh`` (1.6 / 2), ``scale_thresh`` (0.25), ``batch_size`` (8), ``precision``
    (auto | fp32 | bf16 | fp16), ``max_people`` per frame (64)."""

    name = "bev"

    def __init__(
        self,
        body_model: Any,
        device: Any = "cpu",
        *,
        model: str = "bev",
        checkpoint: str | None = None,
        center_thresh: float | None = None,
        nms_thresh: float = NMS_THRESH,
        relative_scale_thresh: float | None = None,
        scale_thresh: float = SCALE_THRESH,
        batch_size: int = 8,
        precision: str = "auto",
        max_people: int = 64,
    ) -> None:
        from backend.nets.bev import TAN_HALF_FOV, BEVv1

        if model not in MODELS:
            raise EstimatorError(f"bev: unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self._load_net(BEVv1(), find_checkpoint(model, checkpoint), body_model, device, precision)
        self.center_thresh = MODELS[model] if center_thresh is None else center_thresh
        self.nms_thresh, self.scale_thresh = nms_thresh, scale_thresh
        self.relative_scale_thresh = (RELATIVE_SCALE_THRESH[model] if relative_scale_thresh is None
                                      else relative_scale_thresh)
        self.batch_size, self.max_people, self.tan_half_fov = max(1, batch_size), max_people, TAN_HALF_FOV

    @torch.inference_mode()
    def estimate_batch(self, frames: Sequence[np.ndarray], camera: Camera) -> People:
        images, pads = preprocess(frames, self.device)
        with autocast(self.device, self.amp):
            maps = self.net(images)
            frame, zyx, score = parse_centers_3d(maps["center_3d"], self.center_thresh, self.max_people)
            cams = maps["cam_3d"].float()[frame, :, zyx[:, 0], zyx[:, 1], zyx[:, 2]]
            params = self.net.regress(maps["features"], cams, frame).float()
        return self.people(frame, score, params, pads[frame], camera, num_frames=len(frames))

    def people(self, frame: torch.Tensor, score: torch.Tensor, params: torch.Tensor, pads: torch.Tensor,
               camera: Camera, num_frames: int | None = None) -> People:
        """Regressed parameters (N, 146) -> people in the pipeline's camera, after the official duplicate
        suppression and outlier removal (per frame; ``num_frames`` defaults to the largest frame id + 1)."""
        if num_frames is None:
            num_frames = int(frame.max()) + 1 if len(frame) else 0
        cam, poses = params[:, :3], decode_poses(params[:, 3:135])
        betas = self.adapter.betas(params[:, 135:145])
        joints = self.adapter.joints(poses, betas)
        hips = 0.5 * (joints[:, 1] + joints[:, 2])  # root_align's root (stand-in for joints 45/46, see above)
        root_net = bev_translation(cam, self.tan_half_fov)
        k = camera.intrinsics_tensor(device=params.device)
        root = to_pipeline_camera(root_net, pads, k)
        transl = root - hips
        people = People(frame, poses, betas, transl, project(joints + transl[:, None], k), score,
                        {"cam": cam, "smpl_betas": params[:, 135:145], "age": params[:, 145]})
        aligned = joints - hips[:, None]
        return people.keep(self.post_process(frame, aligned, cam, root_net, pads, num_frames) & (root[:, 2] > 0))

    def post_process(self, frame: torch.Tensor, aligned: torch.Tensor, cam: torch.Tensor, root_net: torch.Tensor,
                     pads: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Keep mask (N,): duplicate suppression on the network camera's 2D projection, then outlier removal
        among the survivors."""
        points = aligned.float() + root_net[:, None].float()
        pj2d = NET_FOCAL * points[..., :2] / (points[..., 2:] + 1e-6) / (INPUT_SIZE / 2)
        keep = suppress_duplicates(frame, input_to_image(pj2d, pads), cam[:, 0], pads[:, 0], num_frames,
                                   self.nms_thresh)
        kept = torch.nonzero(keep)[:, 0]
        inliers = remove_outliers(frame[kept], root_net[kept], cam[kept, 0], num_frames,
                                  self.relative_scale_thresh, self.scale_thresh)
        keep[kept[~inliers]] = False
        return keep

    def close(self) -> None:
        self.net = None  # type: ignore[assignment]
