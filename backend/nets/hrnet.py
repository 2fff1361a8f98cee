"""HRNet-W32 ("HigherResolutionNet" in ROMP/BEV, the PARE backbone) with the official module names.

Stages: stem (two stride-2 3x3 convs) -> layer1 (4 Bottlenecks) -> stage2..4 with 2, 3 and 4 parallel branches
(32/64/128/256 channels at strides 4/8/16/32). With ``multi_scale_output=False`` the last module of stage4 fuses
into branch 0 only (ROMP/BEV: keys ``stage4.2.fuse_layers.0.*`` only) and the net returns (B, 32, H/4, W/4).

PARE's variant (``hrnet_w32-conv``) keeps all four outputs and adds, in this key order after ``stage4``:
``final_layer`` (conv1x1 32 -> 24 with bias; in the checkpoint but unused by PARE's forward) and
``upsample_stage_{2,3,4}`` (1/2/3 x [bilinear x2 (align_corners=True), conv3x3 no bias, BN, ReLU] on branches
1/2/3); :meth:`HRNetW32.concat_features` then concatenates the four branches at stride 4 (32+64+128+256 = 480).
Both extras are off by default, so ROMP/BEV state_dicts are unchanged.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from backend.nets.blocks import BN_MOMENTUM, BasicBlock, Bottleneck, make_layer


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every output branch sums all inputs resampled to its resolution."""

    def __init__(self, channels: Sequence[int], num_blocks: Sequence[int], multi_scale_output: bool = True) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, n) for c, n in zip(channels, num_blocks))
        outputs = self.num_branches if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse(channels, i, j) for j in range(self.num_branches)) for i in range(outputs)
        ) if self.num_branches > 1 else None
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _fuse(channels: Sequence[int], i: int, j: int) -> nn.Module | None:
        """Resample branch j to branch i: 1x1 conv + nearest upsampling, or a chain of stride-2 3x3 convs."""
        if j > i:
            return nn.Sequential(
                nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                nn.BatchNorm2d(channels[i], momentum=BN_MOMENTUM),
                nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
            )
        if j == i:
            return None
        steps = [_conv_bn(channels[j], channels[j], 3, 2, relu=True) for _ in range(i - j - 1)]
        steps.append(_conv_bn(channels[j], channels[i], 3, 2, relu=False))
        return nn.Sequential(*steps)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = [branch(xi) for branch, xi in zip(self.branches, x)]
        if self.fuse_layers is None:
            return x
        fused = []
        for i, layers in enumerate(self.fuse_layers):
            y = x[i]
            for j, layer in enumerate(layers):
                if j != i:
                    y = y + layer(x[j])
            fused.append(self.relu(y))
        return fused


def _transition(pre: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Per new branch: a 3x3 conv where channels change, None where they do not, stride-2 convs for new branches."""
    layers: list[nn.Module | None] = []
    for i, out_ch in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], out_ch, 3, 1, relu=True) if pre[i] != out_ch else None)
        else:
            steps = [
                _conv_bn(pre[-1], out_ch if k == i - len(pre) else pre[-1], 3, 2, relu=True)
                for k in range(i + 1 - len(pre))
            ]
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


def _stage(channels: Sequence[int], modules: int, multi_scale_output: bool) -> nn.Sequential:
    blocks = [4] * len(channels)
    return nn.Sequential(
        *(HighResolutionModule(channels, blocks, multi_scale_output or m < modules - 1) for m in range(modules))
    )


def _upsample(channels: int, steps: int) -> nn.Sequential:
    """PARE's ``_make_upsample_layer``: per step Upsample x2 (bilinear, align_corners) + conv3x3 + BN + ReLU."""
    layers: list[nn.Module] = []
    for _ in range(steps):
        layers += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class HRNetW32(nn.Module):
    """HRNet-W32. Input: BCHW float already normalised by the caller's convention; see ``forward``."""

    channels = 32  # output channels of branch 0

    def __init__(self, multi_scale_output: bool = False, final_layer_channels: int = 0,
                 conv_upsample: bool = False) -> None:
        super().__init__()
        if conv_upsample and not multi_scale_output:
            raise ValueError("conv_upsample needs multi_scale_output=True (all four branches)")
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, 64, 64, 4)
        self.transition1 = _transition([256], [32, 64])
        self.stage2 = _stage([32, 64], 1, True)
        self.transition2 = _transition([32, 64], [32, 64, 128])
        self.stage3 = _stage([32, 64, 128], 4, True)
        self.transition3 = _transition([32, 64, 128], [32, 64, 128, 256])
        self.stage4 = _stage([32, 64, 128, 256], 3, multi_scale_output)
        if final_layer_channels:
            self.final_layer = nn.Conv2d(32, final_layer_channels, 1, 1, 0)
        if conv_upsample:
            self.upsample_stage_2 = _upsample(64, 1)
            self.upsample_stage_3 = _upsample(128, 2)
            self.upsample_stage_4 = _upsample(256, 3)

    @staticmethod
    def _branch_inputs(transition: nn.ModuleList, y: list[torch.Tensor]) -> list[torch.Tensor]:
        """New branches grow from the lowest-resolution output, existing ones from their own output."""
        return [
            (y[i] if i < len(y) else y[-1]) if t is None else t(y[i] if i < len(y) else y[-1])
            for i, t in enumerate(transition)
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> list of branch outputs; branch 0 is (B, 32, H/4, W/4)."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        y = self.stage2(self._branch_inputs(self.transition1, [x]))
        y = self.stage3(self._branch_inputs(self.transition2, y))
        return self.stage4(self._branch_inputs(self.transition3, y))

    def concat_features(self, x: torch.Tensor) -> torch.Tensor:
        """PARE (``conv_upsample=True``): (B, 3, H, W) -> (B, 480, H/4, W/4), the four branches at stride 4."""
        y = self.forward(x)
        ups = (self.upsample_stage_2, self.upsample_stage_3, self.upsample_stage_4)
        return torch.cat([y[0], *(up(yi) for up, yi in zip(ups, y[1:]))], dim=1)
