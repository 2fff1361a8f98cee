"""``mediapipe-fit`` with ``initialiser="lasor"``: new people start from LASOR's prediction with the full schedule,
warm-started people keep the temporal warm start; the result is still a valid PersonEstimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.estimators.base import EstimatorError, PersonEstimate
from backend.evaluation.fit_init import observations
from backend.evaluation.scenes import SceneConfig, make_scene
from backend.fitting import FitOptions, optimize
from backend.fitting.optimize import initial_params, temporal_warm

CONFIG = SceneConfig(width=320, height=240, max_boxes=0)


@pytest.fixture(scope="module")
def body_model():
    from backend.body import load_body_model

    torch.set_num_threads(1)
    return load_body_model("open-body")


@pytest.fixture(scope="module")
def scene_and_detections(body_model):
    from backend.fitting import BodyPoints

    rng = np.random.default_rng(3)
    scene = make_scene(rng, body_model, 3, CONFIG)
    det, gt = observations(scene, BodyPoints(body_model), rng, CONFIG)
    assert len(det) >= 1
    return scene, det, gt


def _estimator(body_model, initialiser, det, monkeypatch, seen):
    from backend.estimators import mediapipe_fit
    from backend.estimators.base import FoundPeople

    est = mediapipe_fit.MediapipeFitEstimator(body_model, initialiser=initialiser, depth_order=False,
                                              orient_steps=3, full_steps=6, warm_full_steps=4)
    monkeypatch.setattr(est, "find_people", lambda frames, new_shot=False: FoundPeople([det for _ in frames]))
    real = mediapipe_fit.fit_people

    def spy(points, data, intrinsics, options, *rest):
        result = real(points, data, intrinsics, options, *rest)
        seen.append((data, initial_params(points, data, np.asarray(intrinsics)), result))
        return result

    monkeypatch.setattr(mediapipe_fit, "fit_people", spy)
    return est


def test_lasor_initialiser_changes_the_start_and_gives_valid_people(body_model, scene_and_detections, monkeypatch):
    scene, det, _ = scene_and_detections
    frame = np.zeros((CONFIG.height, CONFIG.width, 3), np.uint8)
    neutral_seen, lasor_seen = [], []
    neutral = _estimator(body_model, "neutral", det, monkeypatch, neutral_seen).estimate([frame], scene.camera)
    est = _estimator(body_model, "lasor", det, monkeypatch, lasor_seen)
    first = est.estimate([frame], scene.camera)

    data_n, start_n, _ = neutral_seen[0]
    data_l, start_l, _ = lasor_seen[0]
    assert not data_n.init_valid.any()
    assert data_l.init_valid.all() and data_l.init_full.all() and not temporal_warm(data_l).any()
    pose_n, pose_l = start_n.body_pose.detach().numpy(), start_l.body_pose.detach().numpy()
    assert np.abs(pose_n - pose_l).max() > 0.05  # LASOR's limbs, not the IK-from-world-landmarks start
    assert np.allclose(pose_l, data_l.init_poses[:, 1:], atol=1e-5)

    for people in (neutral[0], first[0]):
        assert len(people) == len(det)
        for p in people:
            assert isinstance(p, PersonEstimate)
            assert p.poses.shape == (24, 3) and p.betas.shape == (body_model.num_betas,) and p.transl.shape == (3,)
            assert np.isfinite(p.poses).all() and np.isfinite(p.transl).all() and p.transl[2] > 0
            assert p.extras["warm_start"] is False

    # The next frame is a temporal warm start (short schedule), not a new LASOR start.
    second = est.estimate([frame], scene.camera)
    data_w, _, _ = lasor_seen[-1]
    assert temporal_warm(data_w).all()
    assert all(p.extras["warm_start"] for p in second[0])


def test_lasor_root_start_takes_orientation_and_depth_only(body_model, scene_and_detections, monkeypatch):
    from backend.body.rotations import rot6d_to_matrix

    scene, det, _ = scene_and_detections
    frame = np.zeros((CONFIG.height, CONFIG.width, 3), np.uint8)
    neutral_seen, root_seen = [], []
    _estimator(body_model, "neutral", det, monkeypatch, neutral_seen).estimate([frame], scene.camera)
    _estimator(body_model, "lasor-root", det, monkeypatch, root_seen).estimate([frame], scene.camera)
    _, start_n, _ = neutral_seen[0]
    data_r, start_r, _ = root_seen[0]
    assert data_r.init_valid.all() and data_r.init_full.all() and data_r.init_root_only.all()

    # limbs, shape and the pelvis's image position: the cold start's
    assert np.allclose(start_r.body_pose.detach().numpy(), start_n.body_pose.detach().numpy(), atol=1e-6)
    assert np.allclose(start_r.betas.detach().numpy(), 0.0)
    assert np.allclose(start_r.image_xy.detach().numpy(), start_n.image_xy.detach().numpy(), atol=1e-6)
    # global orientation and pelvis depth: LASOR's
    glob = rot6d_to_matrix(start_r.rot6d.detach()).numpy()
    lasor_glob = optimize.axis_angle_to_matrix(torch.as_tensor(data_r.init_poses[:, 0], dtype=torch.float32))
    assert np.allclose(glob, lasor_glob.numpy(), atol=1e-4)
    assert not np.allclose(glob, rot6d_to_matrix(start_n.rot6d.detach()).numpy(), atol=1e-2)
    with torch.no_grad():
        from backend.fitting import BodyPoints

        rest = BodyPoints(body_model).rest_joints(torch.as_tensor(data_r.init_betas, dtype=torch.float32))[:, 0]
    lasor_depth = data_r.init_transl[:, 2] + rest[:, 2].numpy()
    assert np.allclose(start_r.pelvis().detach().numpy()[:, 2], lasor_depth, rtol=1e-4)
    assert not np.allclose(start_n.pelvis().detach().numpy()[:, 2], lasor_depth, rtol=1e-2)


def test_two_starts_keep_each_persons_lower_energy_fit(body_model, scene_and_detections, monkeypatch):
    scene, det, _ = scene_and_detections
    frame = np.zeros((CONFIG.height, CONFIG.width, 3), np.uint8)
    seen = []
    est = _estimator(body_model, "neutral+lasor-root", det, monkeypatch, seen)
    people = est.estimate([frame], scene.camera)[0]
    data, start, result = seen[0]
    n = len(det)
    assert len(data) == 2 * n  # every cold person once from each start
    assert not data.init_valid[:n].any() and data.init_root_only[n:].all() and data.init_full[n:].all()
    assert np.allclose(start.body_pose.detach().numpy()[:n], start.body_pose.detach().numpy()[n:], atol=1e-6)
    assert len(people) == n
    lower = np.minimum(result.energy[:n], result.energy[n:])
    assert np.allclose(sorted(p.extras["fit_energy"] for p in people), sorted(lower), rtol=1e-6)
    second = est.estimate([frame], scene.camera)[0]  # warm people are not duplicated
    assert len(seen[-1][0]) == n and len(second) == n


def test_cli_offers_every_initialiser():
    import argparse

    from backend.app.cli import _add_reconstruct
    from backend.estimators.mediapipe_fit import INITIALISERS

    parser = argparse.ArgumentParser()
    _add_reconstruct(parser.add_subparsers())
    action = next(a for a in parser._subparsers._group_actions[0].choices["reconstruct"]._actions
                  if a.dest == "fit_init")
    assert tuple(action.choices) == INITIALISERS


def test_init_full_rows_get_the_full_schedule(body_model, scene_and_detections, monkeypatch):
    from backend.estimators.mediapipe_fit import _fit_input
    from backend.fitting import BodyPoints, fit_people

    scene, det, _ = scene_and_detections
    points = BodyPoints(body_model)
    data, _ = _fit_input([det], [None], points.num_betas)
    data.init_valid[:] = True
    steps = []
    real_run = optimize._run
    monkeypatch.setattr(optimize, "_run", lambda problem, params, n, *a, **k: (steps.append(n),
                                                                                 real_run(problem, params, 1, *a, **k)))
    intrinsics = (scene.camera.fx, scene.camera.fy, scene.camera.cx, scene.camera.cy)
    options = FitOptions(orient_steps=7, full_steps=9, warm_orient_steps=0, warm_full_steps=3)
    fit_people(points, data, intrinsics, options)
    data.init_full = np.ones(len(data), bool)
    fit_people(points, data, intrinsics, options)
    assert steps == [0, 3, 7, 9]


def test_unknown_initialiser_is_an_estimator_error(body_model):
    from backend.estimators.mediapipe_fit import MediapipeFitEstimator

    with pytest.raises(EstimatorError, match="initialiser"):
        MediapipeFitEstimator(body_model, initialiser="oracle")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_lasor_weights_are_a_clear_estimator_error(body_model, tmp_path):
    import pickle

    from backend.estimators.mediapipe_fit import MediapipeFitEstimator
    from backend.lasor.train import DEFAULT_WEIGHTS

    raw = DEFAULT_WEIGHTS.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "code.pt").write_bytes(pickle.dumps(print))  # a pickle that would call code
    torch.save({"fc1.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    state = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    state["fc1.weight"] = state["fc1.weight"][:, :10]
    torch.save(state, tmp_path / "mismatch.pt")
    cases = {"missing.pt": "No such file", "truncated.pt": "cannot read LASOR weights",
             "garbage.pt": "cannot read LASOR weights", "code.pt": "cannot read LASOR weights",
             "other.pt": "not a LASOR regressor", "mismatch.pt": "not a LASOR regressor"}
    for name, message in cases.items():
        with pytest.raises(EstimatorError, match=message):
            MediapipeFitEstimator(body_model, lasor_weights=tmp_path / name)
