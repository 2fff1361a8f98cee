"""``bev``: BEV v1 (ROMP with a bird's-eye view of depth) with the user's official checkpoint.

Same preprocessing, precision and body handling as :mod:`backend.estimators.romp`. BEV parses a 3D centre map
(depth x y x x), reads each person's camera (s, y, x) from the 3D camera map and regresses 146 parameters:
cam, 6D global orientation, 21 x 6D joints and 11 betas. The 11th beta blends SMPL towards the kid template
(SMPL-A); it is ignored here, as is the SMIL switch for ``betas[10] > 0.8``, because no kid template is supplied
to the pipeline's body models (it is kept in ``extras['age']``).

Camera: BEV's translation is closed-form for FOV 60 degrees at 512 px: depth = 1/(s tan30 + 1e-3) and
(x, y) = (cam_x, cam_y) * depth * tan30, for the hip centre (BEV roots meshes at the mean of the hips; the
mean of SMPL joints 1 and 2 stands in for SPIN's hip joints 45/46 here). To express people in the pipeline's
camera without disturbing BEV's relative depths, every person's depth is multiplied by the same ratio
f_pipeline / f_net (f_net = 443.4 * side/512 in original pixels), and x, y are chosen so that the hip centre
projects through the pipeline camera onto the pixel where the network's camera put it. Apparent sizes and the
depth order of the people are thus preserved.

Not implemented (documented gaps): the official duplicate NMS on projected 2D joints and the relative-scale
outlier removal; the ByteTrack-style temporal tracker (tracking is the pipeline's job).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from backend.camera import Camera
from backend.estimators.base import EstimatorError, FrameEstimates
from backend.estimators.centermaps import BEV_CENTER_THRESH, BEV_FT_AGORA_CENTER_THRESH, parse_centers_3d
from backend.estimators.romp import (
    INPUT_SIZE, NET_FOCAL, BodyAdapter, People, autocast, batches, camera_tensor, decode_poses, input_to_image,
    prepare_net, preprocess, project, resolve_precision,
)
from backend.weights import find_checkpoint, load_weights

MODELS = {"bev": BEV_CENTER_THRESH, "bev-ft-agora": BEV_FT_AGORA_CENTER_THRESH}


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


class BevEstimator:
    """BEV v1. Options: ``model`` (bev | bev-ft-agora: which official file), ``checkpoint`` (a path),
    ``center_thresh`` (default: the official crowd-mode value, 0.08 / 0.12), ``batch_size`` (8), ``precision``
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
        batch_size: int = 8,
        precision: str = "auto",
        max_people: int = 64,
    ) -> None:
        from backend.nets.bev import TAN_HALF_FOV, BEVv1

        if model not in MODELS:
            raise EstimatorError(f"bev: unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.device = torch.device(device)
        self.amp = resolve_precision(precision, self.device)
        self.net = prepare_net(load_weights(BEVv1(), find_checkpoint(model, checkpoint)), self.device)
        self.adapter = BodyAdapter(body_model, self.name)
        self.center_thresh = MODELS[model] if center_thresh is None else center_thresh
        self.batch_size, self.max_people, self.tan_half_fov = max(1, batch_size), max_people, TAN_HALF_FOV

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera) -> list[FrameEstimates]:
        out: list[FrameEstimates] = []
        for chunk in batches(frames, self.batch_size):
            out += self.estimate_batch(chunk, camera).split(len(chunk))
        return out

    @torch.inference_mode()
    def estimate_batch(self, frames: Sequence[np.ndarray], camera: Camera) -> People:
        images, pads = preprocess(frames, self.device)
        with autocast(self.device, self.amp):
            maps = self.net(images)
            frame, zyx, score = parse_centers_3d(maps["center_3d"], self.center_thresh, self.max_people)
            cams = maps["cam_3d"].float()[frame, :, zyx[:, 0], zyx[:, 1], zyx[:, 2]]
            params = self.net.regress(maps["features"], cams, frame).float()
        return self.people(frame, score, params, pads[frame], camera)

    def people(self, frame: torch.Tensor, score: torch.Tensor, params: torch.Tensor, pads: torch.Tensor,
               camera: Camera) -> People:
        """Regressed parameters (N, 146) -> people in the pipeline's camera."""
        cam, poses = params[:, :3], decode_poses(params[:, 3:135])
        betas = self.adapter.betas(params[:, 135:145])
        joints = self.adapter.joints(poses, betas)
        hips = 0.5 * (joints[:, 1] + joints[:, 2])
        k = camera_tensor(camera, params.device)
        root = to_pipeline_camera(bev_translation(cam, self.tan_half_fov), pads, k)
        transl = root - hips
        people = People(frame, poses, betas, transl, project(joints + transl[:, None], k), score,
                        {"cam": cam, "smpl_betas": params[:, 135:145], "age": params[:, 145]})
        return people.keep(root[:, 2] > 0)

    def close(self) -> None:
        self.net = None  # type: ignore[assignment]
