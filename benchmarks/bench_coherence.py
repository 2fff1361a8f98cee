"""Rasterizer and coherence speed: the tiled rasterizer against a dense (every triangle x every pixel) baseline
in the same process, then one coherence refinement of a synthetic crowd.

    python benchmarks/bench_coherence.py [--people 20] [--width 160] [--device cpu|cuda] [--threads 1]

Prints times and the tiled/dense ratio. The dense baseline is what the tiling avoids; it runs on one person's first
triangles and is extrapolated linearly (its cost is exactly linear in triangles).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.body import load_body_model  # noqa: E402
from backend.coherence import refine_people  # noqa: E402
from backend.evaluation.perturbed import PERTURBATIONS, perturbed_estimates  # noqa: E402
from backend.evaluation.scenes import make_scene  # noqa: E402
from backend.geometry.render import NEAR, _barycentrics, rasterize  # noqa: E402

_DENSE_FACES = 1024


def _timed(fn, repeat: int = 5) -> float:
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def _dense(verts: torch.Tensor, faces: torch.Tensor, camera) -> torch.Tensor:
    """Baseline: edge functions of every triangle at every pixel, then a min over triangles."""
    tri = camera.project(verts, NEAR)[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ys, xs = torch.meshgrid(torch.arange(camera.height), torch.arange(camera.width), indexing="ij")
    px, py = xs.reshape(1, -1).to(tri), ys.reshape(1, -1).to(tri)
    best = torch.full((camera.height * camera.width,), float("inf"), device=verts.device)
    for start in range(0, len(faces), 512):
        sl = slice(start, start + 512)
        bary = _barycentrics(tri[sl], area[sl], px.expand(len(tri[sl]), -1), py.expand(len(tri[sl]), -1))
        z = 1.0 / (bary / verts[:, 2][faces[sl]][:, None, :]).sum(-1)
        z = torch.where((bary >= 0).all(-1) & (area[sl].abs() > 1e-12)[:, None], z, float("inf"))
        best = torch.minimum(best, z.amin(0))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    body = load_body_model("open-body", device=args.device)
    rng = np.random.default_rng(0)
    scene = make_scene(rng, load_body_model("open-body"), args.people)
    verts = torch.tensor(scene.vertices, device=args.device)
    small = scene.camera.resized(args.width)
    tiled = _timed(lambda: rasterize(verts, body.faces, small))
    subset = body.faces[:_DENSE_FACES]
    dense = _timed(lambda: _dense(verts[0], subset, small), repeat=2) * len(body.faces) / len(subset)
    print(f"{scene.num_people} people, {small.width}x{small.height}, {args.device}: "
          f"tiled {1000 * tiled:.1f} ms for all people, dense {1000 * dense:.1f} ms per person "
          f"(extrapolated from {len(subset)} triangles), ratio dense/tiled {dense * scene.num_people / tiled:.0f}x")
    full = _timed(lambda: rasterize(verts, body.faces, scene.camera), repeat=2)
    print(f"full resolution {scene.camera.width}x{scene.camera.height}: {1000 * full:.1f} ms for all people")
    estimates = perturbed_estimates(scene, load_body_model("open-body"), rng, PERTURBATIONS["perturbed-gt"])
    start = time.perf_counter()
    refine_people(estimates, body, scene.camera)
    print(f"coherence refinement of {len(estimates)} detected people: {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
