"""The clip path's speed, stage by stage, against a baseline revision in the same run.

    python benchmarks/bench_clip_speed.py [--clip ../shared/data/football_dribble.mp4] [--start 60] [--end 119]
        [--baseline main] [--rounds 2] [--keep DIR]

Each round reconstructs the frames once with this checkout and once with ``--baseline`` (a temporary git
worktree; the same script runs there in a subprocess, so each side imports its own ``backend``), alternating which
goes first. Per side it prints the wall frames/s, the process's CPU seconds per frame (all threads: on a machine
loaded by other jobs this moves less than wall time) and the wall seconds per frame of the stages it can see:
people finding (on its worker thread, overlapping the rest), the fit, the coherence step, the camera's motion and
the world frame with the zoom refit. Then the ratios baseline / this code (> 1: this code is faster) and, with
``--keep``, both result files, compared: tracks, rows observed, joints2d and translation differences.
A revision without these stages (before the people finder) still gets its totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES = ("people", "fit", "coherence", "camera", "world")


def measure(clip: str, start: int, end: int, output: str) -> dict:
    """Reconstruct ``clip`` frames ``start..end`` in this process with stage timers; totals and per stage."""
    import backend.pipeline as pipeline

    spent: dict[str, float] = defaultdict(float)
    lock = threading.Lock()

    def timed(stage: str, function):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    spent[stage] += time.perf_counter() - began
        return wrapper

    _wrap_estimator(pipeline, timed)
    for name, stage in (("_coherent", "coherence"), ("add_world_frame", "world")):
        if hasattr(pipeline, name):
            setattr(pipeline, name, timed(stage, getattr(pipeline, name)))
    run = getattr(pipeline, "_Run", None)
    if run is not None and hasattr(run, "follow_camera"):
        run.follow_camera = timed("camera", run.follow_camera)
    options = pipeline.ReconstructOptions(frame_start=start, frame_end=end)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = pipeline.reconstruct(clip, output, options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames": summary.frames, "wall": wall, "cpu": cpu, "stages": dict(spent), "backend": pipeline.__file__}


def _wrap_estimator(pipeline, timed) -> None:
    """Times the estimator's people finding and its fit (``estimate`` with the people already found)."""
    original = pipeline.create_estimator

    def create(*args, **kwargs):
        estimator = original(*args, **kwargs)
        if callable(getattr(estimator, "find_people", None)):
            estimator.find_people = timed("people", estimator.find_people)
        estimator.estimate = timed("fit", estimator.estimate)
        return estimator

    pipeline.create_estimator = create


def _side(root: Path, args: argparse.Namespace, output: Path) -> dict:
    """One measurement in a fresh process importing ``root``'s backend."""
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--clip", str(Path(args.clip).resolve()),
               "--start", str(args.start), "--end", str(args.end), "--output", str(output)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=_env(root))
    if done.returncode != 0:
        raise SystemExit(f"the run in {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env(root: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(root)}


def _worktree(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="troupe-bench-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return folder


def _mean(runs: list[dict], key: str) -> float:
    return float(np.mean([r[key] / r["frames"] for r in runs]))


def _stage(runs: list[dict], stage: str) -> float | None:
    values = [r["stages"][stage] / r["frames"] for r in runs if stage in r["stages"]]
    return float(np.mean(values)) if values else None


def report(runs: dict[str, list[dict]], baseline: str) -> str:
    rows = [(baseline, runs["baseline"]), ("this code", runs["current"])]
    lines = [f"{'':12s} {'frames/s':>9s} {'CPU s/frame':>12s} " + " ".join(f"{s + ' ms':>13s}" for s in STAGES)]
    for label, side in rows:
        stages = [_stage(side, s) for s in STAGES]
        lines.append(f"{label:12s} {1 / _mean(side, 'wall'):9.2f} {_mean(side, 'cpu'):12.3f} " + " ".join(
            f"{'-':>13s}" if v is None else f"{1000 * v:13.0f}" for v in stages))
    base, now = runs["baseline"], runs["current"]
    ratios = [f"wall {_mean(base, 'wall') / _mean(now, 'wall'):.2f}x",
              f"CPU {_mean(base, 'cpu') / _mean(now, 'cpu'):.2f}x"]
    for s in STAGES:
        b, n = _stage(base, s), _stage(now, s)
        if b is not None and n:
            ratios.append(f"{s} {b / n:.2f}x")
    lines.append(f"baseline / this code (> 1: faster now): {', '.join(ratios)}")
    return "\n".join(lines)


def compare(base_path: Path, now_path: Path) -> str:
    """Both result files side by side: tracks, rows, observed share; then, frame by frame, each observed row of
    one matched to the other's observed row with the nearest joints2d (track numbers differ between runs), and
    how far their joints2d and translations are apart."""
    from scipy.optimize import linear_sum_assignment

    a, b = np.load(base_path), np.load(now_path)
    out = []
    for label, r in (("baseline", a), ("this code", b)):
        out.append(f"  {label}: {len(np.unique(r['row_track']))} tracks, {len(r['row_frame'])} rows, "
                   f"{_observed(r).mean():.1%} observed")
    joints, transl, unmatched = [], [], 0
    for frame in np.union1d(a["row_frame"], b["row_frame"]):
        ia = np.flatnonzero((a["row_frame"] == frame) & _observed(a))
        ib = np.flatnonzero((b["row_frame"] == frame) & _observed(b))
        cost = np.abs(a["joints2d"][ia][:, None] - b["joints2d"][ib][None]).max((-1, -2))
        rows, cols = linear_sum_assignment(cost) if cost.size else (np.zeros(0, int), np.zeros(0, int))
        unmatched += len(ia) + len(ib) - 2 * len(rows)
        joints.extend(cost[rows, cols])
        transl.extend(np.linalg.norm(a["transl"][ia[rows]] - b["transl"][ib[cols]], axis=-1))
    if joints:
        out.append(f"  observed rows matched frame by frame: {len(joints)} ({unmatched} without a partner); "
                   f"joints2d apart by at most {max(joints):.3g} px (median {np.median(joints):.3g}, "
                   f"{np.mean(np.array(joints) > 1.0):.1%} over 1 px), transl by at most {max(transl):.3g} m "
                   f"(median {np.median(transl):.3g})")
    return "\n".join(out)


def _observed(result) -> np.ndarray:
    return np.asarray(result["observed"], bool) if "observed" in result.files else np.ones(len(result["row_frame"]),
                                                                                          bool)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--clip", default=str(REPO_ROOT.parent / "shared" / "data" / "football_dribble.mp4"))
    parser.add_argument("--start", type=int, default=60)
    parser.add_argument("--end", type=int, default=119)
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="folder for both result files (then compared)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.clip, args.start, args.end, args.output)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="troupe-bench-out-"))
    folder.mkdir(parents=True, exist_ok=True)
    base_root = _worktree(args.baseline)
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    try:
        for round_ in range(args.rounds):
            order = [("baseline", base_root), ("current", REPO_ROOT)]
            for side, root in order if round_ % 2 == 0 else order[::-1]:
                runs[side].append(_side(root, args, folder / f"{side}.npz"))
                print(f"round {round_ + 1} {side}: {runs[side][-1]['wall']:.1f} s ({runs[side][-1]['backend']})",
                      flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_root)], cwd=REPO_ROOT, capture_output=True)
    print(f"{Path(args.clip).name} frames {args.start}-{args.end}, {args.rounds} round(s), mean per frame:")
    print(report(runs, args.baseline))
    print(compare(folder / "baseline.npz", folder / "current.npz"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
