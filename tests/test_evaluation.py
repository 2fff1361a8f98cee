"""Synthetic evaluation: metrics, scene generation, the perturbed estimator and the eval command."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from backend.evaluation import metrics
from backend.evaluation.cli import add_parser
from backend.evaluation.perturbed import PERTURBATIONS, perturbed_estimates
from backend.evaluation.scenes import SceneConfig, make_scene


@pytest.fixture(scope="module")
def body():
    from backend.body import load_body_model

    torch.set_num_threads(1)
    return load_body_model("open-body")


def test_pose_metrics() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(24, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    similar = 1.3 * gt @ rot.T + 5.0
    assert metrics.pa_mpjpe(similar, gt) < 1e-9
    assert metrics.mpjpe(gt + 2.0, gt) < 1e-12 and metrics.mpjpe(similar, gt) > 0.1
    assert metrics.ordinal_pairs(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == (2, 3)


def test_scene_is_consistent(body) -> None:
    rng = np.random.default_rng(4)
    scene = make_scene(rng, body, 4, SceneConfig(width=320, height=240))
    assert 2 <= scene.num_people <= 4
    assert metrics.collisions(scene.vertices, body.faces)[0] == 0
    assert scene.index_map.shape == (240, 320) and scene.index_map.max() < scene.num_people
    seen = np.isfinite(scene.keypoints[..., 0])
    assert seen.any()
    true2d = scene.camera.project(scene.joints)
    error = np.linalg.norm(scene.keypoints - true2d, axis=-1)[seen]
    assert np.median(error) < 5.0  # 2 px noise, a few outliers
    for i in range(scene.num_people):
        feet = scene.vertices[i][:, 1].max()
        assert abs(feet - scene.vertices[0][:, 1].max()) < 1e-4  # all stand on one ground plane
        assert scene.mask(i).sum() > 0 or not seen[i].any()  # a visible keypoint implies a visible person


def test_perturbed_estimates_are_consistent(body) -> None:
    rng = np.random.default_rng(5)
    scene = make_scene(rng, body, 3, SceneConfig(width=320, height=240))
    estimates = perturbed_estimates(scene, body, rng, PERTURBATIONS["perturbed-gt"])
    assert estimates and len({p.extras["gt_index"] for p in estimates}) == len(estimates)
    for p in estimates:
        with torch.no_grad():
            out = body(*(torch.tensor(x[None], dtype=torch.float32) for x in (p.poses, p.betas, p.transl)))
        np.testing.assert_allclose(scene.camera.project(out.joints[0].numpy()), p.joints2d, atol=1e-2)
        assert p.mask is not None and p.mask.any()
        detected = p.extras["keypoints2d"]  # what the detector saw: the scene's keypoints, not the estimate's
        np.testing.assert_array_equal(detected, scene.keypoints[p.extras["gt_index"]].astype(np.float32))
        assert p.extras["keypoint_layout"] == "smpl24"
        np.testing.assert_array_equal(p.extras["keypoint_visibility"] > 0, np.isfinite(detected).all(-1))


def test_eval_command_prints_a_table(body, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--scenes", "1", "--min-people", "3", "--max-people", "3", "--seed", "2"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "perturbed-gt" in out and "ordinal %" in out and "perturbed ground truth" in out
