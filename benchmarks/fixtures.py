"""What the benchmarks run on: checkpoints in the official key layouts with seeded random weights (official
weights cannot be downloaded on the development machines, and speed and CUDA-vs-CPU agreement do not depend on
trained values), and frames (a real picture or clip when given, synthetic ones otherwise).

The layouts are the ones the tests write (tests/test_romp.py, test_bev.py, test_pare.py): ROMP's
``model_state_dict`` with the ``module.`` prefix, BEV's plain state dict, PARE's Lightning checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

ROMP_FILES = {"hrnet32": "ROMP_HRNet32_V1.pkl", "resnet50": "ROMP_ResNet50_V1.pkl"}
CENTRE_BIAS = 3.0  # raw centre map ~3 everywhere, far above ROMP's 0.25: parsing and the camera solve do real work
PARE_CAMERA = (0.9, 0.0, 0.0)  # s, tx, ty: a sane crop camera (random weights give s <= 0 for some people)


def romp_checkpoint(folder: Path, backbone: str = "hrnet32", seed: int = 0) -> Path:
    """ROMP v1 in the official training layout (``module.`` prefix, wrapped dict), centre head biased."""
    from backend.nets.romp import ROMPv1

    torch.manual_seed(seed)
    net = ROMPv1(backbone)
    with torch.no_grad():
        net.final_layers[2][2].bias.fill_(CENTRE_BIAS)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    path = Path(folder) / ROMP_FILES[backbone]
    torch.save({"model_state_dict": state}, path)
    return path


def bev_checkpoint(folder: Path, seed: int = 0) -> Path:
    """BEV v1 as the official ``BEV.pth`` (a plain state dict, ``coordmap_3d`` buffer included)."""
    from backend.nets.bev import BEVv1

    torch.manual_seed(seed)
    path = Path(folder) / "BEV.pth"
    torch.save(BEVv1().state_dict(), path)
    return path


def pare_checkpoint(folder: Path, seed: int = 0) -> Path:
    """PARE HRNet-W32 as the official Lightning ``.ckpt`` (``model.`` prefix) with its hyper-parameters."""
    from backend.nets.pare import PARE

    torch.manual_seed(seed)
    net = PARE()
    with torch.no_grad():
        net.head.cam_mlp.weight.mul_(1e-3)
        net.head.cam_mlp.bias.copy_(torch.tensor(PARE_CAMERA))
    hparams = {"PARE": {"BACKBONE": "hrnet_w32-conv", "USE_KEYPOINT_ATTENTION": True, "NUM_DECONV_LAYERS": 2,
                        "NUM_DECONV_FILTERS": 128, "USE_MEAN_CAMSHAPE": False, "USE_MEAN_POSE": False},
               "DATASET": {"USE_HEATMAPS": "part_segm", "IMG_RES": 224, "FOCAL_LENGTH": 5000.0}}
    path = Path(folder) / "pare_w_3dpw_checkpoint.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": hparams}, path)
    return path


def synthetic_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames (blurred noise): real-looking statistics without any file."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in small]


def clip_frames(path: Path | None, count: int, start: int = 0) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` RGB frames of the clip from ``start`` (looped when the clip is shorter), and where they
    came from; synthetic 1280x720 frames without a clip."""
    if path is None:
        return synthetic_frames(count, 720, 1280), "synthetic 1280x720 frames (no --clip given)"
    from backend.sources.frames import open_source

    source = open_source(path, start, None)
    frames: list[np.ndarray] = []
    for chunk in source.chunks(count):
        frames += [frame for _, frame in chunk]
        if len(frames) >= count:
            break
    if not frames:
        raise ValueError(f"no frame could be decoded from {path}")
    looped = [frames[i % len(frames)] for i in range(count)]
    return looped, f"{Path(path).name} frames {start}..{start + len(frames) - 1}"


def square_frames(frames: list[np.ndarray], side: int) -> list[np.ndarray]:
    """Centre square crops resized to ``side``: frames that are already the network's input size, so the
    letterbox does no resize and the figure is the network's own rate at that size."""
    out = []
    for f in frames:
        h, w = f.shape[:2]
        s = min(h, w)
        crop = f[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(np.ascontiguousarray(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)))
    return out
