"""The occlusion sensitivity map: a grey square slid over the image, the joint displacement per position, a PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.body import load_body_model
from backend.estimators.base import PersonEstimate
from backend.evaluation.occlusion import occlusion_map
from tests.test_pare import lightning_checkpoint, official_hparams, random_pare

pytestmark = pytest.mark.filterwarnings("ignore:.*betas are set to zero:UserWarning")


@pytest.fixture(scope="module")
def small_image(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = cv2.imread(str(shared_data / "football_player_a.jpg"))
    path = tmp_path_factory.mktemp("occ") / "small.png"
    cv2.imwrite(str(path), cv2.resize(image, (128, 96), interpolation=cv2.INTER_AREA))
    return path


def test_pare_occlusion_map(small_image: Path, tmp_path: Path) -> None:
    ckpt = lightning_checkpoint(random_pare(), tmp_path / "pare.ckpt", official_hparams())
    out = tmp_path / "maps" / "map.png"
    result = occlusion_map("pare", small_image, out, patch=16, stride=16, boxes=np.array([[56.0, 24, 72, 40]]),
                           estimator_options={"checkpoint": str(ckpt)})
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape == (96, 128, 3)
    assert result.grid.shape == (len(result.ys), len(result.xs)) == (6, 8) and result.people == 1
    assert result.grid.std() > 0 and np.all(np.isfinite(result.grid))
    assert result.grid[0, 0] == 0.0  # the patch misses the crop: nothing to change
    assert result.grid.max() > 0 and np.ptp(picture.reshape(-1, 3), axis=0).max() > 0


class ToyEstimator:
    """A whole-image estimator whose arm follows the brightness of the image's left half; lost when it is dark."""

    name = "toy"

    def estimate(self, frames, camera):
        out = []
        for frame in frames:
            left = frame[:, : frame.shape[1] // 2].mean() / 255.0
            if left < 0.05:
                out.append([])
                continue
            poses = np.zeros((24, 3), np.float32)
            poses[0] = [np.pi, 0, 0]
            poses[16] = [0, 0, 2.0 * left]
            joints2d = np.stack([np.linspace(20, 40, 24), np.linspace(10, 50, 24)], axis=1)
            out.append([PersonEstimate(poses, np.zeros(6, np.float32), np.array([0, 0, 3.0]), joints2d, 0.9)])
        return out

    def close(self):
        pass


def test_generic_estimator_map_and_lost_people(tmp_path: Path) -> None:
    image = np.full((40, 60, 3), 200, np.uint8)
    image[:, :30] = 20  # dark left half: a grey patch there brightens it
    path = tmp_path / "toy.png"
    cv2.imwrite(str(path), image)
    body = load_body_model("open-body")
    result = occlusion_map("toy", path, tmp_path / "toy_map.png", patch=10, stride=10, estimator=ToyEstimator(),
                           body=body)
    assert cv2.imread(str(tmp_path / "toy_map.png")).shape == (40, 60, 3)
    left, right = result.grid[:, : 3], result.grid[:, 3:]
    assert np.all(left > 0) and np.all(right == 0)  # only patches over the left half move the arm
    assert result.lost == 0
