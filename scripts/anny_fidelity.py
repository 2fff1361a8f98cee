"""How faithfully Troupe's Anny body (backend/body/anny_body.py) reproduces Anny, on phenotypes it was not built from.

    python scripts/anny_fidelity.py [--samples 100]

Draws held-out phenotypes (another Sobol seed), builds them with Anny itself, puts them in the rest pose as the
generator does, and reports: the shape space's vertex error after projecting each body onto it, the joint
regressor's error against Anny's joints, the phenotype read back from the projected betas, and standing heights.
Needs the anny package (about a minute to build Anny).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.body import anny_body as ab  # noqa: E402
from backend.body import load_body_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    body = load_body_model("anny", dtype=torch.float64)
    engine = torch.quasirandom.SobolEngine(len(ab.PHENOTYPE_NAMES), scramble=True, seed=1)
    phenotypes = engine.draw(args.samples, dtype=torch.float64)
    age = ab.PHENOTYPE_NAMES.index("age")
    phenotypes[:, age] = ab.AGE_RANGE[0] + (ab.AGE_RANGE[1] - ab.AGE_RANGE[0]) * phenotypes[:, age]
    with tempfile.TemporaryDirectory() as scratch, torch.no_grad():
        model = ab._anny_model(Path(scratch))
        rest = ab._rest_bodies(model, phenotypes)
        weights = ab._joint_weights(model)
    vertices, joints = ab._to_rest_pose(rest.vertices, rest.joints, weights)
    template = body.v_template.numpy()
    dirs = body.shapedirs.numpy().reshape(-1, body.num_betas)
    betas, *_ = np.linalg.lstsq(dirs, (vertices - template).reshape(len(vertices), -1).T, rcond=None)
    betas = betas.T
    projected = body.shaped_vertices(torch.as_tensor(betas)).numpy()
    vertex_error = np.linalg.norm(projected - vertices, axis=-1) * 1000
    joint_error = np.linalg.norm(body.rest_joints(torch.as_tensor(betas)).numpy() - joints, axis=-1) * 1000
    direct_joint_error = np.linalg.norm(body.J_regressor.numpy() @ vertices - joints, axis=-1) * 1000
    read_back = body.phenotype.of_betas(betas)
    rmse = np.sqrt(((read_back - phenotypes.numpy()) ** 2).mean(0))
    heights = vertices[..., 1].max(1) - vertices[..., 1].min(1)
    print(f"held-out phenotypes: {len(vertices)} (ages {ab.AGE_RANGE[0]}-{ab.AGE_RANGE[1]} on Anny's scale)")
    print(f"shape space ({body.num_betas} betas): vertex error mean {vertex_error.mean():.1f} mm, "
          f"95th percentile {np.percentile(vertex_error, 95):.1f} mm, max {vertex_error.max():.1f} mm")
    print(f"joints from the projected betas: mean {joint_error.mean():.1f} mm, max {joint_error.max():.1f} mm; "
          f"regressor on Anny's own meshes: mean {direct_joint_error.mean():.1f} mm, "
          f"max {direct_joint_error.max():.1f} mm")
    print("phenotype read back from betas, RMSE: " + ", ".join(
        f"{name} {value:.3f}" for name, value in zip(ab.PHENOTYPE_NAMES, rmse, strict=True)))
    print(f"standing heights (rest pose): {heights.min():.2f} m to {heights.max():.2f} m")


if __name__ == "__main__":
    main()
