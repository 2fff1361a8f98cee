"""Fit and coherence cost per person with the Anny body against the open body, on the same people, in one process.

    python benchmarks/bench_anny.py [--people 12] [--repeat 3]

The fit: mediapipe-fit's optimisation (neutral start) of the same MediaPipe-like detections with each body.

One synthetic crowd (made with the open body) gives poses, translations and masks; each body model then
refines those same estimates (betas set to each model's mean shape, so only the mesh differs), and the
penetration field of one posed person is built (on each body's coherence mesh,
``backend.coherence.proxy``). Prints seconds per person for both and the Anny/open ratio
(the issue's target: at most 1.5x). Needs the anny package, or an Anny body already generated in the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.body import load_body_model  # noqa: E402
from backend.coherence import refine_people  # noqa: E402
from backend.coherence.fields import penetration_field  # noqa: E402
from backend.coherence.proxy import coherence_mesh  # noqa: E402
from backend.estimators.mediapipe_fit import _fit_input, fit_hypotheses  # noqa: E402
from backend.evaluation.fit_init import observations  # noqa: E402
from backend.evaluation.perturbed import PERTURBATIONS, perturbed_estimates  # noqa: E402
from backend.fitting import BodyPoints, FitOptions  # noqa: E402
from backend.evaluation.scenes import make_scene  # noqa: E402


def _best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--people", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    open_body = load_body_model("open-body")
    scene = make_scene(rng, open_body, args.people)
    estimates = perturbed_estimates(scene, open_body, rng, PERTURBATIONS["perturbed-gt"])
    people = len(estimates)
    detections, _ = observations(scene, BodyPoints(open_body), rng)
    rows = {}
    for name in ("open-body", "anny"):
        body = load_body_model(name)
        same = [dataclasses.replace(e, betas=np.zeros(body.num_betas, np.float32)) for e in estimates]
        refine = _best_of(lambda: refine_people(same, body, scene.camera), args.repeat)  # noqa: B023
        points = BodyPoints(body)
        neutral, frame_of = _fit_input([detections], [None], points.num_betas)
        fit = _best_of(lambda: fit_hypotheses(points, [detections], neutral, frame_of, scene.camera,  # noqa: B023
                                              FitOptions(), None, "neutral"), args.repeat) / len(detections)
        mesh = coherence_mesh(body)
        posed = mesh.select(body(torch.as_tensor(same[0].poses[None], dtype=torch.float32)).vertices[0])
        field = _best_of(lambda: penetration_field(posed, mesh.faces, 32), args.repeat)  # noqa: B023
        rows[name] = (refine / people, field, fit)
        print(f"{name:9s} {body.num_vertices:6d} vertices, coherence mesh {len(posed):5d} vertices "
              f"{len(mesh.faces):6d} triangles: coherence "
              f"{1000 * refine / people:.1f} ms per person ({people} people), one penetration field "
              f"{1000 * field:.1f} ms; fit {1000 * fit:.0f} ms per person ({len(detections)} people)")
    print(f"Anny / open body: coherence {rows['anny'][0] / rows['open-body'][0]:.2f}x per person, "
          f"field {rows['anny'][1] / rows['open-body'][1]:.2f}x, fit {rows['anny'][2] / rows['open-body'][2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
