"""The mediapipe-fit estimator on real footage: people found, fitted joints on each person, depth order, empty
images, video warm start. Uses the real MediaPipe models bundled in the wheel and the shared test photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.estimators.base import EstimatorError, PersonEstimate
from backend.estimators.mediapipe_fit import MediapipeFitEstimator
from backend.fitting.depth_order import _dilate
from backend.geometry.camera import Camera

pytestmark = pytest.mark.slow  # end-to-end on real footage with the real MediaPipe models

# Torso and limb joints (no hands, feet, collars): the ones whose image position a mask can confirm.
BODY_JOINTS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 18, 19, 20, 21]


@pytest.fixture(scope="module")
def estimator(tmp_path_factory: pytest.TempPathFactory):
    # Module fixtures run before conftest's per-test cache isolation: point the cache at the same folder here.
    from backend.body import load_body_model

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TROUPE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "troupe-cache"))
        found = MediapipeFitEstimator(load_body_model("open-body"))
        yield found
        found.close()


def _image(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _frames(path: Path, start: int, count: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for _ in range(count):
        ok, bgr = capture.read()
        assert ok, f"{path} frame {start + len(frames)}"
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def _run(estimator: MediapipeFitEstimator, image: np.ndarray) -> list[PersonEstimate]:
    estimator.reset()  # unrelated images: no warm start from the previous test
    return estimator.estimate([image], Camera.from_fov(image.shape[1], image.shape[0]))[0]


@pytest.fixture(scope="module")
def street(estimator, shared_data: Path) -> list[PersonEstimate]:
    return _run(estimator, _image(shared_data / "street_steps_group.jpg"))


@pytest.fixture(scope="module")
def football(estimator, shared_data: Path) -> list[PersonEstimate]:
    return _run(estimator, _image(shared_data / "football_player_a.jpg"))


def test_people_are_found(street: list[PersonEstimate], football: list[PersonEstimate]) -> None:
    # About 12 people sit on the steps (two are mostly hidden); two players are in full view in football_a.
    assert len(street) >= 8
    assert len(football) >= 2
    for person in street + football:
        assert person.poses.shape == (24, 3) and person.transl.shape == (3,) and person.joints2d.shape == (24, 2)
        assert np.isfinite(person.poses).all() and np.isfinite(person.transl).all()
        assert 0.0 < person.confidence <= 1.0 and person.mask.dtype == bool


def _fraction_on_mask(person: PersonEstimate) -> float:
    """Share of the torso and limb joints that project into the person's mask dilated by 5% of its size."""
    size = max(person.bbox[2] - person.bbox[0], person.bbox[3] - person.bbox[1])
    mask = _dilate(person.mask, max(2, int(0.05 * size)))
    points = np.round(person.joints2d[BODY_JOINTS]).astype(int)
    height, width = mask.shape
    ok = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    inside = np.zeros(len(points), bool)
    inside[ok] = mask[points[ok, 1], points[ok, 0]]
    return float(inside.mean())


@pytest.mark.parametrize("photo", ["street", "football"])
def test_fitted_joints_lie_on_their_person(photo: str, request: pytest.FixtureRequest) -> None:
    people = request.getfixturevalue(photo)
    fractions = np.array([_fraction_on_mask(p) for p in people])
    assert fractions.min() >= 0.6, fractions
    assert np.median(fractions) >= 0.9, fractions
    assert np.median([p.extras["reprojection_px"] for p in people]) < 15.0


def _find(people: list[PersonEstimate], box: tuple[float, float, float, float]) -> PersonEstimate:
    def iou(a: np.ndarray) -> float:
        inter = np.clip(np.minimum(a[2:], box[2:]) - np.maximum(a[:2], box[:2]), 0, None).prod()
        union = np.prod(a[2:] - a[:2]) + np.prod(np.subtract(box[2:], box[:2])) - inter
        return float(inter / union)

    best = max(people, key=lambda p: iou(p.bbox))
    assert iou(best.bbox) > 0.4, f"nobody found at {box}"
    return best


def test_the_occluder_is_nearer(estimator, shared_data: Path) -> None:
    """football_dribble frame 60: Alonso (no. 14) runs in front of Ramos (no. 4), hiding most of his body; only
    Ramos's head, an arm and a leg show. The boxes are hand annotations of what is seen of each (pixels)."""
    frame = _frames(shared_data / "football_dribble.mp4", 60, 1)[0]
    people = _run(estimator, frame)
    front = _find(people, (375, 250, 525, 700))
    back = _find(people, (345, 200, 460, 540))
    assert front is not back
    assert (front.mask & back.mask).sum() > 200  # the masks do overlap: an occluding pair
    assert back.transl[2] - front.transl[2] > 0.5  # metres; transl's depth is the pelvis depth up to ~2 cm


def test_people_higher_up_the_steps_are_farther(street: list[PersonEstimate]) -> None:
    """On the steps, whoever sits higher in the image sits farther back: depth follows the feet's image row."""
    from scipy.stats import spearmanr

    feet = [p.extras["keypoints2d"][27:33, 1].max() for p in street]
    depth = [p.transl[2] for p in street]
    assert spearmanr(depth, feet).correlation < -0.7


def test_images_without_people_give_empty_results(estimator, shared_data: Path) -> None:
    gradient = np.broadcast_to(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (360, 640, 3)).copy()
    grass = np.ascontiguousarray(_image(shared_data / "football_player_a.jpg")[560:720, 0:300])
    estimator.reset()
    assert estimator.estimate([gradient], Camera.from_fov(640, 360)) == [[]]
    assert _run(estimator, grass) == []


def test_video_frames_are_warm_started(estimator, shared_data: Path) -> None:
    frames = _frames(shared_data / "football_dribble.mp4", 0, 3)
    camera = Camera.from_fov(frames[0].shape[1], frames[0].shape[0])
    estimator.reset()
    first = estimator.estimate(frames[:1], camera)[0]
    later = estimator.estimate(frames[1:], camera)
    assert first and all(later)
    assert not any(p.extras["warm_start"] for p in first)
    assert all(p.extras["warm_start"] for people in later for p in people)
    for person in later[-1]:  # a tracked person barely moves in depth over two frames
        nearest = min(first, key=lambda p: np.abs(p.bbox - person.bbox).sum())
        assert abs(person.transl[2] - nearest.transl[2]) < 0.15 * nearest.transl[2]


def test_bad_input_and_options_raise_estimator_errors(estimator) -> None:
    with pytest.raises(EstimatorError, match="RGB uint8"):
        estimator.estimate([np.zeros((64, 64), np.uint8)], Camera.from_fov(64, 64))
    with pytest.raises(EstimatorError, match="unknown options"):
        MediapipeFitEstimator(None, no_such_option=1)
