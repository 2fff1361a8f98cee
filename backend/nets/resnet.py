"""ResNet-50 with three deconvolution layers (ROMP's ResNet-50 backbone, ``romp/lib/models/resnet_50.py``):
(B, 3, 512, 512) -> 2048 x 16 x 16 -> (B, 64, 128, 128). Plain torch, torchvision's module names."""

from __future__ import annotations

import torch
from torch import nn

from backend.nets.blocks import BN_MOMENTUM, Bottleneck, make_layer


def _deconv_layers(in_ch: int, channels: tuple[int, ...] = (256, 128, 64)) -> nn.Sequential:
    """[ConvTranspose2d k4 s2 p1 (no bias), BN, ReLU] x 3: keys deconv_layers.{0,1}, {3,4}, {6,7}."""
    layers: list[nn.Module] = []
    for out_ch in channels:
        layers += [
            nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, output_padding=0, bias=False),
            nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        in_ch = out_ch
    return nn.Sequential(*layers)


class ResNet50Deconv(nn.Module):
    """Input: BCHW, RGB in 0..1 normalised with ImageNet mean/std (the caller does it); output stride 4."""

    channels = 64

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = make_layer(Bottleneck, 64, 64, 3)
        self.layer2 = make_layer(Bottleneck, 256, 128, 4, stride=2)
        self.layer3 = make_layer(Bottleneck, 512, 256, 6, stride=2)
        self.layer4 = make_layer(Bottleneck, 1024, 512, 3, stride=2)
        self.deconv_layers = _deconv_layers(2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.deconv_layers(x)
