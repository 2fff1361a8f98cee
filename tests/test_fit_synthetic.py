"""The batched fit on synthetic observations with known ground truth: no MediaPipe, no images.

Bodies are posed with known pose, shape and translation; their fitted points (joints, virtual hips, landmark
vertices) are projected through a camera and fed to the fit as if MediaPipe had produced them, together with
camera-aligned "world landmarks" expressed, like MediaPipe's, in each person's crop camera.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.body import load_body_model
from backend.body.model import BodyModel
from backend.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from backend.fitting import BodyPoints, FitInput, FitOptions, fit_people
from backend.fitting.init import orientation_from_world, ray_rotations, torso_centre
from backend.geometry.camera import Camera, project

CAMERA = Camera.from_fov(1280, 720)
INTRINSICS = (CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy)


def _smpl_layout(open_arrays: dict) -> BodyModel:
    """SMPL's layout (10 betas, pose blend shapes) on the open body's mesh: the fit never sees the licensed file,
    but must handle what differs (more shape coefficients, posedirs)."""
    rng = np.random.default_rng(0)
    num = open_arrays["v_template"].shape[0]
    extra = rng.normal(0.0, 0.002, (num, 3, 10 - open_arrays["shapedirs"].shape[-1]))
    arrays = {**open_arrays, "shapedirs": np.concatenate([open_arrays["shapedirs"], extra], axis=-1),
              "posedirs": rng.normal(0.0, 0.001, (num, 3, 207))}
    landmarks = dict(zip(open_arrays["landmark_names"].tolist(), open_arrays["landmark_vertices"].tolist()))
    return BodyModel.from_arrays("smpl-layout", arrays, landmark_vertices=landmarks)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BodyModel]:
    # Module fixtures run before conftest's per-test cache isolation: point the cache at the same folder here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TROUPE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "troupe-cache"))
        from backend.body.open_body import open_body_arrays

        return {"open-body": load_body_model("open-body"), "smpl-layout": _smpl_layout(dict(open_body_arrays()))}


@pytest.fixture(scope="module", params=["open-body", "smpl-layout"])
def body_model(request: pytest.FixtureRequest, models: dict[str, BodyModel]) -> BodyModel:
    return models[request.param]


@pytest.fixture(scope="module")
def body(models: dict[str, BodyModel]) -> BodyPoints:
    return BodyPoints(models["open-body"])


def _yaw_facing_camera(yaw: float) -> np.ndarray:
    """Axis-angle of an upright person facing the camera, turned by ``yaw`` about the vertical."""
    facing = torch.tensor(np.diag([1.0, -1.0, -1.0]), dtype=torch.float64)
    turn = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64))
    return matrix_to_axis_angle(facing @ turn).numpy()


def _scene(body: BodyPoints, num: int, seed: int = 0, depths: np.ndarray | None = None) -> tuple[dict, FitInput]:
    """Known people (mean shape: size and depth are only jointly observable in one image) and their observations."""
    rng = np.random.default_rng(seed)
    poses = rng.normal(0.0, 0.12, (num, 24, 3))
    poses[:, 0] = [_yaw_facing_camera(y) for y in rng.uniform(-1.0, 1.0, num)]
    poses[:, 4, 0], poses[:, 5, 0] = rng.uniform(0.0, 1.2, num), rng.uniform(0.0, 1.2, num)  # knees
    poses[:, 16, 2], poses[:, 17, 2] = rng.uniform(-1.3, -0.6, num), rng.uniform(0.6, 1.3, num)  # arms down
    poses[:, 18, 1], poses[:, 19, 1] = -rng.uniform(0.0, 1.5, num), rng.uniform(0.0, 1.5, num)  # elbows
    betas = np.zeros((num, body.num_betas))
    transl = np.stack([rng.uniform(-2, 2, num), rng.uniform(-0.3, 0.8, num), rng.uniform(4, 14, num)], -1)
    if depths is not None:
        transl[:, 2] = depths
    with torch.no_grad():
        joints, points = body(axis_angle_to_matrix(torch.tensor(poses, dtype=torch.float32)),
                              torch.tensor(betas, dtype=torch.float32))
    points_cam = (points + torch.tensor(transl, dtype=torch.float32)[:, None]).numpy().astype(np.float64)
    keypoints = project(torch.tensor(points_cam), torch.tensor(INTRINSICS, dtype=torch.float64)).numpy()
    confidence = np.ones(keypoints.shape[:2])
    rays = ray_rotations(torso_centre(keypoints, confidence), np.array(INTRINSICS))
    hips = points_cam[:, [10, 11]].mean(axis=1, keepdims=True)  # MediaPipe's world origin: between the hips
    world = np.einsum("bji,bpj->bpi", rays, points_cam - hips)  # camera axes -> each person's crop camera
    size = np.ptp(keypoints, axis=1).max(axis=-1)
    truth = {"poses": poses, "betas": betas, "transl": transl, "joints": joints.numpy() + transl[:, None]}
    return truth, FitInput(keypoints, confidence, world, size)


def test_fit_recovers_translation_and_reprojects(body_model: BodyModel) -> None:
    body = BodyPoints(body_model)
    truth, data = _scene(body, num=6)
    result = fit_people(body, data, INTRINSICS)
    relative = np.linalg.norm(result.transl - truth["transl"], axis=-1) / np.linalg.norm(truth["transl"], axis=-1)
    assert relative.max() < 0.04, relative
    assert np.median(result.reprojection_px) < 2.0 and result.reprojection_px.max() < 4.0, result.reprojection_px
    root_relative = (result.joints - result.joints[:, :1]) - (truth["joints"] - truth["joints"][:, :1])
    assert np.linalg.norm(root_relative, axis=-1).mean() < 0.05  # metres, mean per-joint error after centring


def test_result_matches_body_model_forward(body_model: BodyModel) -> None:
    """The contract: posed joints = FK(poses, betas) + transl exactly as BodyModel.forward, joints2d its projection."""
    body = BodyPoints(body_model)
    _, data = _scene(body, num=3, seed=1)
    result = fit_people(body, data, INTRINSICS, FitOptions(orient_steps=5, full_steps=10))
    with torch.no_grad():
        f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        out = body_model(f32(result.poses), f32(result.betas), f32(result.transl))
    np.testing.assert_allclose(out.joints.numpy(), result.joints, atol=1e-4)
    np.testing.assert_allclose(CAMERA.project(out.joints.numpy()), result.joints2d, atol=0.05)


def test_ordinal_term_puts_the_occluder_in_front(body: BodyPoints) -> None:
    """Two people 8% apart in depth; an ordinal pair saying the farther one occludes the nearer one must win."""
    truth, data = _scene(body, num=2, seed=3, depths=np.array([6.5, 6.0]))
    plain = fit_people(body, data, INTRINSICS)
    assert plain.joints[1, 0, 2] < plain.joints[0, 0, 2]  # without evidence, sizes give the true order
    result = fit_people(body, data, INTRINSICS, None, np.array([[0, 1]]))
    assert result.joints[0, 0, 2] < result.joints[1, 0, 2]


def test_empty_batch(body: BodyPoints) -> None:
    empty = FitInput(np.zeros((0, 25, 2)), np.zeros((0, 25)), np.zeros((0, 25, 3)), np.zeros((0,)))
    result = fit_people(body, empty, INTRINSICS)
    assert result.poses.shape == (0, 24, 3) and result.transl.shape == (0, 3)


def test_initial_orientation_of_an_upright_person_facing_the_camera(body: BodyPoints) -> None:
    with torch.no_grad():
        _, rest = body(torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, body.num_betas))
    facing = rest.numpy() * np.array([1.0, -1.0, -1.0])  # body frame (y up, facing +z) -> camera axes
    rotation = orientation_from_world(facing, rest.numpy()[0])[0]
    np.testing.assert_allclose(rotation, np.diag([1.0, -1.0, -1.0]), atol=1e-6)


def test_ray_rotation_turns_the_optical_axis_onto_the_ray() -> None:
    pixels = np.array([[100.0, 650.0], [CAMERA.cx, CAMERA.cy]])
    rotations = ray_rotations(pixels, np.array(INTRINSICS))
    rays = rotations @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(CAMERA.project(rays * 5.0), pixels, atol=1e-6)
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.tile(np.eye(3), (2, 1, 1)), atol=1e-9)
