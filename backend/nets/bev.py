"""BEV v1 (Sun et al., CVPR 2022): HRNet-W32, front-view detection, bird's-eye-view depth, 3D centre and camera
maps, and an MLP that regresses SMPL(-A) parameters per detected person. Official key names (specs/keys/
bev_v1_BEV.pth.txt, including the ``coordmap_3d`` buffer)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from backend.nets.blocks import BN_MOMENTUM, BasicBlock, BasicBlock1D, BasicBlock3D
from backend.nets.hrnet import HRNetW32
from backend.nets.romp import normalize_signed

MAP_SIZE = 128
DEPTH_LEVELS = 64
NUM_PARAMS = 143  # 6D global (6) + 21 x 6D (126) + 11 betas (10 SMPL + 1 age/kid blend)
FEATURE_CHANNELS = 128
FOV_DEGREES = 60.0


def cam3d_anchors(fov_degrees: float = FOV_DEGREES, size: int = MAP_SIZE) -> np.ndarray:
    """The 64 scale anchors of the depth axis: depth levels [1, 10, 20, 100] m with [4, 50, 6, 4] bins, scale =
    1/tan(fov/2)/depth, interpolated linearly from 8 downwards (``get_cam3dmap_anchor``)."""
    depth_level = np.array([1, 10, 20, 100], dtype=np.float32)
    bins = (np.array([2 / 64.0, 25 / 64.0, 3 / 64.0, 2 / 64.0], dtype=np.float32) * size).astype(np.int64)
    scales = 1 / np.tan(np.radians(fov_degrees / 2.0)) / depth_level
    anchors, previous = [], 8.0
    for scale, count in zip(scales, bins):
        anchors.append(previous - np.arange(1, count + 1) / count * (previous - scale))
        previous = scale
    return np.concatenate(anchors).astype(np.float32)


def coord_maps_3d(anchors: torch.Tensor, size: int = MAP_SIZE) -> torch.Tensor:
    """(1, D, size, size, 3): (Z = anchor scale, Y, X) with Y, X = arange(size)/size*2-1."""
    depth = len(anchors)
    r = torch.arange(size, dtype=torch.float32) / size * 2 - 1
    z = anchors.reshape(1, depth, 1, 1, 1).expand(1, depth, size, size, 1)
    y = r.reshape(1, 1, size, 1, 1).expand(1, depth, size, size, 1)
    x = r.reshape(1, 1, 1, size, 1).expand(1, depth, size, size, 1)
    return torch.cat([z, y, x], dim=-1).contiguous()


def _head(in_ch: int, out_ch: int | None) -> nn.Sequential:
    """BasicBlock(in -> 128, downsample = conv1x1 with bias) [+ conv1x1 -> out_ch]."""
    layers: list[nn.Module] = [
        nn.Sequential(BasicBlock(in_ch, FEATURE_CHANNELS, downsample=nn.Conv2d(in_ch, FEATURE_CHANNELS, 1)))
    ]
    if out_ch is not None:
        layers.append(nn.Conv2d(FEATURE_CHANNELS, out_ch, 1))
    return nn.Sequential(*layers)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2), nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True)]


class BEVv1(nn.Module):
    """Dense part of BEV. ``forward`` returns the maps; ``regress`` turns sampled people into parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = HRNetW32()
        self.register_buffer("cam3dmap_anchor", torch.from_numpy(cam3d_anchors()), persistent=False)
        self.register_buffer("coordmap_3d", coord_maps_3d(self.cam3dmap_anchor))
        self.position_embeddings = nn.Embedding(MAP_SIZE, FEATURE_CHANNELS, padding_idx=0)
        self.transformer = nn.Sequential(
            nn.Linear(FEATURE_CHANNELS, 512), nn.ReLU(inplace=True), nn.Dropout(0.2),
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.2),
            nn.Linear(512, NUM_PARAMS),
        )
        c = self.backbone.channels
        self.det_head = _head(c, 4)
        self.param_head = _head(c, None)
        bv = MAP_SIZE // 8
        self.bv_pre_layers = nn.Sequential(*_conv_bn_relu(c, bv, 1), *_conv_bn_relu(bv, bv, 3), *_conv_bn_relu(bv, bv, 1))
        self.bv_out_layers = nn.Sequential(
            BasicBlock1D((bv + 4) * MAP_SIZE, 512), BasicBlock1D(512, 512), BasicBlock1D(512, DEPTH_LEVELS * 2)
        )
        self.center_map_refiner = nn.Sequential(BasicBlock3D(1, 1))
        self.cam_map_refiner = nn.Sequential(BasicBlock3D(3, 3))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 512, 512, 3) RGB 0..255 -> ``center_3d`` (B, 64, 128, 128) (depth, y, x), ``cam_3d``
        (B, 3, 64, 128, 128) (scale, y, x) and ``features`` (B, 128, 128, 128) for :meth:`regress`."""
        x = self.backbone(normalize_signed(images))[0]
        maps_fv = self.det_head(x)
        center_fv, cam_offset = maps_fv[:, :1], maps_fv[:, 1:4]
        img_feats = self.bv_pre_layers(x)
        bv_in = torch.cat([center_fv, cam_offset, img_feats], 1)
        bv = self.bv_out_layers(bv_in.reshape(bv_in.shape[0], -1, MAP_SIZE))
        center_bv, cam_offset_bv = bv[:, :DEPTH_LEVELS], bv[:, DEPTH_LEVELS:]
        center_3d = center_fv * center_bv.unsqueeze(2)  # (B,1,Y,X) * (B,D,1,X) -> (B,D,Y,X)
        center_3d = self.center_map_refiner(center_3d.unsqueeze(1)).squeeze(1)
        cam_3d = self.coordmap_3d.to(cam_offset.dtype) + cam_offset.permute(0, 2, 3, 1).unsqueeze(1)
        # The bird's-eye offset goes to component 2 (the X slot), exactly as in the official code.
        bv_x = cam_3d[..., 2] + cam_offset_bv.unsqueeze(2)  # (B,D,Y,X) + (B,D,1,X)
        cam_3d = torch.cat([cam_3d[..., :2], bv_x.unsqueeze(-1)], dim=-1)
        cam_3d = self.cam_map_refiner(cam_3d.permute(0, 4, 1, 2, 3))
        return {"center_3d": center_3d, "cam_3d": cam_3d, "center_fv": center_fv, "features": self.param_head(x)}

    def depth_index(self, scale: torch.Tensor) -> torch.Tensor:
        """Nearest anchor of each person's scale, clamped to [1, 127] like ``denormalize_center``."""
        return torch.argmin((scale[:, None] - self.cam3dmap_anchor[None]).abs(), dim=1).clamp(1, MAP_SIZE - 1)

    def regress(self, features: torch.Tensor, cams: torch.Tensor, batch_ids: torch.Tensor) -> torch.Tensor:
        """People's params (N, 146) = cam (3) + MLP(feature at the cam's (y, x) + depth embedding) (143)."""
        cz = self.depth_index(cams[:, 0])
        cyx = ((cams[:, 1:] + 1) / 2 * MAP_SIZE).clamp(1, MAP_SIZE - 1).long()
        sampled = features[batch_ids, :, cyx[:, 0], cyx[:, 1]]
        params = self.transformer(sampled + self.position_embeddings(cz).to(sampled.dtype))
        return torch.cat([cams.to(params.dtype), params], dim=1)


TAN_HALF_FOV = math.tan(math.radians(FOV_DEGREES / 2))
