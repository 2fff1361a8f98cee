"""One result from the results of a clip's chunks, with the same identity for a person on both sides of every
chunk border inside a shot.

Chunks that share no frame meet at a shot cut (``backend.batch.chunks``): as in a single run, nobody is carried
across it (the later chunk's people are new tracks) and the cut is one of the result's ``shot_cuts``. In the
frames two neighbouring chunks share, each track of the earlier chunk is compared with each track of the
later one by the distance of their 2D joints (``joints2d``, relative to the person's height in the image); a
global assignment (Hungarian) pairs the tracks that are the same person. Each chunk keeps its rows up to the
middle of the overlap, where both chunks' trackers and smoothers had context on both sides. A person keeps the
body shape of the chunk where they first appear; rows from later chunks have their translation moved so that
their pelvis stays where that chunk put it (``transl`` depends on the shape's rest pelvis). Arrays follow the
result contract of ``backend.result``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.result.contract import WORLD_KEYS

TRACK_KEYS = ("betas", "rest_joints", "rest_vertices")  # one entry per track (besides track_id)
ROW_KEYS = ("row_frame", "poses", "transl", "joints2d", "confidence", "observed")  # one entry per row
MAX_MATCH_COST = 0.3  # mean joint distance in person heights beyond which two tracks are two people
MIN_SHARED_FRAMES = 2


@dataclass
class _Piece:
    """The rows of one chunk's track kept in the stitched result."""

    chunk: int
    track: int  # index into the chunk's track arrays
    rows: np.ndarray  # row indices into the chunk's row arrays


def stitch_results(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The result of the whole clip from its chunks' results, in frame order (see the module docstring)."""
    if len(chunks) == 1:
        return dict(chunks[0])
    starts, ends, borders = chunk_borders(chunks)
    identities: list[list[_Piece]] = []
    previous: dict[int, int] = {}
    for k, chunk in enumerate(chunks):
        matched = match_tracks(chunks[k - 1], chunk, starts[k], ends[k - 1]) if k else {}
        low = borders[k - 1] if k else starts[0]
        high = borders[k] if k < len(borders) else ends[-1] + 1
        absolute = np.asarray(chunk["row_frame"], np.int64) + starts[k]
        current: dict[int, int] = {}
        for track in range(len(chunk["track_id"])):
            rows = np.flatnonzero((np.asarray(chunk["row_track"]) == track) & (absolute >= low) & (absolute < high))
            earlier = matched.get(track)
            identity = previous.get(earlier) if earlier is not None else None
            if identity is None:
                identity = len(identities)
                identities.append([])
            identities[identity].append(_Piece(k, track, rows))
            current[track] = identity
        previous = current
    return _assembled(chunks, starts, [pieces for pieces in identities if sum(len(p.rows) for p in pieces)])


def chunk_borders(chunks: list[dict[str, np.ndarray]]) -> tuple[list[int], list[int], list[int]]:
    """Each chunk's first and last frame (absolute) and, between neighbours, the first frame the later chunk
    supplies: the middle of the shared frames, or the later chunk's first frame at a cut."""
    starts = [int(chunk["frame_indices"][0]) for chunk in chunks]
    ends = [start + int(chunk["num_frames"]) - 1 for start, chunk in zip(starts, chunks)]
    return starts, ends, [(starts[k + 1] + ends[k] + 1) // 2 for k in range(len(chunks) - 1)]


def match_tracks(earlier: dict[str, np.ndarray], later: dict[str, np.ndarray], shared_first: int,
                 shared_last: int) -> dict[int, int]:
    """``{later track: earlier track}`` for the tracks that are one person in the shared frames
    ``shared_first..shared_last`` (absolute frame numbers)."""
    early_start, late_start = int(earlier["frame_indices"][0]), int(later["frame_indices"][0])
    early = _seen_joints(earlier, early_start, shared_first, shared_last)
    late = _seen_joints(later, late_start, shared_first, shared_last)
    if not early or not late:
        return {}
    early_ids, late_ids = sorted(early), sorted(late)
    cost = np.full((len(late_ids), len(early_ids)), 1e6)
    for i, b in enumerate(late_ids):
        for j, a in enumerate(early_ids):
            cost[i, j] = _pair_cost(early[a], late[b])
    rows, cols = linear_sum_assignment(cost)
    return {late_ids[i]: early_ids[j] for i, j in zip(rows, cols) if cost[i, j] <= MAX_MATCH_COST}


def _seen_joints(result: dict[str, np.ndarray], start: int, first: int, last: int) -> dict[int, dict[int, np.ndarray]]:
    """Per track, ``{absolute frame: joints2d}`` of its observed rows in ``first..last``."""
    frames = np.asarray(result["row_frame"], np.int64) + start
    observed = np.asarray(result.get("observed", np.ones(len(frames), bool)), bool)
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for row in np.flatnonzero(observed & (frames >= first) & (frames <= last)):
        tracks.setdefault(int(result["row_track"][row]), {})[int(frames[row])] = np.asarray(result["joints2d"][row])
    return tracks


def _pair_cost(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> float:
    """Mean distance of the two tracks' joints over their common frames, in the person's image heights."""
    common = sorted(set(a) & set(b))
    if len(common) < MIN_SHARED_FRAMES:
        return 1e6
    costs = []
    for frame in common:
        height = max(float(np.ptp(a[frame][:, 1])), float(np.ptp(b[frame][:, 1])), 1.0)
        costs.append(float(np.linalg.norm(a[frame] - b[frame], axis=1).mean()) / height)
    return float(np.mean(costs))


def _assembled(chunks: list[dict[str, np.ndarray]], starts: list[int],
               identities: list[list[_Piece]]) -> dict[str, np.ndarray]:
    first = chunks[0]
    # each chunk measured its own camera path and world: they are chained and recomputed over the whole clip by
    # ``backend.batch.tasks.stitch_chunks`` (``backend.batch.camera_chain``), which needs the body model
    dropped = TRACK_KEYS + ROW_KEYS + ("row_track",) + WORLD_KEYS
    arrays = {key: value for key, value in first.items() if key not in dropped}
    total = starts[-1] + int(chunks[-1]["num_frames"]) - starts[0]
    arrays["num_frames"] = np.int64(total)
    arrays["frame_indices"] = np.arange(starts[0], starts[0] + total, dtype=np.int64)
    if "shot_cuts" in first:
        cuts = [np.asarray(chunk["shot_cuts"], np.int64) + start - starts[0] for chunk, start in zip(chunks, starts)]
        at_borders = [starts[k] - starts[0] for k in range(1, len(chunks))  # chunks sharing no frame: a cut
                      if starts[k] >= starts[k - 1] + int(chunks[k - 1]["num_frames"])]
        arrays["shot_cuts"] = np.unique(np.concatenate([*cuts, np.asarray(at_borders, np.int64)])).astype(np.int64)
    arrays["track_id"] = np.arange(len(identities), dtype=np.int64)
    for key in TRACK_KEYS:
        if key in first:
            owners = [chunks[p[0].chunk][key][p[0].track] for p in identities]
            arrays[key] = np.stack(owners) if owners else np.asarray(first[key])[:0]
    columns: dict[str, list[np.ndarray]] = {key: [] for key in ROW_KEYS + ("row_track",) if key in first or
                                            key == "row_track"}
    for identity, pieces in enumerate(identities):
        owner = chunks[pieces[0].chunk]["rest_joints"][pieces[0].track, 0]
        for piece in pieces:
            chunk = chunks[piece.chunk]
            for key in columns:
                if key == "row_track":
                    columns[key].append(np.full(len(piece.rows), identity, np.int64))
                elif key == "row_frame":
                    columns[key].append(np.asarray(chunk[key])[piece.rows] + starts[piece.chunk] - starts[0])
                elif key == "transl":
                    shift = np.asarray(chunk["rest_joints"][piece.track, 0]) - owner
                    columns[key].append(np.asarray(chunk[key])[piece.rows] + shift.astype(np.float32))
                else:
                    columns[key].append(np.asarray(chunk[key])[piece.rows])
    for key, parts in columns.items():
        arrays[key] = np.concatenate(parts) if parts else np.asarray(first[key])[:0]
    return arrays


__all__ = ["MAX_MATCH_COST", "chunk_borders", "match_tracks", "stitch_results"]
