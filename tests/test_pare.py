"""PARE: key layout, the Lightning checkpoint loader (restricted unpickling), the crop camera -> pipeline camera
translation, batching, and the estimator end to end on a real image with random weights in the official layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.body import load_body_model
from backend.body.rotations import axis_angle_to_matrix
from backend.estimators.one_stage import BodyAdapter
from backend.estimators.pare import (
    CROP_FOCAL,
    CROP_SIZE,
    closed_form_translation,
    crop_affine,
    crop_camera_pixels,
    crop_people,
    full_image_translation,
    square_boxes,
)
from backend.estimators.registry import EstimatorError, create_estimator
from backend.estimators.weights import CHECKPOINTS, WeightsError, install_checkpoint, read_checkpoint
from backend.geometry.camera import Camera, project, solve_translation
from backend.nets.pare import PARE, LocallyConnected2d, part_attention
from tests.test_nets_keys import keys_of, listing

pytestmark = pytest.mark.filterwarnings("ignore:.*betas are set to zero:UserWarning")


class CfgNode(dict):
    """Stands for yacs' CfgNode in the hyper-parameters: a pickled class weights_only refuses."""


class Payload:
    """Pickled code that must never run: unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def random_pare(seed: int = 0, **config) -> PARE:
    torch.manual_seed(seed)
    net = PARE(**config)
    with torch.no_grad():  # a sane camera: s = 0.9, t = 0 (random weights otherwise give s <= 0 for some people)
        net.head.cam_mlp.weight.mul_(1e-3)
        net.head.cam_mlp.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
    return net


def lightning_checkpoint(net: torch.nn.Module, path: Path, hparams: object = None, extras: dict | None = None) -> Path:
    """The official .ckpt layout: ``model.`` prefix, SMPL buffers and loss_fn entries, Lightning bookkeeping."""
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    state["model.smpl.smpl.v_template"] = torch.zeros(6890, 3)
    state["model.smpl.smpl.J_regressor_extra"] = torch.zeros(9, 6890)
    state["loss_fn.criterion_shape.weight"] = torch.zeros(1)
    ckpt = {"state_dict": state, "epoch": 7, "global_step": 1000, "pytorch-lightning_version": "1.1.8"}
    if hparams is not None:
        ckpt["hyper_parameters"] = hparams
    ckpt.update(extras or {})
    torch.save(ckpt, path)
    return path


def official_hparams(**pare) -> CfgNode:
    section = CfgNode(BACKBONE="hrnet_w32-conv", USE_KEYPOINT_ATTENTION=True, NUM_DECONV_LAYERS=2,
                      NUM_DECONV_FILTERS=128, USE_MEAN_CAMSHAPE=False, USE_MEAN_POSE=False)
    section.update(pare)
    return CfgNode(PARE=section, DATASET=CfgNode(USE_HEATMAPS="part_segm", IMG_RES=224, FOCAL_LENGTH=5000.0))


@pytest.fixture(scope="module")
def body():
    return load_body_model("open-body")


@pytest.fixture(scope="module")
def image(shared_data: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(shared_data / "football_player_a.jpg")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pare")
    return lightning_checkpoint(random_pare(), folder / "pare_w_3dpw_checkpoint.ckpt", official_hparams(),
                                {"callbacks": {"payload": Payload(folder / "PWNED")}})


@pytest.fixture(scope="module")
def pare(checkpoint: Path, body):
    with pytest.warns(UserWarning, match="betas are set to zero"):
        estimator = create_estimator("pare", body, "cpu", checkpoint=str(checkpoint), tile_scales=(0.0,))
    yield estimator
    estimator.close()


# ---------------------------------------------------------------- network


def test_state_dict_matches_the_official_listing() -> None:
    net = PARE()
    assert keys_of(net) == listing("pare_hrnet32_core_assumed_cfg.txt")
    backbone = sum(p.numel() for p in net.backbone.parameters())
    assert backbone == pytest.approx(31.4e6, rel=0.01)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(32.9e6, rel=0.01)


def test_head_shapes_and_part_attention() -> None:
    head = random_pare().head.eval()  # the full net runs in the estimator tests; the head alone is cheap
    with torch.inference_mode():
        out = head(torch.randn(2, 480, 56, 56))
    assert out["pred_pose"].shape == (2, 24, 3, 3) and out["pred_segm_mask"].shape == (2, 25, 56, 56)
    assert out["pred_cam"].shape == (2, 3) and out["pred_shape"].shape == (2, 10)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    assert torch.allclose(out["pred_pose"] @ out["pred_pose"].transpose(-1, -2), eye, atol=1e-5)
    first = torch.nn.functional.normalize(out["pred_pose_6d"].reshape(2, 24, 3, 2)[..., 0], dim=-1)
    assert torch.allclose(out["pred_pose"][..., 0], first, atol=1e-5)  # §6.3: column 1 = (x0, x2, x4) normalised
    # attention: a part whose logits peak at one pixel reads that pixel's feature
    feats = torch.randn(1, 4, 5, 5)
    logits = torch.full((1, 2, 5, 5), -1e4)
    logits[0, 0, 1, 3] = 0.0
    logits[0, 1] = 0.0  # uniform: the mean
    attended = part_attention(feats, logits)
    assert torch.allclose(attended[0, :, 0], feats[0, :, 1, 3])
    assert torch.allclose(attended[0, :, 1], feats.mean((2, 3))[0])
    # locally connected: a separate linear map per joint
    lc = LocallyConnected2d(3, 6, 24)
    x = torch.randn(2, 3, 24)
    assert torch.allclose(lc(x)[:, :, 5], x[:, :, 5] @ lc.weight[0, :, :, 5, 0, 0].T, atol=1e-6)


# ---------------------------------------------------------------- checkpoints


def test_lightning_checkpoint_loads_without_running_pickled_code(checkpoint: Path) -> None:
    state, hparams = read_checkpoint(checkpoint, restricted_fallback=True)
    assert not (checkpoint.parent / "PWNED").exists()
    assert set(state) == set(PARE().state_dict())  # model. stripped, smpl and loss_fn dropped
    assert hparams["PARE"]["BACKBONE"] == "hrnet_w32-conv" and hparams["DATASET"]["USE_HEATMAPS"] == "part_segm"
    with pytest.raises(WeightsError, match="cannot read checkpoint"):  # without the fallback: refused
        read_checkpoint(checkpoint, restricted_fallback=False)


def test_checkpoint_configuration_is_read_and_checked(tmp_path: Path, body) -> None:
    net = random_pare()
    on = lightning_checkpoint(net, tmp_path / "on.ckpt", official_hparams(USE_MEAN_CAMSHAPE=True))
    with pytest.warns(UserWarning):
        estimator = create_estimator("pare", body, "cpu", checkpoint=str(on))
    assert estimator.config == {"use_mean_pose": False, "use_mean_camshape": True}
    assert estimator.net.head.use_mean_camshape
    wrong = lightning_checkpoint(net, tmp_path / "wrong.ckpt", official_hparams(BACKBONE="resnet50"))
    with pytest.raises(EstimatorError, match="BACKBONE='resnet50'"):
        create_estimator("pare", body, "cpu", checkpoint=str(wrong))
    bare = lightning_checkpoint(net, tmp_path / "bare.ckpt")  # tensors only: plain weights_only, no config
    with pytest.warns(UserWarning, match="USE_MEAN_CAMSHAPE false"):
        estimator = create_estimator("pare", body, "cpu", checkpoint=str(bare))
    assert estimator.config_source == "default"


def test_install_verifies_the_layout_and_notes_the_licence(tmp_path: Path, checkpoint: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROUPE_WEIGHTS_DIR", str(tmp_path / "weights"))
    stored = install_checkpoint("pare-hrnet32-3dpw", checkpoint)
    assert stored.name == "pare_w_3dpw_checkpoint.ckpt" and stored.is_file()
    broken = {k: v for k, v in PARE().state_dict().items() if not k.startswith("head.cam_mlp")}
    torch.save({"state_dict": {f"model.{k}": v for k, v in broken.items()}}, tmp_path / "broken.ckpt")
    with pytest.raises(WeightsError, match="missing: head.cam_mlp"):
        install_checkpoint("pare-hrnet32", tmp_path / "broken.ckpt")
    for name in ("pare-hrnet32", "pare-hrnet32-3dpw"):
        assert "RESEARCH ONLY" in CHECKPOINTS[name].note and "non-commercial" in CHECKPOINTS[name].note


# ---------------------------------------------------------------- crops and camera


def test_crop_geometry() -> None:
    squares = square_boxes(np.array([[100.0, 50.0, 200.0, 250.0]]), 1.2)
    assert squares.tolist() == [[150.0, 150.0, 240.0]]
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[99:102, 179:182] = 255  # a dot at (180, 100)
    crop = crop_people(frame, squares)[0]
    ys, xs = np.nonzero(crop[..., 0] > 60)
    expected = crop_affine(squares[0]) @ np.array([180.5, 100.5, 1.0])
    assert [xs.mean() + 0.5, ys.mean() + 0.5] == pytest.approx(expected.tolist(), abs=1.0)


def _bodies(body, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    poses = torch.randn(n, 24, 3, generator=gen) * 0.2
    poses[:, 0] = torch.tensor([np.pi, 0.0, 0.0])  # upright in the OpenCV camera frame
    return BodyAdapter(body, "test").joints(poses, torch.zeros(n, body.num_betas))


def test_crop_translation_is_exact_when_the_cameras_coincide(body) -> None:
    joints = _bodies(body, 3, 0)
    cam = torch.tensor([[0.9, 0.05, 0.2], [0.5, -0.1, 0.0], [1.3, 0.0, -0.3]])
    squares = torch.tensor([[640.0, 360.0, 300.0], [200.0, 500.0, 150.0], [1000.0, 100.0, 400.0]])
    for i in range(3):
        f = CROP_FOCAL * squares[i, 2].item() / CROP_SIZE
        k = Camera(1280, 720, f, f, squares[i, 0].item(), squares[i, 1].item()).intrinsics_tensor()
        t = full_image_translation(joints[i:i + 1], cam[i:i + 1], squares[i:i + 1], k)[0]
        truth = [cam[i, 1], cam[i, 2], 2 * CROP_FOCAL / (CROP_SIZE * cam[i, 0])]
        assert t.tolist() == pytest.approx(torch.stack(truth).tolist(), rel=1e-4, abs=1e-4)


def test_crop_translation_recovers_a_placed_body(body) -> None:
    """Place bodies in the pipeline camera, project, crop, express them in PARE's crop camera, convert back."""
    joints = _bodies(body, 4, 1)
    truth = torch.tensor([[0.0, 0.2, 5.0], [-1.5, 0.3, 8.0], [2.0, -0.2, 12.0], [0.8, 0.5, 3.5]])
    camera = Camera.from_fov(1280, 720)
    k = camera.intrinsics_tensor(device=torch.device("cpu"))
    pixels = project(joints + truth[:, None], k)
    lo, hi = pixels.amin(1), pixels.amax(1)
    squares = torch.as_tensor(square_boxes(torch.cat([lo, hi], 1).numpy(), 1.2), dtype=torch.float32)
    # what a perfect network would output: the crop camera (s, tx, ty) that best explains the crop
    f_c = CROP_FOCAL * squares[:, 2] / CROP_SIZE
    crop_k = torch.stack([f_c, f_c, squares[:, 0], squares[:, 1]], dim=-1)
    t_c = solve_translation(joints, pixels, crop_k[:, None])
    cam = torch.stack([2 * CROP_FOCAL / (CROP_SIZE * t_c[:, 2]), t_c[:, 0], t_c[:, 1]], dim=-1)
    seen = crop_camera_pixels(joints, cam, squares)  # near-orthographic (f = 5000 at 224): not exactly `pixels`
    extent = (hi - lo).amax(-1)
    back = full_image_translation(joints, cam, squares, k)
    assert back.numpy() == pytest.approx(truth.numpy(), rel=0.02, abs=0.01)
    reprojected = project(joints + back[:, None], k)
    assert torch.all((reprojected - seen).norm(dim=-1).mean(-1) < 0.03 * extent)
    closed = closed_form_translation(cam, squares, k)  # the demo's closed form: close, not exact
    assert closed.numpy() == pytest.approx(truth.numpy(), rel=0.08, abs=0.1)


# ---------------------------------------------------------------- estimator


def test_pare_end_to_end_on_a_real_image(pare, body, image: np.ndarray) -> None:
    camera = Camera.from_fov(image.shape[1], image.shape[0])
    people = pare.estimate([image], camera)
    assert len(people) == 1 and len(people[0]) >= 1
    for person in people[0]:
        assert person.poses.shape == (24, 3) and np.isfinite(person.poses).all()
        assert person.betas.shape == (body.num_betas,) and np.all(person.betas == 0)  # open body
        assert person.transl[2] > 0 and 0 <= person.confidence <= 1
        assert person.mask is not None and person.mask.shape == image.shape[:2]
        assert person.extras["keypoints2d"].shape == (33, 2) and person.extras["keypoint_layout"] == "mediapipe33"
        posed = body(torch.as_tensor(person.poses)[None], transl=torch.as_tensor(person.transl)[None]).joints[0]
        assert camera.project(posed.numpy()) == pytest.approx(person.joints2d, abs=1e-2)
        # the pipeline camera shows the body where the network's crop camera put it
        local = posed - posed.new_tensor(person.transl)
        seen = crop_camera_pixels(local[None].float(), torch.as_tensor(person.extras["pred_cam"])[None],
                                  torch.as_tensor(person.extras["crop_box"])[None])[0].numpy()
        extent = np.ptp(seen, axis=0).max()  # equal up to the two cameras' perspective difference
        assert np.linalg.norm(person.joints2d - seen, axis=-1).mean() < 0.03 * extent
        cx, cy, side = person.extras["crop_box"]
        assert abs(person.joints2d[:, 0].mean() - cx) < side / 2 and abs(person.joints2d[:, 1].mean() - cy) < side / 2


def test_all_crops_of_a_batch_go_through_one_forward(pare, image: np.ndarray) -> None:
    camera = Camera.from_fov(image.shape[1], image.shape[0])
    boxes = [np.array([[200.0, 60, 500, 570]]), np.array([[300.0, 100, 420, 400]])]
    calls = []
    hook = pare.net.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        together = pare.estimate_boxes([image, image[:, ::-1].copy()], boxes, camera)
        assert calls == [2]
        alone = pare.estimate_boxes([image[:, ::-1].copy()], boxes[1:], camera)
    finally:
        hook.remove()
    assert [len(f) for f in together] == [1, 1]
    assert together[1][0].poses == pytest.approx(alone[0][0].poses, abs=1e-4)
    assert together[1][0].transl == pytest.approx(alone[0][0].transl, abs=1e-4)


def test_global_orientation_rotates_with_the_network(pare, body) -> None:
    """Decoding: the network's rotation matrices come back as the same rotations (axis-angle)."""
    gen = torch.Generator().manual_seed(3)
    rotmats = axis_angle_to_matrix(torch.randn(2, 24, 3, generator=gen))
    out = pare.people(rotmats, torch.tensor([[0.9, 0.0, 0.0]] * 2), torch.zeros(2, 10),
                      torch.tensor([[640.0, 360.0, 400.0]] * 2), Camera.from_fov(1280, 720))
    assert torch.allclose(axis_angle_to_matrix(out["poses"]), rotmats, atol=1e-5) and out["valid"].all()
