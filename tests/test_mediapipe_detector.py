"""MediaPipe people detector: the task bundle from the wheel's models, tiles, de-duplication, empty images."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.estimators.base import EstimatorError
from backend.estimators.mediapipe_detector import (
    PoseDetections, PoseDetector, _MaskCrop, deduplicate, ensure_task_file, tile_grid,
)
from backend.paths import cache_dir


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory):
    # Module fixtures run before conftest's per-test cache isolation: point the cache at the same folder here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TROUPE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "troupe-cache"))
        found = PoseDetector()
        yield found
        found.close()


def test_task_file_is_assembled_once_inside_the_cache() -> None:
    path = ensure_task_file()
    assert path.parent == cache_dir() / "mediapipe"
    with zipfile.ZipFile(path) as bundle:
        assert sorted(bundle.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    stamp = path.stat().st_mtime_ns
    assert ensure_task_file() == path and path.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob("*.part"))


def test_missing_bundled_models_raise_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import mediapipe

    monkeypatch.setenv("TROUPE_CACHE_DIR", str(tmp_path / "empty-cache"))
    fake = tmp_path / "site-packages" / "mediapipe"
    fake.mkdir(parents=True)
    monkeypatch.setattr(mediapipe, "__file__", str(fake / "__init__.py"))
    with pytest.raises(EstimatorError, match="does not bundle its pose models"):
        ensure_task_file()


@pytest.mark.parametrize("width,height", [(1920, 1080), (720, 1280), (300, 300)])
def test_tiles_cover_the_image_at_every_scale(width: int, height: int) -> None:
    for scale in (1.0, 0.6, 0.4):
        covered = np.zeros((height, width), bool)
        for x0, y0, side in tile_grid(width, height, [scale]):
            assert 0 <= x0 and x0 + side <= width and 0 <= y0 and y0 + side <= height
            covered[y0 : y0 + side, x0 : x0 + side] = True
        assert covered.all()
    assert tile_grid(width, height, [0.0]) == [(0, 0, 0)]


def _fake(keypoints: np.ndarray, scores: list[float]) -> PoseDetections:
    n = len(keypoints)
    boxes = np.concatenate([keypoints.min(axis=1), keypoints.max(axis=1)], axis=1)
    return PoseDetections(keypoints, np.ones((n, 33)), np.ones((n, 33)), np.zeros((n, 33, 3)), np.array(scores),
                          boxes, None)


def _blob(x0: int, y0: int, x1: int, y1: int) -> _MaskCrop:
    return _MaskCrop(x0, y0, np.ones((y1 - y0, x1 - x0), bool))


def test_duplicates_merge_but_an_occluder_and_its_neighbour_stay_apart() -> None:
    rng = np.random.default_rng(0)
    person = np.stack([rng.uniform(100, 200, 33), rng.uniform(100, 400, 33)], axis=-1)
    neighbour = person + np.array([60.0, 10.0])  # boxes overlap a lot, landmarks and masks do not
    det = _fake(np.stack([person, person + 3.0, neighbour]), [0.9, 0.8, 0.7])
    masks = [_blob(100, 100, 200, 400), _blob(102, 102, 203, 403), _blob(205, 110, 260, 410)]
    assert deduplicate(det, masks) == [[0, 1], [2]]


def test_an_image_without_people_gives_no_detections(detector: PoseDetector) -> None:
    gradient = np.broadcast_to(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (360, 640, 3)).copy()
    found = detector.detect(gradient)
    assert len(found) == 0 and found.masks.shape == (0, 360, 640)
