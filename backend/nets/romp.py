"""ROMP v1 (Sun et al., ICCV 2021): backbone + CoordConv + three heads, official key names (``backbone.*``,
``final_layers.{1,2,3}.*``). Input (B, 512, 512, 3) RGB float in 0..255; the net normalises it itself."""

from __future__ import annotations

import torch
from torch import nn

from backend.nets.blocks import BN_MOMENTUM, BasicBlock
from backend.nets.hrnet import HRNetW32
from backend.nets.resnet import ResNet50Deconv

NUM_PARAMS = 142  # 6D global orient (6) + 21 joints x 6D (126) + 10 betas
HEAD_CHANNELS = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("hrnet32", "resnet50")


def coord_maps(size: int = 128) -> torch.Tensor:
    """(1, 2, size, size): channel 0 = x (column), channel 1 = y (row), each arange(size)/(size-1)*2-1."""
    r = torch.arange(size, dtype=torch.float32) / (size - 1) * 2 - 1
    return torch.stack([r[None, :].expand(size, size), r[:, None].expand(size, size)])[None]


def head(in_ch: int, out_ch: int) -> nn.Sequential:
    """[0] conv k3 s2 (bias) + BN + ReLU (128 -> 64 maps), [1] 2 x Sequential(BasicBlock), [2] conv1x1 -> out."""
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(in_ch, HEAD_CHANNELS, 3, 2, 1, bias=True),
            nn.BatchNorm2d(HEAD_CHANNELS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ),
        nn.Sequential(*(nn.Sequential(BasicBlock(HEAD_CHANNELS, HEAD_CHANNELS)) for _ in range(2))),
        nn.Conv2d(HEAD_CHANNELS, out_ch, 1, 1, 0, bias=True),
    )


def normalize_signed(images: torch.Tensor) -> torch.Tensor:
    """ROMP/BEV HRNet input: BHWC 0..255 -> BCHW in -1..1 (a channels_last view, no copy)."""
    return (images * (2.0 / 255.0) - 1.0).permute(0, 3, 1, 2)


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """ROMP ResNet-50 input: BHWC 0..255 -> BCHW, x/255 then ImageNet mean/std."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)
    return ((images / 255.0 - mean) / std).permute(0, 3, 1, 2)


class ROMPv1(nn.Module):
    """Returns ``center_maps`` (B, 1, 64, 64), raw (no sigmoid), and ``params`` (B, 145, 64, 64) =
    cam (s, tx, ty) with s = 1.1**raw, then the 142 SMPL parameters (see specs/estimators.md §1.3)."""

    def __init__(self, backbone: str = "hrnet32") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown ROMP backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        self.backbone_name = backbone
        self.backbone = HRNetW32() if backbone == "hrnet32" else ResNet50Deconv()
        self.register_buffer("coordmaps", coord_maps(128), persistent=False)
        in_ch = self.backbone.channels + 2
        self.final_layers = nn.ModuleList([nn.Identity(), head(in_ch, NUM_PARAMS), head(in_ch, 1), head(in_ch, 3)])
        self.final_layers[0] = None  # type: ignore[call-overload]  # index 0 is None in the official ModuleList

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if self.backbone_name == "hrnet32":
            return self.backbone(normalize_signed(images))[0]
        return self.backbone(normalize_imagenet(images))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(images)
        coords = self.coordmaps if x.shape[-1] == self.coordmaps.shape[-1] else coord_maps(x.shape[-1]).to(x.device)
        x = torch.cat([x, coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)
        params = self.final_layers[1](x)
        center = self.final_layers[2](x)
        cam = self.final_layers[3](x)
        cam = torch.cat([torch.pow(1.1, cam[:, :1]), cam[:, 1:]], dim=1)
        return center, torch.cat([cam, params], dim=1)
