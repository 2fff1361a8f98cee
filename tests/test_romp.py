"""ROMP: letterboxing (cv2 on the host, torch on the device), centre-map parsing, the translation solve, and the
estimator end to end on a real image with a checkpoint in the original training layout (random weights, centre
head biased so people are found)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.body import load_body_model
from backend.estimators.centermaps import parse_centers_2d
from backend.estimators.one_stage import BodyAdapter, input_to_image, letterbox, preprocess
from backend.estimators.registry import create_estimator
from backend.geometry.camera import Camera, project, solve_translation
from backend.nets.romp import ROMPv1

BF16_TOLERANCE = 0.05  # relative L2 error of the output maps, bf16 autocast vs fp32
# Device (torch bicubic) vs host (cv2 INTER_CUBIC) letterboxing, in grey levels of 0..255: only cv2's fixed-point
# rounding differs (measured: max 1, mean ~1e-5 on real frames and odd-sized crops).
LETTERBOX_MAX_DIFF = 1.0
LETTERBOX_MEAN_DIFF = 0.01
pytestmark = pytest.mark.filterwarnings("ignore:.*betas are set to zero:UserWarning")


@pytest.fixture(scope="module")
def body():
    return load_body_model("open-body")


@pytest.fixture(scope="module")
def image(shared_data: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(shared_data / "football_player_a.jpg")), cv2.COLOR_BGR2RGB)


def original_layout_checkpoint(net: torch.nn.Module, path: Path) -> Path:
    """ROMP_HRNet32_V1.pkl style: ``module.`` prefix, ``_result_parser.*`` buffers, wrapped dict."""
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    state["module._result_parser.params_map_parser.smpl_model.J_regressor"] = torch.zeros(24, 6890)
    torch.save({"model_state_dict": state}, path)
    return path


@pytest.fixture(scope="module")
def romp(tmp_path_factory: pytest.TempPathFactory, body):
    torch.manual_seed(0)
    net = ROMPv1("hrnet32")
    with torch.no_grad():
        net.final_layers[2][2].bias.fill_(3.0)  # plant centres: the raw centre map is well above 0.25
    path = original_layout_checkpoint(net, tmp_path_factory.mktemp("romp") / "ROMP_HRNet32_V1.pkl")
    with pytest.warns(UserWarning, match="betas are set to zero"):
        return create_estimator("romp", body, "cpu", checkpoint=str(path), batch_size=2, max_people=8)


def test_letterbox_maps_back_to_original_pixels() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[149:152, 59:62] = 255  # a dot at (x=60, y=150)
    boxed, (side, left, top) = letterbox(frame)
    assert boxed.shape == (512, 512, 3) and (side, left, top) == (300, 0, 50)
    ys, xs = np.nonzero(boxed[..., 0] > 128)
    centre = torch.tensor([[[(xs.mean() + 0.5) / 256 - 1, (ys.mean() + 0.5) / 256 - 1]]])
    back = input_to_image(centre, torch.tensor([[side, left, top]], dtype=torch.float32))[0, 0]
    assert back.tolist() == pytest.approx([60.5, 150.5], abs=1.0)


def test_device_letterbox_agrees_with_cv2(image: np.ndarray) -> None:
    """The CUDA path (torch pad + bicubic interpolate), run here on the CPU, against the official cv2 path: a
    batch of same-sized frames (one resize), then mixed sizes including an odd crop and an upscaled small one."""
    crop, small = image[37:700, 101:1101], image[200:501, 400:777]
    for batch in ([image, image[:, ::-1]], [image, crop, small]):
        host, host_pads = preprocess(batch, torch.device("cpu"), on_device=False)
        dev, dev_pads = preprocess(batch, torch.device("cpu"), on_device=True)
        assert dev.shape == host.shape == (len(batch), 512, 512, 3) and dev.dtype == torch.float32
        assert dev_pads.tolist() == host_pads.tolist()
        diff = (dev - host).abs()
        assert diff.max().item() <= LETTERBOX_MAX_DIFF and diff.mean().item() < LETTERBOX_MEAN_DIFF


def test_parse_2d_finds_planted_peaks_exactly() -> None:
    maps = torch.rand(3, 1, 64, 64) * 0.2  # noise below the threshold
    planted = {(0, 10, 20): 0.9, (0, 40, 41): 0.5, (2, 63, 0): 0.7, (2, 5, 5): 0.3}
    for (b, y, x), v in planted.items():
        maps[b, 0, y, x] = v
    maps[0, 0, 11, 21] = 0.8  # inside the 5x5 window of a higher peak: suppressed
    batch_ids, flat, scores = parse_centers_2d(maps, 0.25)
    found = {(int(b), int(f) // 64, int(f) % 64): float(s) for b, f, s in zip(batch_ids, flat, scores)}
    assert found == pytest.approx(planted)
    assert batch_ids.tolist() == [0, 0, 2, 2] and scores[:2].tolist() == pytest.approx([0.9, 0.5])


def test_translation_solve_recovers_a_known_translation(body) -> None:
    gen = torch.Generator().manual_seed(1)
    poses = torch.randn(5, 24, 3, generator=gen) * 0.3
    joints = BodyAdapter(body, "test").joints(poses, torch.zeros(5, body.num_betas))
    truth = torch.tensor([[0.3, -0.2, 4.0], [-1.0, 0.5, 8.0], [0.0, 0.0, 2.5], [2.0, 1.0, 12.0], [0, 0.3, 30.0]])
    k = Camera.from_fov(1280, 720).intrinsics_tensor(device=torch.device("cpu"))
    pixels = project(joints + truth[:, None], k)
    assert solve_translation(joints, pixels, k) == pytest.approx(truth, abs=1e-3)


def test_romp_end_to_end_on_a_real_image(romp, body, image: np.ndarray) -> None:
    camera = Camera.from_fov(image.shape[1], image.shape[0])
    people = romp.estimate([image], camera)
    assert len(people) == 1 and 1 <= len(people[0]) <= 8
    for person in people[0]:
        assert person.poses.shape == (24, 3) and np.all(person.poses[22:] == 0)
        assert person.betas.shape == (body.num_betas,) and np.all(person.betas == 0)  # open body: zero betas
        assert person.transl[2] > 0 and 0 <= person.confidence <= 1
        posed = body(torch.as_tensor(person.poses)[None], transl=torch.as_tensor(person.transl)[None]).joints[0]
        assert camera.project(posed.numpy()) == pytest.approx(person.joints2d, abs=1e-2)
        assert person.extras["cam"].shape == (3,) and person.extras["cam"][0] > 0


def test_projection_through_the_pipeline_camera_matches_the_network(romp, body) -> None:
    """Weak-perspective (s, tx, ty) -> people whose perspective projection lands on ROMP's 2D joints."""
    params = torch.zeros(2, 145)
    params[:, :3] = torch.tensor([[0.5, 0.1, -0.2], [0.2, -0.5, 0.3]])
    params[:, 3:135] = torch.tensor([1.0, 0, 0, -1, 0, 0]).repeat(22)  # upright in the camera frame
    pads = torch.tensor([[1280.0, 0, 280], [1280.0, 0, 280]])
    for fov in (40.0, 70.0):
        camera = Camera.from_fov(1280, 720, fov)
        people = romp.people(torch.tensor([0, 0]), torch.ones(2), params, pads, camera)
        joints = BodyAdapter(body, "test").joints(people.poses, people.betas)
        target = input_to_image(params[:, None, :1] * joints[..., :2] + params[:, None, 1:3], pads)
        extent = (target.amax(1) - target.amin(1)).amax(-1)
        error = (people.joints2d - target).norm(dim=-1).amax(-1)
        assert torch.all(error < 0.05 * extent)
    assert people.transl[0, 2] < people.transl[1, 2]  # bigger scale, nearer


def test_bf16_autocast_agrees_with_fp32(romp, image: np.ndarray) -> None:
    images, _ = preprocess([image], torch.device("cpu"))
    with torch.inference_mode():
        center32, params32 = romp.net(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            center16, params16 = romp.net(images)
    for a, b in ((center32, center16.float()), (params32, params16.float())):
        assert ((a - b).norm() / a.norm()).item() < BF16_TOLERANCE


def test_resnet50_variant_runs(tmp_path: Path, body, image: np.ndarray) -> None:
    torch.manual_seed(0)
    net = ROMPv1("resnet50")
    with torch.no_grad():
        net.final_layers[2][2].bias.fill_(3.0)
    torch.save(net.state_dict(), tmp_path / "ROMP_ResNet50_V1.pkl")
    with pytest.warns(UserWarning):
        estimator = create_estimator("romp", body, "cpu", backbone="resnet50",
                                     checkpoint=str(tmp_path / "ROMP_ResNet50_V1.pkl"), max_people=2)
    people = estimator.estimate([image], Camera.from_fov(image.shape[1], image.shape[0]))
    assert len(people) == 1 and 1 <= len(people[0]) <= 2
