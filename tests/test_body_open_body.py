"""The generated open body: a closed manifold human of the right size, deterministic, with a sane rig."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from backend.body import BodyModel, available_body_models, load_body_model, open_body
from backend.body.landmarks import mouth_corners
from backend.body.open_body_design import landmark_targets, rest_joints
from backend.body.open_body_shape import shape_space
from backend.body.skeleton import LANDMARK_NAMES, joint_index
from backend.runtime.paths import cache_subdir


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return open_body.generate_open_body()


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("open-body", dtype=torch.float64)


def _stature(vertices: np.ndarray) -> float:
    return float(vertices[:, 1].max() - vertices[:, 1].min())


def test_mesh_is_closed_two_manifold_sphere(arrays: dict[str, np.ndarray]) -> None:
    faces = arrays["f"]
    assert 3000 <= len(arrays["v_template"]) <= 8000
    assert np.array_equal(np.unique(faces), np.arange(len(arrays["v_template"])))  # no unused vertex
    half_edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert len(np.unique(half_edges, axis=0)) == len(half_edges)  # consistently oriented
    _, counts = np.unique(np.sort(half_edges, axis=1), axis=0, return_counts=True)
    assert np.all(counts == 2)  # every edge shared by exactly two faces
    assert len(arrays["v_template"]) - len(counts) + len(faces) == 2  # one closed sphere-like surface
    tri = arrays["v_template"][faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert 0.045 < volume < 0.09  # outward faces; about 65 litres for an adult
    assert (np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) > 0).all()


def test_generation_is_deterministic(arrays: dict[str, np.ndarray]) -> None:
    again = open_body.generate_open_body()
    assert arrays.keys() == again.keys()
    for key in arrays:
        assert np.array_equal(arrays[key], again[key]), key


def test_proportions_match_smpl_frame(arrays: dict[str, np.ndarray]) -> None:
    v = arrays["v_template"]
    assert 1.6 < _stature(v) < 1.9
    assert -1.22 < v[:, 1].min() < -1.1 and 0.45 < v[:, 1].max() < 0.6
    assert abs(v[:, 0].max() + v[:, 0].min()) < 0.01  # left/right symmetric
    assert 1.55 < v[:, 0].max() - v[:, 0].min() < 1.85  # arm span, T-pose
    pelvis = arrays["J_regressor"][0] @ v
    np.testing.assert_allclose(pelvis, [0.0, -0.22, 0.02], atol=0.02)
    joints = arrays["J_regressor"] @ v
    assert joints[joint_index("left_hip"), 0] > 0 > joints[joint_index("right_hip"), 0]  # +x is the body's left


def test_height_grows_with_beta0(body: BodyModel) -> None:
    betas = torch.zeros(5, body.num_betas, dtype=torch.float64)
    betas[:, 0] = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    heights = [_stature(v) for v in body.shaped_vertices(betas).numpy()]
    assert all(b > a for a, b in itertools.pairwise(heights))
    assert 0.08 < (heights[3] - heights[2]) < 0.12


def test_build_changes_girth_not_height(body: BodyModel) -> None:
    betas = torch.zeros(3, body.num_betas, dtype=torch.float64)
    betas[:, 1] = torch.tensor([-2.0, 0.0, 2.0])
    shaped = body.shaped_vertices(betas).numpy()
    waist = [np.ptp(v[np.abs(v[:, 1] + 0.05) < 0.02, 0]) for v in shaped]
    assert waist[0] < waist[1] < waist[2] and waist[2] - waist[0] > 0.02
    assert abs(_stature(shaped[2]) - _stature(shaped[0])) < 0.02


def test_skin_weights_are_smooth_partitions_of_unity(arrays: dict[str, np.ndarray]) -> None:
    w = arrays["weights"]
    assert w.shape == (len(arrays["v_template"]), 24) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert (w.max(axis=0) > 0.5).all()  # every joint drives some part of the body
    f = arrays["f"]
    jump = np.abs(w[f[:, 0]] - w[f[:, 1]]).max()
    assert jump < 0.5  # no hard seams between neighbouring vertices
    v = arrays["v_template"]
    for name, point in (("head", (0, 0.5, 0)), ("left_knee", (0.1, -0.85, 0)), ("right_elbow", (-0.55, 0.22, 0))):
        nearest = np.argmin(np.linalg.norm(v - np.asarray(point), axis=1))
        assert w[nearest].argmax() == joint_index(name), name


def test_joint_regressor_follows_the_shape(arrays: dict[str, np.ndarray], body: BodyModel) -> None:
    reg = arrays["J_regressor"]
    assert (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(reg @ arrays["v_template"], rest_joints(), atol=1e-9)
    _, designed = shape_space(arrays["v_template"], arrays["weights"], rest_joints())
    regressed = np.einsum("jv,vck->jck", reg, arrays["shapedirs"])
    assert np.abs(regressed - designed).max() < 0.006  # joints move as the skeleton design says, per unit
    gen = torch.Generator().manual_seed(0)
    betas = 2.0 * torch.randn(8, body.num_betas, generator=gen, dtype=torch.float64)
    joints = body.rest_joints(betas)
    verts = body.shaped_vertices(betas)
    for v, j in zip(verts.numpy(), joints.numpy(), strict=True):
        assert (_winding_numbers(v, arrays["f"], j) > 0.5).all()  # every joint stays inside the body


def _winding_numbers(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point (1 inside a closed outward mesh, 0 outside)."""
    out = []
    for p in points:
        a, b, c = (vertices[faces[:, i]] - p for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la
        den += np.einsum("ij,ij->i", c, a) * lb
        out.append(np.arctan2(num, den).sum() / (2 * np.pi))
    return np.array(out)


def test_landmarks_sit_where_they_should(arrays: dict[str, np.ndarray], body: BodyModel) -> None:
    assert set(body.landmark_vertices) == set(LANDMARK_NAMES)
    p = {name: body.v_template[i].numpy() for name, i in body.landmark_vertices.items()}
    head = rest_joints()[joint_index("head")]
    assert abs(p["nose"][0]) < 0.01 and p["nose"][2] > head[2] + 0.04
    assert p["nose"][2] > max(p["left_eye"][2], p["left_mouth"][2]) > p["left_ear"][2]
    assert p["left_eye"][1] > p["nose"][1] > p["left_mouth"][1]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for part in ("eye", "ear", "mouth", "heel", "big_toe", "small_toe"):
            assert sign * p[f"{side}_{part}"][0] > 0.01, f"{side}_{part}"
        ankle = rest_joints()[joint_index(f"{side}_ankle")]
        assert p[f"{side}_heel"][2] < ankle[2] < p[f"{side}_big_toe"][2]
        assert max(p[f"{side}_heel"][1], p[f"{side}_big_toe"][1]) < ankle[1] - 0.03
        assert abs(p[f"{side}_big_toe"][0]) < abs(p[f"{side}_small_toe"][0])
    for name, target in landmark_targets().items():
        assert np.linalg.norm(p[name] - target) < 0.03, name


def test_geometric_mouth_corners_on_a_face(arrays: dict[str, np.ndarray]) -> None:
    """The picker used for SMPL files finds the mouth on the open body's face from nose and eyes alone."""
    names = dict(zip(arrays["landmark_names"].tolist(), arrays["landmark_vertices"].tolist(), strict=True))
    v = arrays["v_template"]
    picked = mouth_corners(v, names["nose"], names["left_eye"], names["right_eye"])
    for side in ("left_mouth", "right_mouth"):
        assert np.linalg.norm(v[picked[side]] - v[names[side]]) < 0.025


def test_cache_is_reused_and_versioned() -> None:
    path = cache_subdir("body") / f"open-body-v{open_body.GENERATOR_VERSION}.npz"
    load_body_model("open-body")
    assert path.is_file() and path == open_body.cache_path()
    stamp = path.stat().st_mtime_ns
    load_body_model("open-body")
    assert path.stat().st_mtime_ns == stamp  # read, not regenerated
    with np.load(path) as data:
        stale = {key: data[key] for key in data.files}
    stale["generator_version"] = np.array(-1)
    stale["v_template"] = stale["v_template"] * 2
    np.savez(path, **stale)
    fresh = load_body_model("open-body", dtype=torch.float64)
    assert _stature(fresh.v_template.numpy()) < 1.9  # the stale file was replaced
    assert available_body_models()["open-body"] == str(path)
