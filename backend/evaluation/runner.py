"""Run estimators on synthetic scenes, with and without coherence, and tabulate the metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from backend.coherence import CoherenceOptions, refine_people
from backend.estimators.base import PersonEstimate
from backend.evaluation import metrics
from backend.evaluation.perturbed import PERTURBATIONS, perturbed_estimates
from backend.evaluation.scenes import SceneConfig, SyntheticScene, make_scene

NOTE = ("Estimators are 'perturbed ground truth' (true people with monocular-style depth, pose and shape errors):\n"
        "image-based estimators cannot run meaningfully on rendered grey meshes, and coherence corrects exactly\n"
        "these placement errors. Ordinal depth and collisions are over detected people; MPJPE/PVE are pelvis-aligned.")


@dataclass
class Totals:
    """Accumulated metrics of one (estimator, coherence) row."""

    joint_errors: list[float] = field(default_factory=list)
    pa_errors: list[float] = field(default_factory=list)
    vertex_errors: list[float] = field(default_factory=list)
    depth_errors: list[float] = field(default_factory=list)
    ordinal_correct: int = 0
    ordinal_total: int = 0
    colliding_pairs: int = 0
    penetration: list[float] = field(default_factory=list)
    detected: int = 0
    people: int = 0
    seconds: float = 0.0
    frames: int = 0

    def row(self) -> dict[str, float]:
        mean = lambda xs: 1000.0 * float(np.mean(xs)) if xs else float("nan")  # noqa: E731
        return {
            "MPJPE": mean(self.joint_errors), "PA-MPJPE": mean(self.pa_errors), "PVE": mean(self.vertex_errors),
            "root depth err": mean(self.depth_errors),
            "ordinal %": 100.0 * self.ordinal_correct / max(self.ordinal_total, 1),
            "colliding pairs": float(self.colliding_pairs), "pen. depth": mean(self.penetration),
            "recall %": 100.0 * self.detected / max(self.people, 1), "s/frame": self.seconds / max(self.frames, 1),
        }


def evaluate(estimators: tuple[str, ...] = ("perturbed-gt",), num_scenes: int = 20, people: tuple[int, int] = (2, 20),
             seed: int = 0, options: CoherenceOptions | None = None, config: SceneConfig | None = None,
             body_model: str = "open-body") -> dict[tuple[str, bool], dict[str, float]]:
    """Metrics per (estimator, with coherence?) over ``num_scenes`` scenes of ``people`` (min, max) people."""
    from backend.body import load_body_model

    body = load_body_model(body_model)
    rng = np.random.default_rng(seed)
    totals = {(name, c): Totals() for name in estimators for c in (False, True)}
    for _ in range(num_scenes):
        scene = make_scene(rng, body, int(rng.integers(people[0], people[1] + 1)), config)
        for name in estimators:
            estimates = perturbed_estimates(scene, body, rng, PERTURBATIONS[name])
            _score(scene, body, estimates, totals[(name, False)], 0.0)
            start = time.perf_counter()
            refined = refine_people(estimates, body, scene.camera, options=options)
            _score(scene, body, refined, totals[(name, True)], time.perf_counter() - start)
    return {key: t.row() for key, t in totals.items()}


def _score(scene: SyntheticScene, body: torch.nn.Module, estimates: list[PersonEstimate], t: Totals,
           seconds: float) -> None:
    t.people += scene.num_people
    t.detected += len(estimates)
    t.seconds += seconds
    t.frames += 1
    if not estimates:
        return
    gt = [p.extras["gt_index"] for p in estimates]
    with torch.no_grad():
        out = body(*(torch.tensor(np.stack([getattr(p, k) for p in estimates]), dtype=torch.float32)
                     for k in ("poses", "betas", "transl")))
    joints, verts = out.joints.numpy(), out.vertices.numpy()
    for k, i in enumerate(gt):
        t.joint_errors.append(metrics.mpjpe(joints[k], scene.joints[i]))
        t.pa_errors.append(metrics.pa_mpjpe(joints[k], scene.joints[i]))
        t.vertex_errors.append(metrics.pve(verts[k], scene.vertices[i], joints[k, 0], scene.joints[i, 0]))
        t.depth_errors.append(abs(float(joints[k, 0, 2] - scene.joints[i, 0, 2])))
    correct, total = metrics.ordinal_pairs(joints[:, 0, 2], scene.joints[gt, 0, 2])
    t.ordinal_correct += correct
    t.ordinal_total += total
    count, depths = metrics.collisions(verts, body.faces)
    t.colliding_pairs += count
    t.penetration.extend(depths)


def format_table(results: dict[tuple[str, bool], dict[str, float]]) -> str:
    """A plain-text table, one row per (estimator, coherence); lengths in mm."""
    columns = list(next(iter(results.values())))
    header = ["estimator", "coherence", *columns]
    rows = [[name, "yes" if c else "no", *(_cell(k, v) for k, v in row.items())] for (name, c), row in results.items()]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def _cell(column: str, value: float) -> str:
    if value != value:  # NaN: nothing to average (e.g. no colliding pair left)
        return "-"
    return f"{value:.2f}" if column == "s/frame" else f"{value:.1f}"
