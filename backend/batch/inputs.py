"""What a batch is made of: the command line's INPUTS (files, folders, or text files listing paths) expanded
into clips, each with the name of its result file in the output folder.

A folder given as an input is a collection: each video and each picture in it is a clip, and each subfolder
holding pictures is one clip (an image sequence). A ``.txt`` file lists paths, one a line (relative ones are
relative to the list; blank lines and ``#`` comments are skipped); a listed folder is itself a clip (an image
sequence), as it is for ``reconstruct``. Result names are the inputs' stems; inputs that would share a name get
a short hash of their path, so a name never depends on the order of the inputs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from backend.errors import SourceError

LIST_SUFFIXES = frozenset({".txt", ".list"})
# The media suffixes of backend.sources, repeated here so that expanding inputs imports no OpenCV.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass(frozen=True)
class Clip:
    """One unit of the batch: an input ``reconstruct`` accepts and the name of its result."""

    source: Path  # absolute
    name: str  # result file name in the output folder, ``<name>.npz``

    @property
    def result_name(self) -> str:
        return f"{self.name}.npz"


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Clip]:
    """Every clip the inputs stand for, in a stable order, each once. Raises :class:`SourceError` for an input
    that does not exist, a list naming a missing path, or inputs holding no clip at all."""
    sources: list[Path] = []
    for item in inputs:
        sources.extend(_expand_one(Path(item)))
    unique = list(dict.fromkeys(path.resolve() for path in sources))
    if not unique:
        raise SourceError("the inputs hold no images or videos")
    return _named(unique)


def _expand_one(path: Path) -> list[Path]:
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if path.is_dir():
        return _folder_clips(path)
    if path.suffix.lower() in LIST_SUFFIXES:
        return _listed(path)
    return [path]  # a media file, or anything else: reconstruct says what is wrong with it, for that clip alone


def _folder_clips(folder: Path) -> list[Path]:
    clips = []
    for entry in sorted(folder.iterdir()):
        suffix = entry.suffix.lower()
        if entry.is_file() and suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            clips.append(entry)
        elif entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir() if p.is_file()):
            clips.append(entry)
    return clips


def _listed(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the list of inputs {list_file}: {exc}") from None
    paths = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        path = Path(text).expanduser()
        path = path if path.is_absolute() else list_file.parent / path
        if not path.exists():
            raise SourceError(f"{list_file}, line {number}: input not found: {path}")
        paths.append(path)
    return paths


def _named(paths: list[Path]) -> list[Clip]:
    """Result names from the stems; stems shared by several inputs get 8 hex digits of the path's hash."""
    stems = [path.stem if path.is_file() else path.name for path in paths]
    shared = {stem for stem in stems if stems.count(stem) > 1}
    clips = []
    for path, stem in zip(paths, stems):
        name = stem if stem not in shared else f"{stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        clips.append(Clip(path, name))
    return clips


def input_fingerprint(path: Path) -> dict[str, int]:
    """Size and modification time of an input (of every file in a folder): a changed input is redone."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    size, mtime = 0, 0
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        size += stat.st_size
        mtime = max(mtime, stat.st_mtime_ns)
    return {"bytes": size, "mtime_ns": mtime, "files": len(files)}


__all__ = ["Clip", "expand_inputs", "input_fingerprint"]
