"""The batched fit's cost per optimisation step, this code against a baseline revision in the same run.

    python benchmarks/bench_fit_steps.py [--baseline main] [--rounds 5] [--people 4 40 160]

The fit (``backend.fitting.optimize``) takes 40-120 Adam steps per chunk of frames on a few dozen people, and on
the CPU a step's cost is mostly the number of small tensor operations, not their size (a clip's chunk of 8 frames
holds 30-90 rows). Each side runs in its own process importing its own ``backend`` (the baseline in a temporary
git worktree); rounds alternate which side goes first and the fastest round of each counts (the machine's other
jobs only ever add time). Printed: milliseconds per step of ``fit_people`` for each batch size, and of forward
kinematics alone (forward and backward, 40 people), with the ratio baseline / this code (> 1: faster now).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPS = 60  # 15 turning the body, 45 on everything


def measure(people: list[int], repeats: int) -> dict[str, float]:
    """Milliseconds per fit step per batch size, and per forward-kinematics pass (fastest of ``repeats``)."""
    import numpy as np
    import torch

    from backend.body import load_body_model
    from backend.body.kinematics import forward_kinematics
    from backend.body.rotations import axis_angle_to_matrix
    from backend.fitting import BodyPoints, FitOptions, fit_people

    torch.set_num_threads(1)
    points = BodyPoints(load_body_model("open-body"))
    options = FitOptions(orient_steps=STEPS // 4, full_steps=STEPS - STEPS // 4)
    out: dict[str, float] = {}
    for count in people:
        data, intrinsics = _scene(points, count, np.random.default_rng(count))
        fit_people(points, data, intrinsics, options)  # warm-up
        out[f"fit {count}"] = 1000 * _fastest(lambda: fit_people(points, data, intrinsics, options), repeats) / STEPS
    rotations = axis_angle_to_matrix(0.3 * torch.randn(40, 24, 3)).requires_grad_()
    rest = points.rest_joints(torch.zeros(40, points.num_betas))

    def kinematics() -> None:
        joints, transforms = forward_kinematics(rotations, rest, points.parents)
        (joints.sum() + transforms.sum()).backward()

    kinematics()
    out["kinematics 40"] = 1000 * _fastest(lambda: [kinematics() for _ in range(50)], repeats) / 50
    return out


def _scene(points, count: int, rng):
    """``count`` people in a row 4-12 m away, facing the camera, limbs bent at random, seen by a 1280x720 camera."""
    import numpy as np
    import torch

    from backend.body.rotations import axis_angle_to_matrix
    from backend.fitting import FitInput

    poses = rng.normal(0.0, 0.15, (count, 24, 3))
    poses[:, 0] = [np.pi, 0.0, 0.0]  # body up (+y) to image up (-y)
    transl = np.stack([rng.uniform(-2, 2, count), rng.uniform(-0.3, 0.6, count), rng.uniform(4, 12, count)], -1)
    with torch.no_grad():
        _, body = points(axis_angle_to_matrix(torch.tensor(poses, dtype=torch.float32)),
                         torch.zeros(count, points.num_betas))
    camera = body.numpy().astype(np.float64) + transl[:, None]
    fx = fy = 1000.0
    cx, cy = 640.0, 360.0
    keypoints = np.stack([fx * camera[..., 0] / camera[..., 2] + cx, fy * camera[..., 1] / camera[..., 2] + cy], -1)
    hips = camera[:, [10, 11]].mean(1, keepdims=True)
    size = np.ptp(keypoints, axis=1).max(-1)
    return FitInput(keypoints, np.ones(keypoints.shape[:2]), camera - hips, size), (fx, fy, cx, cy)


def _fastest(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def _side(root: Path, people: list[int]) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--people", *map(str, people)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=_env(root))
    if done.returncode != 0:
        raise SystemExit(f"the measurement in {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env(root: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(root)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--people", type=int, nargs="+", default=[4, 40, 160])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.people, repeats=3)))
        return 0
    from backend.evaluation.photos import worktree

    best: dict[str, dict[str, float]] = {"baseline": {}, "current": {}}
    with worktree(args.baseline) as base_root:
        for round_ in range(args.rounds):
            order = [("baseline", base_root), ("current", REPO_ROOT)]
            for side, root in order if round_ % 2 == 0 else order[::-1]:
                for key, value in _side(root, args.people).items():
                    best[side][key] = min(value, best[side].get(key, float("inf")))
            print(f"round {round_ + 1} of {args.rounds} done", flush=True)
    print(f"milliseconds per step (fit: {STEPS}-step fits of N people; kinematics: forward and backward), fastest "
          f"of {args.rounds} rounds")
    print(f"{'':16s} {args.baseline[:12]:>12s} {'this code':>12s} {'ratio':>8s}")
    for key, base in best["baseline"].items():
        now = best["current"][key]
        print(f"{key:16s} {base:12.2f} {now:12.2f} {base / now:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
