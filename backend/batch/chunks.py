"""Long clips split into chunks of frames, so one long video keeps several workers busy.

Where the clip has shot cuts, chunks are cut there: a chunk is one or more whole shots (consecutive short shots
packed up to ``chunk_frames``), and two chunks that meet at a cut share no frame, since nothing is carried
across a cut anyway (the pipeline ends every track there: people after it are new identities). Only a shot
longer than ``chunk_frames`` is split into overlapping chunks: neighbouring ones share ``overlap`` frames, so
each side's tracker and smoother have context at the border, and the shared frames are where the stitcher
(``backend.batch.stitch``) recognises the same person in both chunks. Chunks that share no frame therefore meet
at a cut; chunks that share frames meet inside a shot.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from backend.errors import OptionError


def check_chunking(chunk_frames: int, overlap: int) -> None:
    """Refuse a chunk length and overlap that cannot make chunks (one line, before any work)."""
    if chunk_frames < 0:
        raise OptionError(f"--chunk-frames must be 0 (no chunks) or a number of frames, got {chunk_frames}")
    if overlap < 2:
        raise OptionError(f"--chunk-overlap must be at least 2 frames (where people are matched), got {overlap}")
    if chunk_frames and chunk_frames <= 2 * overlap:
        raise OptionError(f"--chunk-frames ({chunk_frames}) must be more than twice --chunk-overlap ({overlap})")


def chunk_ranges(first: int, count: int, chunk_frames: int, overlap: int) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` frame ranges covering ``first .. first + count - 1``: one range when the clip
    is not longer than ``chunk_frames`` (or ``chunk_frames`` is 0), else chunks of nearly equal length, at most
    ``chunk_frames`` each, consecutive ones sharing ``overlap`` frames."""
    last = first + count - 1
    if chunk_frames <= 0 or count <= chunk_frames:
        return [(first, last)]
    pieces = math.ceil((count - overlap) / (chunk_frames - overlap))
    step = math.ceil((count - overlap) / pieces)
    ranges = []
    for index in range(pieces):
        start = first + index * step
        ranges.append((start, min(start + step + overlap - 1, last)))
    return ranges


def shot_chunk_ranges(first: int, count: int, cuts: Sequence[int], chunk_frames: int,
                      overlap: int) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` ranges covering ``first .. first + count - 1`` that begin at the shot ``cuts``
    (absolute frames that start a new shot) where the clip is split: shots packed whole into chunks of at most
    ``chunk_frames``, a longer shot split by :func:`chunk_ranges` (see the module docstring). One range when the
    clip is not longer than ``chunk_frames``."""
    last = first + count - 1
    if chunk_frames <= 0 or count <= chunk_frames:
        return [(first, last)]
    starts = [first] + sorted({int(cut) for cut in cuts if first < cut <= last})
    shots = [(start, end - 1) for start, end in zip(starts, starts[1:] + [last + 1])]
    ranges: list[tuple[int, int]] = []
    packed: tuple[int, int] | None = None  # whole shots gathered into the chunk being filled
    for start, end in shots:
        if packed is not None and end - packed[0] + 1 <= chunk_frames:
            packed = (packed[0], end)
            continue
        if packed is not None:
            ranges.append(packed)
            packed = None
        if end - start + 1 <= chunk_frames:
            packed = (start, end)
        else:
            ranges.extend(chunk_ranges(start, end - start + 1, chunk_frames, overlap))
    if packed is not None:
        ranges.append(packed)
    return ranges


def detect_clip_cuts(source: str | Path, frame_start: int | None = None, frame_end: int | None = None) -> list[int]:
    """The absolute frames of ``source`` (a video, within the frame range) that start a new shot, found by the
    pipeline's own detector (``backend.sources.shots``) on one decoding pass."""
    from backend.sources import open_source
    from backend.sources.shots import ShotCutDetector

    detector = ShotCutDetector()
    return [index for index, frame in open_source(source, frame_start, frame_end).frames() if detector.update(frame)]


__all__ = ["check_chunking", "chunk_ranges", "detect_clip_cuts", "shot_chunk_ranges"]
