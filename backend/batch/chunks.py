"""Long clips split into overlapping chunks of frames, so one long video keeps several workers busy.

Neighbouring chunks share ``overlap`` frames: each side's tracker and smoother have context at the border, and
the shared frames are where the stitcher (``backend.batch.stitch``) recognises the same person in both chunks.
"""

from __future__ import annotations

import math

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


__all__ = ["check_chunking", "chunk_ranges"]
