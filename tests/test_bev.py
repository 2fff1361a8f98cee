"""BEV: 3D centre parsing, the camera conversion, and the estimator end to end on a real image with a plain
(simple_romp BEV.pth layout) checkpoint of random weights."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.body import load_body_model
from backend.camera import Camera
from backend.estimators import create_estimator
from backend.estimators.bev import bev_translation, to_pipeline_camera
from backend.estimators.centermaps import parse_centers_3d
from backend.estimators.romp import camera_tensor, input_to_image, project
from backend.nets.bev import BEVv1

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
    k = camera_tensor(camera, torch.device("cpu"))
    moved = to_pipeline_camera(root, pads, k)
    expected_px = input_to_image(cams[:, None, [2, 1]], pads)[:, 0]
    assert project(moved, k).numpy() == pytest.approx(expected_px.numpy(), abs=1e-2)
    ratio = camera.fx / (443.4 * 1280 / 512)
    assert (moved[:, 2] / root[:, 2]).tolist() == pytest.approx([ratio, ratio], rel=1e-5)


def test_bev_end_to_end_on_a_real_image(tmp_path: Path, shared_data: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "BEV.pth"
    torch.save(BEVv1().state_dict(), path)
    body = load_body_model("open-body")
    estimator = create_estimator("bev", body, "cpu", checkpoint=str(path), center_thresh=-1e9, max_people=4)
    image = cv2.cvtColor(cv2.imread(str(shared_data / "street_steps_group.jpg")), cv2.COLOR_BGR2RGB)
    camera = Camera.from_fov(image.shape[1], image.shape[0])
    people = estimator.estimate([image], camera)
    assert len(people) == 1 and 1 <= len(people[0]) <= 4
    for person in people[0]:
        assert person.poses.shape == (24, 3) and person.betas.shape == (body.num_betas,)
        assert person.transl[2] > -10 and np.isfinite(person.transl).all()
        posed = body(torch.as_tensor(person.poses)[None], transl=torch.as_tensor(person.transl)[None]).joints[0]
        assert camera.project(posed.numpy()) == pytest.approx(person.joints2d, rel=1e-3, abs=1e-2)
        assert person.extras["smpl_betas"].shape == (10,) and np.isfinite(person.extras["age"])
