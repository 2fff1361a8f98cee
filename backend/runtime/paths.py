"""Where Troupe keeps files it creates: one documented cache directory, nothing else in the user's home.

Order: ``$TROUPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/troupe``, else ``~/.cache/troupe``.
Layout below it: ``body/`` (converted body models), ``weights/`` (estimator checkpoints), ``onnx/`` (the
people-finding networks exported for ONNX Runtime, the landmark model also cut in two), ``models/`` (people-finding
models, when the backend's environment cannot hold them).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of Troupe's cache (not created here)."""
    explicit = os.environ.get("TROUPE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "troupe"


def cache_subdir(name: str) -> Path:
    """A subdirectory of the cache, created on demand."""
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
