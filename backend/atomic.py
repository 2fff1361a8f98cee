"""Writing files so that readers see the whole file or none of it: a temporary file beside the target, then a
rename (atomic on one filesystem). A crash, a cancel or an invalid payload never leaves half a file behind, and a
failed write never replaces a good file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` when the block succeeds, else it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        yield Path(name)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def save_npz(target: str | os.PathLike, arrays: Mapping[str, object], compressed: bool = False) -> Path:
    """``np.savez`` (or ``savez_compressed``) to ``target`` atomically."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(target) as tmp, tmp.open("wb") as handle:
        save(handle, **arrays)
    return Path(target)
