"""One camera path for a clip stitched from chunks, from the paths each chunk measured on its own.

Each chunk's pipeline measured the camera from its own first frame: its rotations and zoom are relative to that
frame, and its world (gravity, floor) was fitted to its own people. The relative path is recovered from a
chunk's result keys (``camera_rotation`` of a frame times the transpose of its segment's first frame's; the
focal length over that frame's), then chained: where two chunks meet inside a shot (they share frames), the later
chunk's first segment continues the earlier chunk's segment, its rotations turned by the rotation that best
agrees with the earlier chunk over the shared frames (a chordal mean, projected back onto the rotations) and
its zoom scaled by the median ratio there. Where chunks meet at a shot cut (no shared frame) the later chunk's
segments are new segments, as the pipeline starts one at every cut. The world keys are then computed over the
stitched clip by the pipeline's own stage (``backend.world.add_world_frame``), so a stitched result has one
gravity-up world per shot, as a single run would.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from backend.world.segments import CameraPath


def chunk_path(chunk: dict[str, np.ndarray]) -> CameraPath | None:
    """The camera path a chunk's pipeline measured (relative to each segment's first frame), or None for a
    result without the camera keys."""
    if "camera_rotation" not in chunk:
        return None
    to_camera = np.asarray(chunk["camera_rotation"], np.float64)
    focal = np.asarray(chunk["camera_focal"], np.float64)[:, 0]
    segment = np.asarray(chunk["camera_segment"], np.int64)
    rotations, zoom = np.empty_like(to_camera), np.empty_like(focal)
    for index in np.unique(segment):
        frames = np.flatnonzero(segment == index)
        rotations[frames] = to_camera[frames] @ to_camera[frames[0]].T
        zoom[frames] = focal[frames] / focal[frames[0]]
    return CameraPath(rotations, zoom, segment, np.asarray(chunk["segment_static"], bool))


def chained_path(paths: Sequence[CameraPath], starts: Sequence[int], borders: Sequence[int]) -> CameraPath:
    """The path of the whole clip (frames from ``starts[0]``): chunk ``k`` (first frame ``starts[k]``) supplies
    the frames from ``borders[k - 1]`` to ``borders[k]`` (its first and last frame at the ends); see the module
    docstring."""
    chained = [_Global(paths[0], starts[0], np.arange(paths[0].num_segments))]
    for k in range(1, len(paths)):
        chained.append(_continued(chained[-1], paths[k], starts[k], borders[k - 1]))
    total = starts[-1] + paths[-1].num_frames - starts[0]
    rotations, zoom = np.tile(np.eye(3), (total, 1, 1)), np.ones(total)
    segment = np.zeros(total, np.int64)
    bounds = [starts[0], *borders, starts[-1] + paths[-1].num_frames]
    for k, part in enumerate(chained):
        local = np.arange(bounds[k], bounds[k + 1]) - part.start
        kept = local + part.start - starts[0]
        rotations[kept], zoom[kept] = part.rotations[local], part.zoom[local]
        segment[kept] = part.segment[local]
    used, segment = np.unique(segment, return_inverse=True)
    static = np.ones(len(used), bool)
    for k, part in enumerate(chained):  # a segment is still only if every chunk's part of it was
        for local_segment, global_segment in enumerate(part.numbers):
            if not part.path.static[local_segment] and global_segment in used:
                static[np.searchsorted(used, global_segment)] = False
    return CameraPath(rotations, zoom, segment.astype(np.int64), static)


class _Global:
    """A chunk's path in the clip's terms: segment numbers of the clip, rotations and zoom relative to the
    first frame of the clip's segment."""

    def __init__(self, path: CameraPath, start: int, numbers: np.ndarray, turn: np.ndarray | None = None,
                 scale: float = 1.0) -> None:
        self.path, self.start, self.numbers = path, start, numbers
        self.segment = numbers[path.segment]
        self.rotations, self.zoom = path.rotations.copy(), path.zoom.copy()
        first = path.segment == 0
        if turn is not None:
            self.rotations[first] = path.rotations[first] @ turn
            self.zoom[first] = path.zoom[first] * scale


def _continued(earlier: _Global, path: CameraPath, start: int, border: int) -> _Global:
    """Chunk ``path`` (first frame ``start``) in the clip's terms after ``earlier``, whose frames it may share."""
    following = int(earlier.numbers.max()) + 1
    shared = np.arange(start, earlier.start + earlier.path.num_frames)
    if len(shared) and border - 1 >= earlier.start:
        continuing = earlier.segment[border - 1 - earlier.start]  # the earlier chunk's segment at the border
        mine, theirs = shared - start, shared - earlier.start
        same = (path.segment[mine] == 0) & (earlier.segment[theirs] == continuing)
        if same.any():
            numbers = np.concatenate([[continuing], following + np.arange(path.num_segments - 1)])
            turn = _mean_rotation(np.swapaxes(path.rotations[mine[same]], 1, 2) @ earlier.rotations[theirs[same]])
            scale = float(np.median(earlier.zoom[theirs[same]] / path.zoom[mine[same]]))
            return _Global(path, start, numbers, turn, scale)
    return _Global(path, start, following + np.arange(path.num_segments))  # at a cut: new segments


def _mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The rotation nearest the mean of ``rotations`` (n, 3, 3) in the Frobenius sense."""
    u, _, vt = np.linalg.svd(rotations.mean(0))
    if np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
    return u @ vt


__all__ = ["chained_path", "chunk_path"]
