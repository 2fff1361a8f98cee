"""Held-out synthetic evaluation: MPJPE (pelvis-aligned) and PA-MPJPE of the regressor vs a mean-pose baseline.

The baseline predicts, for every sample, the regressor's starting point: the pose sampler's mean body pose,
facing the camera, mean shape. PA-MPJPE (after a similarity alignment) ignores the global orientation, so it
measures the body pose and proportions only.
"""

from __future__ import annotations

import numpy as np
import torch

from backend.evaluation.metrics import mpjpe, pa_mpjpe
from backend.lasor.body import LightBody
from backend.lasor.data import Generator
from backend.lasor.model import LasorRegressor

EVAL_SEED = 987_654  # held out: training batches use seeds (train seed, step)


def held_out_batches(generator: Generator, count: int, batch_size: int = 32, seed: int = EVAL_SEED):
    return [generator.batch(np.random.default_rng([seed, i]), batch_size) for i in range(count)]


@torch.no_grad()
def evaluate(model: LasorRegressor, body: LightBody, batches) -> dict[str, float]:
    """Mean errors in millimetres over ``batches``: model and mean-pose baseline."""
    model.eval()
    errs = {"MPJPE": [], "PA-MPJPE": [], "baseline MPJPE": [], "baseline PA-MPJPE": []}
    for batch in batches:
        pred = model(batch.inputs)
        joints = body(pred["rotmats"], pred["betas"])[0].cpu().numpy()
        gt = body(batch.rotmats, batch.betas)[0].cpu().numpy()
        b = len(batch)
        base_rot = _mean_rotmats(model).expand(b, 24, 3, 3)
        base = body(base_rot, model.init_shape.expand(b, -1))[0].cpu().numpy()
        for i in range(b):
            errs["MPJPE"].append(mpjpe(joints[i], gt[i]))
            errs["PA-MPJPE"].append(pa_mpjpe(joints[i], gt[i]))
            errs["baseline MPJPE"].append(mpjpe(base[i], gt[i]))
            errs["baseline PA-MPJPE"].append(pa_mpjpe(base[i], gt[i]))
    return {k: 1000.0 * float(np.mean(v)) for k, v in errs.items()}


def _mean_rotmats(model: LasorRegressor) -> torch.Tensor:
    from backend.body.rotations import rot6d_to_matrix

    return rot6d_to_matrix(model.init_pose.reshape(24, 6))
