"""Frames from an image, a folder of images, or a video file, streamed in time order with bounded memory.

Every failure is a :class:`SourceError` naming the file and what is wrong with it, so the command line and the
add-on can show one clear line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from backend.errors import SourceError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass(frozen=True)
class SourceInfo:
    path: Path
    kind: str  # "image", "folder" or "video"
    width: int
    height: int
    fps: float  # 0 for images and folders
    num_frames: int  # frames that will be yielded (after the frame range)
    first_frame: int  # index in the source of the first yielded frame


class Source:
    """An opened input: ``info`` plus :meth:`frames`, which yields ``(source_frame_index, rgb_uint8)``."""

    def __init__(self, info: SourceInfo, frame_paths: list[Path] | None = None) -> None:
        self.info = info
        self._frame_paths = frame_paths

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.info.kind == "video":
            yield from _video_frames(self.info)
        else:
            assert self._frame_paths is not None
            for offset, path in enumerate(self._frame_paths):
                yield self.info.first_frame + offset, read_image(path)

    def chunks(self, size: int) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Frames grouped in lists of at most ``size``: only one chunk is held in memory at a time."""
        chunk: list[tuple[int, np.ndarray]] = []
        for item in self.frames():
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def open_source(path: str | os.PathLike, frame_start: int | None = None, frame_end: int | None = None) -> Source:
    """Open ``path`` (image, image folder or video) restricted to frames ``frame_start..frame_end`` (inclusive)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if path.is_dir():
        return _open_folder(path, frame_start, frame_end)
    if path.stat().st_size == 0:
        raise SourceError(f"input is an empty file (0 bytes): {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _open_images([path], path, "image", frame_start, frame_end)
    if suffix in VIDEO_SUFFIXES:
        return _open_video(path, frame_start, frame_end)
    raise SourceError(
        f"unsupported input type {suffix or '(no extension)'!r}: {path} "
        f"(images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))})"
    )


def read_image(path: Path) -> np.ndarray:
    """Read an image as RGB uint8. Decodes from bytes so any path (spaces, non-ASCII) works on every OS."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise SourceError(f"image is an empty file (0 bytes): {path}")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"image is corrupt or not an image: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _frame_range(total: int, frame_start: int | None, frame_end: int | None, path: Path) -> tuple[int, int]:
    """Clamp an inclusive user frame range to ``0..total-1``; returns (first, count)."""
    first = 0 if frame_start is None else frame_start
    last = total - 1 if frame_end is None else min(frame_end, total - 1)
    if first < 0 or (frame_end is not None and frame_end < first):
        raise SourceError(f"invalid frame range {frame_start}..{frame_end} for {path}")
    if first > last:
        raise SourceError(f"frame range starts at {first} but {path} has only {total} frames")
    return first, last - first + 1


def _open_images(
    paths: list[Path], origin: Path, kind: str, frame_start: int | None, frame_end: int | None
) -> Source:
    first, count = _frame_range(len(paths), frame_start, frame_end, origin)
    selected = paths[first : first + count]
    height, width = read_image(selected[0]).shape[:2]
    info = SourceInfo(origin, kind, width, height, 0.0, count, first)
    return Source(info, selected)


def _open_folder(path: Path, frame_start: int | None, frame_end: int | None) -> Source:
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SourceError(f"folder contains no images ({', '.join(sorted(IMAGE_SUFFIXES))}): {path}")
    return _open_images(images, path, "folder", frame_start, frame_end)


def _open_video(path: Path, frame_start: int | None, frame_end: int | None) -> Source:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"video is corrupt or in an unsupported format: {path}")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 0.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, _ = capture.read()
        if not ok or width <= 0 or height <= 0:
            raise SourceError(f"video has no readable frames (corrupt or truncated): {path}")
    finally:
        capture.release()
    first, count = _frame_range(max(total, 1), frame_start, frame_end, path)
    return Source(SourceInfo(path, "video", width, height, fps, count, first))


def _video_frames(info: SourceInfo) -> Iterator[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(str(info.path))
    try:
        if info.first_frame:
            capture.set(cv2.CAP_PROP_POS_FRAMES, info.first_frame)
        for index in range(info.first_frame, info.first_frame + info.num_frames):
            ok, frame = capture.read()
            if not ok:
                raise SourceError(
                    f"video ends early: frame {index} of {info.path} cannot be decoded "
                    f"(expected {info.first_frame + info.num_frames} frames; file truncated or corrupt)"
                )
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
