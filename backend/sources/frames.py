"""Frames from an image, a folder of images, or a video file, streamed in time order with bounded memory.

Every failure is a :class:`SourceError` naming the file and what is wrong with it, so the command line and the
add-on can show one clear line.

Large pictures are found at a bounded size: frames longer than :data:`MAX_SIDE` pixels are scaled down to it as
they are decoded (JPEGs decode at 1/2, 1/4 or 1/8 scale directly, so the full picture is never held), and images
whose header says more than :data:`MAX_JPEG_PIXELS` (JPEG) or :data:`MAX_OTHER_PIXELS` (other formats, which
decode whole first) are refused before decoding. ``SourceInfo`` keeps the size of the original picture, and the
result is written in its pixels (``backend.result.assembly``), so the camera matches the picture the user sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from backend.errors import SourceError

MAX_SIDE = 3840  # longer side of the frames people are found in (4K UHD)
MAX_JPEG_PIXELS = 150_000_000  # decoded at reduced scale: at most 1/4 of this is ever held
MAX_OTHER_PIXELS = 40_000_000  # PNG, TIFF, ...: decoded whole before scaling down
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
    full_width: int = 0  # the original picture's size when frames are scaled down to MAX_SIDE (0: same)
    full_height: int = 0

    @property
    def scale(self) -> float:
        """Frame pixels per original pixel (1 unless the source was scaled down)."""
        return self.width / self.full_width if self.full_width else 1.0


class Source:
    """An opened input: ``info`` plus :meth:`frames`, which yields ``(source_frame_index, rgb_uint8)``."""

    def __init__(self, info: SourceInfo, frame_paths: list[Path] | None = None) -> None:
        self.info = info
        self._frame_paths = frame_paths

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(source_frame_index, rgb_uint8)`` in order; a frame that cannot be decoded raises SourceError."""
        if self.info.kind == "video":
            yield from _video_frames(self.info)
        else:
            assert self._frame_paths is not None
            for offset, path in enumerate(self._frame_paths):
                yield self.info.first_frame + offset, read_image(path)

    def chunks(self, size: int) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Frames grouped in lists of at most ``size``: only one chunk is held in memory at a time. When a frame
        cannot be decoded, the frames read before it are yielded first and the error comes on the next request,
        so a caller keeping a partial result keeps every frame that decoded."""
        chunk: list[tuple[int, np.ndarray]] = []
        try:
            for item in self.frames():
                chunk.append(item)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        except SourceError:
            if chunk:
                yield chunk
            raise
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
    """Read an image as RGB uint8, scaled down to :data:`MAX_SIDE` if it is longer. Decodes from bytes so any
    path (spaces, non-ASCII) works on every OS."""
    width, height, kind = image_header(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    factor = _reduction(width, height) if kind == "JPEG" else 1
    image = cv2.imdecode(data, _REDUCED_FLAGS[factor])
    del data
    if image is None:
        raise SourceError(f"image is corrupt or not an image: {path}")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if max(width, height) > MAX_SIDE:
        full = (width, height) if (image.shape[1] >= image.shape[0]) == (width >= height) else (height, width)
        image = cv2.resize(image, bounded_size(*full), interpolation=cv2.INTER_AREA)
    return image


_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}


def image_header(path: Path) -> tuple[int, int, str]:
    """(width, height, format) from the image's header alone; refuses, before anything is decoded, a picture
    larger than the documented limits."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            raise SourceError(f"image is an empty file (0 bytes): {path}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                (width, height), kind = image.size, image.format or "?"
    except Image.DecompressionBombError:
        raise SourceError(f"image is too large (over {MAX_JPEG_PIXELS // 1_000_000} MP): {path}") from None
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"image is corrupt or not an image: {path}") from None
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from None
    limit = MAX_JPEG_PIXELS if kind == "JPEG" else MAX_OTHER_PIXELS
    if width * height > limit:
        raise SourceError(f"image is too large: {width} x {height} pixels ({width * height / 1e6:.0f} MP; at most "
                          f"{limit // 1_000_000} MP for {'JPEG' if kind == 'JPEG' else 'non-JPEG'} images): {path}")
    return width, height, kind


def bounded_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is at most :data:`MAX_SIDE` (unchanged if it is)."""
    longer = max(width, height)
    if longer <= MAX_SIDE:
        return width, height
    return max(1, round(width * MAX_SIDE / longer)), max(1, round(height * MAX_SIDE / longer))


def _reduction(width: int, height: int) -> int:
    """The largest JPEG decoding reduction (1, 2, 4, 8) that still leaves the longer side at least MAX_SIDE."""
    factor = 1
    while factor < 8 and max(width, height) // (factor * 2) >= MAX_SIDE:
        factor *= 2
    return factor


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
    full_width, full_height, _ = image_header(selected[0])
    if max(full_width, full_height) <= MAX_SIDE:
        full_width = full_height = 0
    elif (full_width >= full_height) != (width >= height):  # turned by its EXIF orientation
        full_width, full_height = full_height, full_width
    info = SourceInfo(origin, kind, width, height, 0.0, count, first, full_width, full_height)
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
    scaled_width, scaled_height = bounded_size(width, height)
    full_width, full_height = (width, height) if (scaled_width, scaled_height) != (width, height) else (0, 0)
    return Source(SourceInfo(path, "video", scaled_width, scaled_height, fps, count, first, full_width, full_height))


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
            if info.full_width:
                frame = cv2.resize(frame, (info.width, info.height), interpolation=cv2.INTER_AREA)
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
