"""PARE (Kocabas et al., ICCV 2021), HRNet-W32 variant, with the official key names (``backbone.*``, ``head.*``).

The released HRNet model's configuration is assumed (specs/estimators.md §2.3): backbone ``hrnet_w32-conv``,
``USE_HEATMAPS: part_segm``, keypoint (part) attention with a plain spatial softmax, 2 conv layers x 128 per
branch, 64 SMPL features, no iterative / HMR regression. ``use_mean_pose`` / ``use_mean_camshape`` cannot be
told from the weights: they are options (default False, the code default), read from the checkpoint's
hyper-parameters when those can be read safely (see backend.estimators.weights).

Input: (B, 3, 224, 224) RGB, x/255 then ImageNet mean/std (:func:`normalize_crops`). Outputs (dict):
``pred_pose`` (B, 24, 3, 3) rotation matrices (joint 0 = global orientation in the crop camera, OpenCV axes),
``pred_pose_6d`` (B, 24, 6) (§6.3 layout), ``pred_shape`` (B, 10) SMPL betas, ``pred_cam`` (B, 3) = (s, tx, ty)
with the crop-camera convention x_n = s (X + t_xy) (see backend.estimators.pare), ``pred_segm_mask``
(B, 25, 56, 56) part logits (channel 0 = background).
"""

from __future__ import annotations

import torch
from torch import nn

from backend.body.rotations import rot6d_to_matrix
from backend.nets.blocks import BN_MOMENTUM
from backend.nets.hrnet import HRNetW32

NUM_JOINTS = 24
NUM_PARTS = NUM_JOINTS + 1  # background + 24 SMPL parts
FEATURES = 128  # NUM_DECONV_FILTERS
SMPL_FEATURES = 64  # NUM_FEATURES_SMPL
BACKBONE_CHANNELS = 480  # 32 + 64 + 128 + 256
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_crops(crops: torch.Tensor) -> torch.Tensor:
    """(B, 224, 224, 3) RGB float 0..255 -> (B, 3, 224, 224): ToTensor (/255) then ImageNet Normalize."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=crops.dtype, device=crops.device)
    std = torch.tensor(IMAGENET_STD, dtype=crops.dtype, device=crops.device)
    return ((crops / 255.0 - mean) / std).permute(0, 3, 1, 2)


def _conv_branch(in_ch: int, channels: int = FEATURES, layers: int = 2) -> nn.Sequential:
    """``_make_conv_layer``: per layer conv3x3 (no bias) + BN + ReLU (keys 0, 1, 3, 4)."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [
            nn.Conv2d(in_ch if i == 0 else channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*modules)


class LocallyConnected2d(nn.Module):
    """PARE's per-joint linear layer on (B, C, J, 1): weight (1, out, C, J, 1, k*k) with k = 1, no bias;
    out[b, o, j] = sum_c x[b, c, j] W[0, o, c, j, 0, 0]."""

    def __init__(self, in_channels: int, out_channels: int, joints: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, joints, 1, 1) * in_channels ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, J) -> (B, out, J)
        return torch.einsum("bcj,ocj->boj", x, self.weight[0, :, :, :, 0, 0])


def part_attention(features: torch.Tensor, part_logits: torch.Tensor) -> torch.Tensor:
    """``KeypointAttention`` (act softmax, no scale, no post-conv): features (B, C, H, W), part logits
    (B, J, H, W) -> (B, C, J) = per part, the softmax(HW)-weighted sum of the features."""
    b, j = part_logits.shape[:2]
    attention = torch.softmax(part_logits.reshape(b, j, -1).float(), dim=-1).to(features.dtype)
    return torch.matmul(attention, features.flatten(2).transpose(1, 2)).transpose(1, 2)


class PareHead(nn.Module):
    """2D part branch (``keypoint_*``), 3D branch (``smpl_*``), part attention, pose / shape / camera MLPs."""

    def __init__(self, in_channels: int = BACKBONE_CHANNELS, use_mean_pose: bool = False,
                 use_mean_camshape: bool = False) -> None:
        super().__init__()
        self.use_mean_pose, self.use_mean_camshape = use_mean_pose, use_mean_camshape
        # Buffers from smpl_mean_params.npz in the checkpoint; placeholders here (identity 6D, unit scale).
        self.register_buffer("temperature", torch.tensor(1.0))
        self.register_buffer("init_pose", torch.tensor([1.0, 0, 0, 1, 0, 0]).repeat(NUM_JOINTS)[None])
        self.register_buffer("init_shape", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.tensor([[0.9, 0.0, 0.0]]))
        self.keypoint_deconv_layers = _conv_branch(in_channels)
        self.smpl_deconv_layers = _conv_branch(in_channels)
        self.keypoint_final_layer = nn.Conv2d(FEATURES, NUM_PARTS, 1)
        self.smpl_final_layer = nn.Conv2d(FEATURES, SMPL_FEATURES, 1)
        self.shape_mlp = nn.Linear(SMPL_FEATURES * NUM_JOINTS, 10)
        self.cam_mlp = nn.Linear(SMPL_FEATURES * NUM_JOINTS, 3)
        self.pose_mlp = LocallyConnected2d(FEATURES, 6, NUM_JOINTS)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        part_logits = self.keypoint_final_layer(self.keypoint_deconv_layers(features))  # (B, 25, 56, 56)
        smpl_feats = self.smpl_deconv_layers(features)  # (B, 128, 56, 56)
        attention = part_logits[:, 1:]  # drop the background channel
        pose_feats = part_attention(smpl_feats, attention)  # (B, 128, 24)
        cam_shape_feats = part_attention(self.smpl_final_layer(smpl_feats), attention)  # (B, 64, 24)
        flat = cam_shape_feats.flatten(1)  # channel-major: c * 24 + j
        pose = self.pose_mlp(pose_feats)  # (B, 6, 24)
        cam, shape = self.cam_mlp(flat), self.shape_mlp(flat)
        if self.use_mean_pose:  # the official quirk: reshape(N, 6, 24), not per-joint contiguous
            pose = pose + self.init_pose.reshape(1, 6, NUM_JOINTS)
        if self.use_mean_camshape:
            cam, shape = cam + self.init_cam, shape + self.init_shape
        pose6d = pose.transpose(1, 2).float()  # (B, 24, 6)
        return {
            "pred_pose": rot6d_to_matrix(pose6d),
            "pred_pose_6d": pose6d,
            "pred_cam": cam.float(),
            "pred_shape": shape.float(),
            "pred_segm_mask": part_logits,
        }


class PARE(nn.Module):
    """Backbone + head; ``state_dict`` equals specs/keys/pare_hrnet32_core_assumed_cfg.txt (1905 entries)."""

    def __init__(self, use_mean_pose: bool = False, use_mean_camshape: bool = False) -> None:
        super().__init__()
        self.backbone = HRNetW32(multi_scale_output=True, final_layer_channels=NUM_JOINTS, conv_upsample=True)
        self.head = PareHead(BACKBONE_CHANNELS, use_mean_pose, use_mean_camshape)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images``: (B, 3, 224, 224) already normalised (:func:`normalize_crops`)."""
        return self.head(self.backbone.concat_features(images))
