"""Choosing the torch device: ``auto`` falls back to the CPU, an explicit ``cuda`` without CUDA is an error."""

from __future__ import annotations

import torch

from backend.errors import DeviceError
from backend.options import DEVICE_CHOICES


def resolve_device(name: str) -> torch.device:
    """Map a user choice to a usable device, with a specific reason when it cannot be honoured."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise DeviceError(
                f"CUDA was requested but torch {torch.__version__} ({build}) sees no CUDA device; "
                "use --device auto or cpu, or install the CUDA build of torch"
            )
        return torch.device(name)
    raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
