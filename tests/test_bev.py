"""BEV: 3D centre parsing, the camera conversion, the official post-processing (duplicate suppression on the 2D
projection, outlier removal) against a direct port of simple_romp's code and on planted centre peaks, and the
estimator end to end on a real image with a plain (simple_romp BEV.pth layout) checkpoint of random weights."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.body import load_body_model
from backend.estimators.bev import bev_translation, remove_outliers, suppress_duplicates, to_pipeline_camera
from backend.estimators.centermaps import parse_centers_3d
from backend.estimators.one_stage import input_to_image
from backend.estimators.registry import create_estimator
from backend.geometry.camera import Camera, project
from backend.nets.bev import DEPTH_LEVELS, MAP_SIZE, BEVv1

pytestmark = pytest.mark.filterwarnings("ignore:.*betas are set to zero:UserWarning")
TAN30 = math.tan(math.radians(30))


def test_parse_3d_finds_planted_peaks_exactly() -> None:
    maps = torch.rand(2, 64, 32, 32) * 0.05
    planted = {(0, 3, 10, 20): 0.9, (0, 40, 10, 20): 0.4, (1, 63, 31, 0): 0.2}
    for (b, z, y, x), v in planted.items():
        maps[b, z, y, x] = v
    maps[0, 5, 11, 19] = 0.5  # within 2 depth bins and 1 pixel of the 0.9 peak: suppressed
    batch_ids, zyx, scores = parse_centers_3d(maps, 0.08)
    found = {(int(b), *map(int, c)): float(s) for b, c, s in zip(batch_ids, zyx, scores)}
    assert found == pytest.approx(planted)


def test_bev_translation_and_pipeline_camera() -> None:
    cams = torch.tensor([[0.5, 0.2, -0.4], [0.05, -0.1, 0.3]])  # (s, y, x)
    root = bev_translation(cams, TAN30)
    assert root[:, 2].tolist() == pytest.approx((1 / (cams[:, 0] * TAN30 + 1e-3)).tolist())
    # The network's camera (f = 443.4 at 512) sees the root at the normalised input position (x, y).
    assert (443.4 * root[:, :2] / root[:, 2:] / 256).numpy() == pytest.approx(cams[:, [2, 1]].numpy(), abs=1e-4)
    pads = torch.tensor([[1280.0, 0, 280]] * 2)
    camera = Camera.from_fov(1280, 720, 40.0)
    k = camera.intrinsics_tensor(device=torch.device("cpu"))
    moved = to_pipeline_camera(root, pads, k)
    expected_px = input_to_image(cams[:, None, [2, 1]], pads)[:, 0]
    assert project(moved, k).numpy() == pytest.approx(expected_px.numpy(), abs=1e-2)
    ratio = camera.fx / (443.4 * 1280 / 512)
    assert (moved[:, 2] / root[:, 2]).tolist() == pytest.approx([ratio, ratio], rel=1e-5)


@pytest.fixture(scope="module")
def body():
    return load_body_model("open-body")


@pytest.fixture(scope="module")
def bev(tmp_path_factory: pytest.TempPathFactory, body):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bev") / "BEV.pth"
    torch.save(BEVv1().state_dict(), path)
    return create_estimator("bev", body, "cpu", checkpoint=str(path), center_thresh=-1e9, max_people=4)


def test_bev_end_to_end_on_a_real_image(bev, body, shared_data: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(shared_data / "street_steps_group.jpg")), cv2.COLOR_BGR2RGB)
    camera = Camera.from_fov(image.shape[1], image.shape[0])
    people = bev.estimate([image], camera)
    assert len(people) == 1 and 1 <= len(people[0]) <= 4
    for person in people[0]:
        assert person.poses.shape == (24, 3) and person.betas.shape == (body.num_betas,)
        assert person.transl[2] > -10 and np.isfinite(person.transl).all()
        posed = body(torch.as_tensor(person.poses)[None], transl=torch.as_tensor(person.transl)[None]).joints[0]
        assert camera.project(posed.numpy()) == pytest.approx(person.joints2d, rel=1e-3, abs=1e-2)
        assert person.extras["smpl_betas"].shape == (10,) and np.isfinite(person.extras["age"])


# ---------------------------------------------------------------- post-processing


def official_suppression(pj2d: torch.Tensor, cam: torch.Tensor, side: float, thresh: float = 20) -> torch.Tensor:
    """simple_romp/bev/post_parser.py ``suppressing_redundant_prediction_via_projection`` (one frame), as a mask."""
    n = len(pj2d)
    keep = torch.ones(n, dtype=torch.bool)
    if n == 1:
        return keep
    dist = torch.norm(pj2d.unsqueeze(1).repeat(1, n, 1, 1) - pj2d.unsqueeze(0).repeat(n, 1, 1, 1), p=2, dim=-1).mean(-1)
    ps = cam[:, 0] * 2
    ps1, ps2 = ps.unsqueeze(1).repeat(1, n), ps.unsqueeze(0).repeat(n, 1)
    normalized = dist / torch.where(ps1 > ps2, ps1, ps2)
    normalized[torch.triu(torch.ones_like(dist), diagonal=1) < 0.5] = 10000.0
    i, j = torch.where(normalized < thresh * side / 640)
    keep[torch.where(ps[i] < ps[j], i, j)] = False
    return keep


def official_outliers(trans: torch.Tensor, cam: torch.Tensor, relative_thresh: float,
                      scale_thresh: float = 0.25) -> torch.Tensor:
    """simple_romp/bev/post_parser.py ``remove_outlier`` (one frame), as a keep mask."""
    n = len(trans)
    if n < 3:
        return torch.ones(n, dtype=torch.bool)
    dist = torch.norm(trans.unsqueeze(1).repeat(1, n, 1) - trans.unsqueeze(0).repeat(n, 1, 1), p=2, dim=-1)
    mean_dist = torch.sort(dist).values[:, 1:-1].mean(1)
    relative = mean_dist / ((mean_dist.sum() - mean_dist) / (n - 1))
    return ~((relative > relative_thresh) & (cam[:, 0] < scale_thresh))


def test_batched_post_processing_matches_the_official_code_per_frame() -> None:
    gen = torch.Generator().manual_seed(3)
    counts = [0, 1, 2, 3, 7, 12]
    frame = torch.cat([torch.full((c,), f) for f, c in enumerate(counts)])[torch.randperm(sum(counts), generator=gen)]
    frame = frame.sort(stable=True).values  # batch-major, as the centre parser returns them
    n = len(frame)
    # People in clusters so that many pairs are near duplicates and some are far away.
    base = torch.randn(n, 24, 2, generator=gen) * 40 + torch.randint(0, 3, (n, 1, 1), generator=gen) * 300.0
    pj2d = base + torch.randn(n, 24, 2, generator=gen) * torch.rand(n, 1, 1, generator=gen) * 30
    cam = torch.cat([torch.rand(n, 1, generator=gen) * 0.6 + 0.01, torch.rand(n, 2, generator=gen) * 2 - 1], 1)
    side = torch.tensor([640.0, 1280, 1920, 720, 1280, 2560])[frame]
    trans = torch.randn(n, 3, generator=gen) * 2 + torch.tensor([0, 0, 8.0])
    trans[torch.rand(n, generator=gen) < 0.2] *= 15  # remote ones
    keep_nms = suppress_duplicates(frame, pj2d, cam[:, 0], side, len(counts))
    keep_out = remove_outliers(frame, trans, cam[:, 0], len(counts), 1.6)
    expected_nms, expected_out = [], []
    for f in range(len(counts)):
        sel = frame == f
        if sel.any():
            expected_nms.append(official_suppression(pj2d[sel], cam[sel], float(side[sel][0])))
            expected_out.append(official_outliers(trans[sel], cam[sel], 1.6))
    assert keep_nms.tolist() == torch.cat(expected_nms).tolist()
    assert keep_out.tolist() == torch.cat(expected_out).tolist()
    assert 0 < (~keep_nms).sum() < n - 2 and (~keep_out).sum() > 0  # both stages did something


class PlantedBEV(torch.nn.Module):
    """Stands in for the network: centre peaks planted at given (frame, z, y, x) with given cams (s, y, x); every
    person is upright with mean shape."""

    def __init__(self, peaks: list[tuple[int, int, int, int, float, tuple[float, float, float]]]) -> None:
        super().__init__()
        self.peaks = peaks

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        b = images.shape[0]
        center = torch.zeros(b, DEPTH_LEVELS, MAP_SIZE, MAP_SIZE)
        cams = torch.zeros(b, 3, DEPTH_LEVELS, MAP_SIZE, MAP_SIZE)
        for f, z, y, x, score, cam in self.peaks:
            center[f, z, y, x] = score
            cams[f, :, z, y, x] = torch.tensor(cam)
        return {"center_3d": center, "cam_3d": cams, "features": torch.zeros(b, 1, MAP_SIZE, MAP_SIZE)}

    def regress(self, features: torch.Tensor, cams: torch.Tensor, batch_ids: torch.Tensor) -> torch.Tensor:
        upright = torch.tensor([1.0, 0, 0, -1, 0, 0]).repeat(len(cams), 22)  # 6D: 180 degrees about x
        return torch.cat([cams, upright, torch.zeros(len(cams), 11)], dim=1)


def test_planted_duplicates_collapse_and_a_tiny_outlier_is_removed(bev) -> None:
    a, a_dup = (0.5, 0.0, -0.4), (0.46, 0.01, -0.4)  # the same person found twice: nearly the same 2D joints
    b, c = (0.4, 0.05, 0.35), (0.45, -0.05, 0.0)  # distinct people
    tiny = (0.02, -0.5, 0.8)  # ~79 m away among people at ~4 m: a false positive
    peaks = [  # (frame, z, y, x, score, cam); peaks far apart so the centre NMS keeps them all
        (0, 10, 64, 40, 0.9, a), (0, 10, 64, 50, 0.5, a_dup), (0, 12, 66, 100, 0.8, b),
        (0, 11, 62, 70, 0.7, c), (0, 60, 30, 120, 0.3, tiny),
        # frame 1: only the duplicate and the tiny person: neither is suppressed (other frame, fewer than 3 people)
        (1, 10, 64, 50, 0.5, a_dup), (1, 60, 30, 120, 0.3, tiny),
    ]
    estimator = copy.copy(bev)
    estimator.net, estimator.center_thresh, estimator.max_people = PlantedBEV(peaks), 0.08, 64
    frames = [np.zeros((720, 1280, 3), np.uint8)] * 2
    people = estimator.estimate(frames, Camera.from_fov(1280, 720))
    found = [sorted(tuple(round(float(v), 3) for v in p.extras["cam"]) for p in frame) for frame in people]
    assert found[0] == sorted([a, b, c])
    assert found[1] == sorted([a_dup, tiny])
    # Without the post-processing every planted peak comes out.
    estimator.nms_thresh, estimator.relative_scale_thresh = 0.0, math.inf
    assert [len(frame) for frame in estimator.estimate(frames, Camera.from_fov(1280, 720))] == [5, 2]
