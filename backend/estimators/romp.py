"""``romp``: ROMP v1 (HRNet-W32 or ResNet-50) with the user's official checkpoint; the fast multi-person path.

Per batch of frames: letterbox to 512 (zero padding, centred, bicubic; ``one_stage.preprocess``), one forward
pass (bf16 autocast and channels_last on CUDA), centre-map parsing on the device, SMPL parameters sampled at
the centres, 6D -> rotation, then the camera.

Camera: ROMP predicts a weak-perspective camera (s, tx, ty) in the padded 512 input. As in the official code,
the body's 24 joints are projected orthographically with it; the translation is then the perspective solve
that best reprojects the joints onto those 2D points. The official code runs ``cv2.solvePnPRansac`` (EPnP) with
f=443.4 at 512 px and keeps only its translation. Here a closed-form, batched, weighted linear least-squares
solve with the rotation held at identity does it for all people at once on the device: the 2D targets are the
exact projection of the same joints, so there are no outliers for RANSAC to reject, and the rotation that EPnP
would re-estimate is discarded anyway. The solve uses the pipeline's camera directly (the 2D points are first
mapped back to original pixels), so projecting the people through THAT camera matches what the network saw;
with a longer focal length the people come out proportionally farther away.

Body model: ROMP regresses SMPL parameters. With an SMPL body model (``smpl-*``) its 10 betas are used. The open
body has a different shape space (6 coefficients with other meanings), so poses pass through and betas are set
to zero (a warning says so).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from backend.estimators.base import EstimatorError
from backend.estimators.centermaps import ROMP_CENTER_THRESH, parse_centers_2d
from backend.estimators.one_stage import (
    INPUT_SIZE,
    OneStageEstimator,
    People,
    autocast,
    decode_poses,
    input_to_image,
    preprocess,
)
from backend.estimators.weights import find_checkpoint
from backend.geometry.camera import Camera, project, solve_translation


class RompEstimator(OneStageEstimator):
    """ROMP v1. Options: ``backbone`` (hrnet32 | resnet50), ``checkpoint`` (a path; default: the official file
    name in the weights folder), ``center_thresh`` (0.25), ``batch_size`` (16), ``precision`` (auto | fp32 |
    bf16 | fp16), ``max_people`` per frame (64), ``input_size`` (512, the official one; smaller multiples of 64 only
    for benchmark smoke runs on the CPU: the weights were trained at 512)."""

    name = "romp"

    def __init__(
        self,
        body_model: Any,
        device: Any = "cpu",
        *,
        backbone: str = "hrnet32",
        checkpoint: str | None = None,
        center_thresh: float = ROMP_CENTER_THRESH,
        batch_size: int = 16,
        precision: str = "auto",
        max_people: int = 64,
        input_size: int = INPUT_SIZE,
    ) -> None:
        from backend.nets.romp import BACKBONES, ROMPv1

        if backbone not in BACKBONES:
            raise EstimatorError(f"romp: unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        path = find_checkpoint("romp-hrnet32" if backbone == "hrnet32" else "romp-resnet50", checkpoint)
        self._load_net(ROMPv1(backbone), path, body_model, device, precision)
        self.center_thresh, self.batch_size, self.max_people = center_thresh, max(1, batch_size), max_people
        if input_size % 64:
            raise EstimatorError(f"romp: input_size must be a multiple of 64, got {input_size}")
        self.input_size = input_size

    @torch.inference_mode()
    def estimate_batch(self, frames: Sequence[np.ndarray], camera: Camera) -> People:
        """One forward pass and parsing for a batch, all on the device."""
        images, pads = preprocess(frames, self.device, size=self.input_size)
        with autocast(self.device, self.amp):
            center_maps, params_maps = self.net(images)
        frame, flat, score = parse_centers_2d(center_maps, self.center_thresh, self.max_people)
        params = params_maps.float().flatten(2).transpose(1, 2)[frame, flat]  # (N, 145)
        return self.people(frame, score, params, pads[frame], camera)

    def people(self, frame: torch.Tensor, score: torch.Tensor, params: torch.Tensor, pads: torch.Tensor,
               camera: Camera) -> People:
        """Sampled parameters (N, 145) -> people in the pipeline's camera."""
        cam, poses = params[:, :3], decode_poses(params[:, 3:135])
        betas = self.adapter.betas(params[:, 135:145])
        joints = self.adapter.joints(poses, betas)
        ortho = cam[:, None, :1] * joints[..., :2] + cam[:, None, 1:]  # normalised input coordinates
        pixels = input_to_image(ortho, pads)
        k = camera.intrinsics_tensor(device=params.device)
        transl = solve_translation(joints, pixels, k)
        people = People(frame, poses, betas, transl, project(joints + transl[:, None], k), score,
                        {"cam": cam, "smpl_betas": params[:, 135:145]})
        return people.keep(transl[:, 2] > 0)

    def close(self) -> None:
        self.net = None  # type: ignore[assignment]
