"""What the one-stage networks (ROMP, BEV) and PARE share: preprocessing, precision, SMPL decoding, output.

Preprocessing: on the CPU, cv2 ``copyMakeBorder`` + ``resize(INTER_CUBIC)`` per frame, exactly the official
``img_preprocess``. On CUDA the uint8 frames are uploaded (pinned, 1 byte per channel) and padded and resized on
the device with ``F.interpolate(mode="bicubic", align_corners=False)`` (the same Keys kernel, a = -0.75, with
pixel centres at +0.5), clamped and rounded to the integer grid as cv2's uint8 output is. They differ only by
cv2's fixed-point rounding: at most one grey level, on about 1e-5 of the values of real frames (measured on
1280x720, 1920x1080 and odd-sized crops; tests/test_romp.py bounds it).

SMPL parameters become the pipeline's body through :class:`BodyAdapter`; :class:`People` holds a batch's
people as device tensors until one host copy splits them per frame; :class:`OneStageEstimator` runs a
subclass's ``estimate_batch`` over batches of frames.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from backend.body.kinematics import forward_kinematics
from backend.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from backend.estimators.base import EstimatorError, FrameEstimates, PersonEstimate
from backend.estimators.weights import load_weights
from backend.geometry.camera import Camera

INPUT_SIZE = 512
NET_FOCAL = 443.4  # pixels at 512: FOV 60 degrees, the official PnP intrinsics
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SMPL_BETAS = 10


# ---------------------------------------------------------------- preprocessing


def letterbox(frame: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Zero-pad to a centred square and resize with INTER_CUBIC; returns the image and (side, left, top)."""
    h, w = frame.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = cv2.copyMakeBorder(frame, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_CUBIC), (side, left, top)


def letterbox_tensor(frames: torch.Tensor, size: int = INPUT_SIZE) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Device twin of :func:`letterbox` for a batch of same-sized frames (B, H, W, 3) uint8: zero-pad to a
    centred square, bicubic resize (align_corners=False), clamp and round to 0..255. Returns (B, size, size, 3)
    float and (side, left, top)."""
    h, w = frames.shape[1:3]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    x = frames.permute(0, 3, 1, 2).float()
    x = F.pad(x, (left, side - w - left, top, side - h - top))
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 255).round_()
    return x.permute(0, 2, 3, 1).contiguous(), (side, left, top)


def preprocess(
    frames: Sequence[np.ndarray], device: torch.device, on_device: bool | None = None, size: int = INPUT_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames -> (B, size, size, 3) float 0..255 on ``device`` and (B, 3) float (side, left, top).

    ``on_device`` (default: ``device`` is CUDA) letterboxes with torch on ``device`` (:func:`letterbox_tensor`);
    otherwise cv2 INTER_CUBIC on the host (:func:`letterbox`), the official preprocessing. ``size`` is 512 for
    the official networks; the benchmarks' CPU smoke runs use smaller inputs."""
    if on_device is None:
        on_device = device.type == "cuda"
    if not on_device:
        boxed = [letterbox(np.ascontiguousarray(f[..., :3]), size) for f in frames]
        images = torch.from_numpy(np.stack([b[0] for b in boxed]))
        if device.type == "cuda":
            images = images.pin_memory()
        images = images.to(device, non_blocking=True).float()
        pads = torch.tensor([b[1] for b in boxed], dtype=torch.float32, device=device)
        return images, pads

    def upload(stack: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(stack))
        return (t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)

    frames = [f[..., :3] for f in frames]
    if len({f.shape for f in frames}) == 1:  # one upload and one resize for the batch (the usual video case)
        images, pad = letterbox_tensor(upload(np.stack(frames)), size)
        pads = [pad] * len(frames)
    else:
        boxed = [letterbox_tensor(upload(f[None]), size) for f in frames]
        images, pads = torch.cat([b[0] for b in boxed]), [b[1] for b in boxed]
    return images, torch.tensor(pads, dtype=torch.float32, device=device)


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------- precision and device


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 on CUDA, fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise EstimatorError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def prepare_net(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Eval mode on ``device``; channels_last on CUDA (the BHWC input is already channels_last)."""
    net = net.eval().to(device)
    return net.to(memory_format=torch.channels_last) if device.type == "cuda" else net


# ---------------------------------------------------------------- SMPL parameters and body


def decode_poses(rot6d: torch.Tensor) -> torch.Tensor:
    """(N, 22*6) global orient + 21 body joints in 6D -> (N, 24, 3) axis-angle, hands zero (not predicted)."""
    n = rot6d.shape[0]
    aa = matrix_to_axis_angle(rot6d_to_matrix(rot6d.reshape(n, 22, 6)))
    aa = torch.nan_to_num(aa, nan=0.0)
    return torch.cat([aa, aa.new_zeros(n, 2, 3)], dim=1)


class BodyAdapter:
    """SMPL parameters -> the pipeline's body model: betas for SMPL bodies, zeros for other shape spaces."""

    def __init__(self, body_model: Any, estimator: str) -> None:
        self.body = body_model
        self.uses_betas = str(getattr(body_model, "name", "")).startswith("smpl")
        self.parents = [int(p) for p in body_model.parents.tolist()]
        if not self.uses_betas:
            warnings.warn(
                f"{estimator}: the {getattr(body_model, 'name', 'body')} model's shape space differs from SMPL's; "
                "poses are used as predicted and betas are set to zero (install SMPL for predicted shapes)",
                stacklevel=3,
            )

    def betas(self, smpl_betas: torch.Tensor) -> torch.Tensor:
        """(N, >=10) predicted betas -> (N, body.num_betas)."""
        k = self.body.num_betas
        out = smpl_betas.new_zeros(smpl_betas.shape[0], k)
        if self.uses_betas:
            m = min(k, SMPL_BETAS)
            out[:, :m] = smpl_betas[:, :m]
        return out

    def joints(self, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Posed joints (N, 24, 3) without translation: FK(poses, J(betas)); vertices are not needed here."""
        dtype = self.body.v_template.dtype
        rest = self.body.rest_joints(betas.to(dtype))
        joints, _ = forward_kinematics(axis_angle_to_matrix(poses.to(dtype)), rest, self.parents)
        return joints


# ---------------------------------------------------------------- camera


def input_to_image(points: torch.Tensor, pads: torch.Tensor) -> torch.Tensor:
    """Normalised [-1, 1] coordinates of the padded input (N, J, 2) -> original pixels; pads (N, 3)."""
    side, offset = pads[:, None, :1], pads[:, None, 1:]
    return (points + 1) * side / 2 - offset


# ---------------------------------------------------------------- output


@dataclass
class People:
    """Everyone found in a batch, as tensors (N, ...) with ``frame`` (N,) the index in the batch."""

    frame: torch.Tensor
    poses: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    joints2d: torch.Tensor
    score: torch.Tensor
    extras: dict[str, torch.Tensor]

    def keep(self, mask: torch.Tensor) -> "People":
        return People(self.frame[mask], self.poses[mask], self.betas[mask], self.transl[mask],
                      self.joints2d[mask], self.score[mask], {k: v[mask] for k, v in self.extras.items()})

    def split(self, num_frames: int) -> list[FrameEstimates]:
        """One device -> host copy, then one list of :class:`PersonEstimate` per frame."""
        host = {k: v.detach().float().cpu().numpy() for k, v in
                {"poses": self.poses, "betas": self.betas, "transl": self.transl, "joints2d": self.joints2d,
                 "score": self.score, **self.extras}.items()}
        frames = self.frame.cpu().numpy()
        out: list[FrameEstimates] = [[] for _ in range(num_frames)]
        for i, f in enumerate(frames):
            j2d = host["joints2d"][i]
            out[int(f)].append(PersonEstimate(
                poses=host["poses"][i], betas=host["betas"][i], transl=host["transl"][i], joints2d=j2d,
                confidence=float(np.clip(host["score"][i], 0.0, 1.0)),
                bbox=np.concatenate([j2d.min(0), j2d.max(0)]),
                extras={k: host[k][i] for k in self.extras} | {"center_score": float(host["score"][i])},
            ))
        return out


# ---------------------------------------------------------------- the estimator


class OneStageEstimator:
    """What ROMP and BEV share: their network on a device at a precision, the body adapter, and :meth:`estimate`
    as batches of ``batch_size`` frames through the subclass's ``estimate_batch``."""

    name: str
    batch_size: int
    input_size: int = INPUT_SIZE  # the network's square input; 512 for the official weights

    def _load_net(self, net: torch.nn.Module, path: Any, body_model: Any, device: Any, precision: str) -> None:
        self.device = torch.device(device)
        self.amp = resolve_precision(precision, self.device)
        self.net = prepare_net(load_weights(net, path), self.device)
        self.adapter = BodyAdapter(body_model, self.name)

    def estimate(self, frames: Sequence[np.ndarray], camera: Camera) -> list[FrameEstimates]:
        out: list[FrameEstimates] = []
        for chunk in batches(frames, self.batch_size):
            out += self.estimate_batch(chunk, camera).split(len(chunk))
        return out

    def estimate_batch(self, frames: Sequence[np.ndarray], camera: Camera) -> People:
        raise NotImplementedError
