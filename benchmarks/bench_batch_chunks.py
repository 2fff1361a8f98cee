"""A chunked long clip against the same clip whole, from one run: speed, and how far the stitched result is from
the single-run one (shot cuts, people, camera path, world); and what the shot-cut scan of a long video costs.

    python benchmarks/bench_batch_chunks.py [--frames 40]

Two clips at 480 px: ``one-shot`` (2 x FRAMES frames of ../shared/data/football_dribble.mp4) and ``two-shot``
(FRAMES frames of the dribble clip then FRAMES of dancer_1080p.mp4: a cut in the middle). Each is run through the
real command (``python -m backend batch``) whole on one worker (``--chunk-frames 0``) and in chunks on two
(``--chunk-frames FRAMES+8``: the one-shot clip in two overlapping chunks, the two-shot clip at its cut). Times
are the command's wall time (Ray's start and the workers' model loading included).

Agreement, per clip, stitched against whole: the shot cuts; the tracks; the largest angle between the two camera
paths (each frame's rotation from its segment's first frame); the largest angle between the two worlds' up
directions seen from the camera; the camera heights; and, for the people seen in both (matched per frame by
their 2D joints), the median and 90th percentile distance of their pelvis in the world.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch import batch  # noqa: E402
from tests.batch_fixtures import joined_clip  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between rotations a[i] and b[i]."""
    cos = (np.einsum("nij,nij->n", a, b) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _path(result: dict) -> np.ndarray:
    rotation, segment = result["camera_rotation"], result["camera_segment"]
    firsts = np.array([np.flatnonzero(segment == s)[0] for s in segment])
    return rotation @ np.swapaxes(rotation[firsts], 1, 2)


def _pelvis_distances(a: dict, b: dict) -> np.ndarray:
    """World pelvis distance of the people matched per frame by their 2D joints (within 30 px on average)."""
    out = []
    for frame in np.intersect1d(a["row_frame"], b["row_frame"]):
        rows_a, rows_b = np.flatnonzero(a["row_frame"] == frame), np.flatnonzero(b["row_frame"] == frame)
        cost = np.array([[np.linalg.norm(a["joints2d"][i] - b["joints2d"][j], axis=1).mean() for j in rows_b]
                         for i in rows_a])
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < 30.0:
                pa = a["world_transl"][rows_a[i]] + a["rest_joints"][a["row_track"][rows_a[i]], 0]
                pb = b["world_transl"][rows_b[j]] + b["rest_joints"][b["row_track"][rows_b[j]], 0]
                out.append(float(np.linalg.norm(pa - pb)))
    return np.asarray(out)


def compare(whole: dict, chunked: dict) -> str:
    up = np.array([0.0, 0.0, 1.0])
    up_angle = np.degrees(np.arccos(np.clip(np.einsum("ni,ni->n", whole["camera_rotation"] @ up,
                                                      chunked["camera_rotation"] @ up), -1, 1)))
    heights = np.abs(whole["camera_position"][:, 2] - chunked["camera_position"][:, 2])
    pelvis = _pelvis_distances(whole, chunked)
    return (f"cuts {list(whole['shot_cuts'])} / {list(chunked['shot_cuts'])}; tracks {len(whole['track_id'])} / "
            f"{len(chunked['track_id'])}; segments static {list(whole['segment_static'])} / "
            f"{list(chunked['segment_static'])}\n"
            f"    camera path max {_angle(_path(whole), _path(chunked)).max():.2f} deg; world up max "
            f"{up_angle.max():.2f} deg; camera height max diff {heights.max():.3f} m; pelvis in the world "
            f"median {np.median(pelvis):.3f} m, 90% {np.percentile(pelvis, 90):.3f} m over {len(pelvis)} rows")


def scan_cost() -> None:
    """The shot-cut scan a long video gets before it is chunked, against decoding its frames alone."""
    import time

    from backend.batch.chunks import detect_clip_cuts
    from backend.sources import open_source

    for name in ("dancer_1080p.mp4", "football_dribble.mp4"):
        started = time.perf_counter()
        frames = sum(1 for _ in open_source(DATA / name).frames())
        decoding = time.perf_counter() - started
        started = time.perf_counter()
        cuts = detect_clip_cuts(DATA / name)
        scan = time.perf_counter() - started
        print(f"cut scan of {name} ({frames} frames): {scan / decoding:.2f}x decoding alone, "
              f"{1000 * scan / frames:.1f} ms a frame; cuts at {cuts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    from backend.result import read_result

    n = args.frames
    scan_cost()
    with tempfile.TemporaryDirectory(prefix="troupe-bench-chunks-") as tmp:
        work = Path(tmp)
        clips = {"one-shot": joined_clip([(DATA / "football_dribble.mp4", 0, 2 * n)], work / "one-shot.mp4", 480),
                 "two-shot": joined_clip([(DATA / "football_dribble.mp4", 0, n), (DATA / "dancer_1080p.mp4", 0, n)],
                                         work / "two-shot.mp4", 480)}
        batch([clips["one-shot"]], work / "warm-up", 1, "--end", "1")
        for name, clip in clips.items():
            whole_s, frames, _ = batch([clip], work / f"{name}-whole", 1, "--chunk-frames", "0")
            chunked_s, _, busy = batch([clip], work / f"{name}-chunks", 2, "--chunk-frames", str(n + 8),
                                       "--chunk-overlap", "8")
            whole = read_result(work / f"{name}-whole" / f"{name}.npz")
            chunked = read_result(work / f"{name}-chunks" / f"{name}.npz")
            print(f"{name} ({frames} frames): whole on 1 worker {whole_s:.1f} s, chunked on 2 workers "
                  f"{chunked_s:.1f} s ({whole_s / chunked_s:.2f}x faster, workers busy {busy / chunked_s:.2f})")
            print("    " + compare(whole, chunked))


if __name__ == "__main__":
    main()
