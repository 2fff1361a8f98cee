"""Writing files so that readers see the whole file or none of it: a temporary file beside the target, then a
rename (atomic on one filesystem). A crash, a cancel or an invalid payload never leaves half a file behind, and a
failed write never replaces a good file.

The temporary file is named ``.<target name>.<random>.<pid>.part``: a writer killed outright (SIGKILL, power cut)
cannot remove its own, so the next write of the same target removes the parts of writers that are no longer
running, and leaves a live writer's alone. The finished file gets the mode a plain ``open()`` would give it (the
umask's), or keeps the mode of the file it replaces, instead of the temporary file's private 0600.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

PART_SUFFIX = ".part"
_ORPHAN_AGE_S = 3600  # parts without a pid (older versions) are someone's only after this long without change


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` when the block succeeds, else it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target)
    name = _new_part(target)
    try:
        yield name
        os.chmod(name, _final_mode(target))
        os.replace(name, target)
    except BaseException:
        name.unlink(missing_ok=True)
        raise


def save_npz(target: str | os.PathLike, arrays: Mapping[str, object], compressed: bool = False) -> Path:
    """What ``np.savez`` (or ``savez_compressed``) writes, to ``target`` atomically. Written here rather than by
    numpy so that a failed write (a full disk) raises its one error and nothing else: numpy leaves its zip
    object open, and that object fails again, with a traceback, when it is collected."""
    with atomic_path(target) as tmp, tmp.open("wb") as handle:
        _write_npz(handle, arrays, compressed)
    return Path(target)


def _write_npz(handle, arrays: Mapping[str, object], compressed: bool) -> None:
    archive = zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED,
                              allowZip64=True)
    try:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    except BaseException:
        archive.fp = None  # the file is discarded: no zip directory is written, now or when collected
        raise
    archive.close()


def probe_writable(target: str | os.PathLike) -> None:
    """Raise ``OSError`` unless a temporary file can be created beside ``target`` (in its nearest existing
    folder when the folders do not exist yet: they are created at write time)."""
    folder = Path(target).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(20, "a part of the path is a file, not a folder", str(folder))
    _new_part(folder / Path(target).name).unlink()


def remove_stale_parts(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of earlier writes of ``target`` whose writer is gone; returns them."""
    target = Path(target)
    prefix = f".{target.name}."
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(PART_SUFFIX) and _is_stale(entry):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _new_part(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}{PART_SUFFIX}", dir=target.parent)
    os.close(fd)
    return Path(name)


def _is_stale(entry: os.DirEntry) -> bool:
    """A part whose writer (the pid in its name) no longer runs; one without a pid (or where liveness cannot be
    asked safely) once it is an hour old."""
    pid_text = entry.name[: -len(PART_SUFFIX)].rpartition(".")[2]
    if not pid_text.isdigit() or os.name != "posix":  # Windows' os.kill(pid, 0) would end that process
        try:
            return time.time() - entry.stat().st_mtime > _ORPHAN_AGE_S
        except OSError:
            return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


def _final_mode(target: Path) -> int:
    """The replaced file's permissions, or those of a new file under the current umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the system allows (it is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
