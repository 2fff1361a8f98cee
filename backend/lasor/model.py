"""The LASOR regressor: (17 keypoint heatmaps + silhouette) -> small ResNet encoder -> iterative error feedback
(IEF, two fully connected layers, 3 iterations) -> pose (6D per joint), betas, weak-perspective camera (s, tx, ty).

The paper uses ResNet-18/50 on 256 x 256 inputs; this CPU-trained model is a 4-stage ResNet of basic blocks
(32-64-128-256 channels, one block per stage) on 64 x 64 inputs. The IEF starts from mean parameters
(``mean_pose``: the pose sampler's mean body pose facing the camera, betas 0, s = 0.9), as SPIN/LASOR do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from backend.body.rotations import matrix_to_rot6d, rot6d_to_matrix
from backend.lasor.keypoints import NUM_KEYPOINTS
from backend.nets.blocks import BN_MOMENTUM, BasicBlock, make_layer


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: int = 1
    hidden: int = 512
    iterations: int = 3
    num_betas: int = 6
    input_size: int = 64  # network input, pixels
    render_size: int = 32  # silhouettes are sampled at this size, then resized to input_size (training and use)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d)


class LasorRegressor(nn.Module):
    def __init__(self, config: ModelConfig | None = None, mean_rotmats: torch.Tensor | None = None) -> None:
        super().__init__()
        cfg = self.config = config or ModelConfig()
        w = cfg.widths
        self.stem = nn.Sequential(
            nn.Conv2d(NUM_KEYPOINTS + 1, w[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w[0], momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
        layers, inplanes = [], w[0]
        for i, width in enumerate(w):
            layers.append(make_layer(BasicBlock, inplanes, width, cfg.blocks, stride=1 if i == 0 else 2))
            inplanes = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        npose, nb = 24 * 6, cfg.num_betas
        self.fc1 = nn.Linear(w[-1] + npose + nb + 3, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(0.2)
        self.dec_pose = nn.Linear(cfg.hidden, npose)
        self.dec_shape = nn.Linear(cfg.hidden, nb)
        self.dec_cam = nn.Linear(cfg.hidden, 3)
        for dec in (self.dec_pose, self.dec_shape, self.dec_cam):
            nn.init.xavier_uniform_(dec.weight, gain=0.01)
            nn.init.zeros_(dec.bias)
        if mean_rotmats is None:
            mean_rotmats = torch.eye(3).expand(24, 3, 3)
        self.register_buffer("init_pose", matrix_to_rot6d(mean_rotmats.float()).reshape(-1).clone())
        self.register_buffer("init_shape", torch.zeros(nb))
        self.register_buffer("init_cam", torch.tensor([0.9, 0.0, 0.0]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        feat = self.pool(self.layers(self.stem(x))).flatten(1)
        pose = self.init_pose.expand(b, -1)
        shape = self.init_shape.expand(b, -1)
        cam = self.init_cam.expand(b, -1)
        for _ in range(self.config.iterations):
            h = self.drop(torch.relu(self.fc1(torch.cat([feat, pose, shape, cam], 1))))
            h = self.drop(torch.relu(self.fc2(h)))
            pose = pose + self.dec_pose(h)
            shape = shape + self.dec_shape(h)
            cam = cam + self.dec_cam(h)
        return {"rotmats": rot6d_to_matrix(pose.reshape(b, 24, 6)), "betas": shape, "cam": cam}
