"""Batch throughput on Ray, as ratios from one run: the same clips with 1 and 2 workers (a local cluster of 1
and of 2 CPUs, one CPU a task), and one long clip whole on one worker against split into two chunks on two.

    python benchmarks/bench_batch.py [--clips 4] [--frames 12] [--long-frames 64]

Clips are cut from ../shared/data/football_dribble.mp4 (480 px wide). Every run is the real command
(``python -m backend batch ... --num-cpus N``) in a fresh output folder; times are the command's wall time, so
they include starting Ray and its workers (a fixed cost, paid once per batch). A first run fills the cache
(people-finding networks exported to ONNX) so that no measured run pays for it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.batch_fixtures import cut_clip  # noqa: E402  (the tests' own clip cutter)

SOURCE = ROOT.parent / "shared" / "data" / "football_dribble.mp4"


def batch(inputs: list[Path], out: Path, cpus: int, *extra: str) -> tuple[float, int, float]:
    """(wall seconds, frames, worker seconds) of one batch command; worker seconds are the time the clips'
    tasks ran, summed over workers (from the manifest), so worker seconds / wall seconds is how many workers
    were busy on average, whatever else loads the machine."""
    command = [sys.executable, "-m", "backend", "batch", *map(str, inputs), "-o", str(out), "--num-cpus", str(cpus),
               "--quiet", *extra]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"batch failed:\n{run.stderr}")
    clips = json.loads((out / "troupe-batch.json").read_text())["clips"].values()
    return seconds, sum(entry["frames"] for entry in clips), sum(entry["seconds"] or 0.0 for entry in clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12, help="frames per clip")
    parser.add_argument("--long-frames", type=int, default=64, help="frames of the long clip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="troupe-bench-batch-") as tmp:
        work = Path(tmp)
        clips = [cut_clip(SOURCE, work / f"clip{i}.mp4", args.frames, 480, first=i * 40) for i in range(args.clips)]
        long_clip = cut_clip(SOURCE, work / "long.mp4", args.long_frames, 480)
        batch(clips[:1], work / "warm-up", 1, "--end", "1")
        rows = []
        for cpus in (1, 2):
            rows.append((f"{args.clips} clips x {args.frames} frames, {cpus} worker(s)",
                         *batch(clips, work / f"w{cpus}", cpus)))
        half = args.long_frames // 2 + 8
        for label, cpus, extra in (("long clip whole, 1 worker", 1, ("--chunk-frames", "0")),
                                   ("long clip in 2 chunks, 2 workers", 2, ("--chunk-frames", str(half),
                                                                            "--chunk-overlap", "8"))):
            rows.append((label, *batch([long_clip], work / label.replace(" ", "-").replace(",", ""), cpus, *extra)))
    print(f"{'run':42s} {'s':>7s} {'frames':>7s} {'frames/s':>9s} {'workers busy':>13s}")
    for label, seconds, frames, worker_seconds in rows:
        print(f"{label:42s} {seconds:7.1f} {frames:7d} {frames / seconds:9.2f} {worker_seconds / seconds:13.2f}")
    print(f"2 workers / 1 worker throughput: {rows[1][2] / rows[1][1] / (rows[0][2] / rows[0][1]):.2f}x")
    print(f"long clip, 2 chunks on 2 workers / whole on 1: {rows[2][1] / rows[3][1]:.2f}x faster")


if __name__ == "__main__":
    main()
