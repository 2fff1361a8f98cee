"""Shot cuts on real images: cuts between different shots are found, a slow pan is not cut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from backend.sources.frames import read_image
from backend.sources.shots import detect_cuts

SIZE = (640, 360)


@pytest.fixture(scope="module")
def images(shared_data) -> dict[str, np.ndarray]:
    names = ("football_player_a.jpg", "football_player_b.jpg", "street_steps_group.jpg")
    return {name: read_image(shared_data / name) for name in names}


def _jittered(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame of a video: a slightly shifted, noisy copy."""
    dx, dy = rng.integers(-3, 4, size=2)
    shifted = np.roll(image, (int(dy), int(dx)), axis=(0, 1)).astype(np.int16)
    return np.clip(shifted + rng.integers(-6, 7, size=image.shape), 0, 255).astype(np.uint8)


def test_cuts_between_alternating_shots_are_found(images):
    rng = np.random.default_rng(0)
    shots = [cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA) for img in images.values()]
    order = [0, 1, 0, 2, 1, 2]  # includes football to football: both mostly green pitch
    frames = [_jittered(shots[k], rng) for k in order for _ in range(12)]
    assert detect_cuts(frames) == [12 * i for i in range(1, len(order))]


def test_a_slow_pan_and_zoom_over_one_image_has_no_cut(images):
    image = images["street_steps_group.jpg"]  # 1920x1080
    frames = []
    for step in range(150):
        x, width = 6 * step, 1000 - 2 * step  # pans right while zooming in
        crop = image[100 : 100 + width * 9 // 16, x : x + width]
        frames.append(cv2.resize(crop, SIZE, interpolation=cv2.INTER_AREA))
    assert detect_cuts(frames) == []


def test_the_dancer_video_has_no_cut(shared_data):
    capture = cv2.VideoCapture(str(shared_data / "dancer_1080p.mp4"))
    frames = []
    while len(frames) < 120:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)[:, :, ::-1])
    capture.release()
    assert len(frames) == 120 and detect_cuts(frames) == []


def test_a_picture_of_another_size_starts_a_shot(images):
    """A folder of pictures of mixed shapes: a crop of the same picture looks alike (no cut by its colours), but
    nothing measured on a frame of one size carries over to another."""
    image = cv2.resize(images["football_player_a.jpg"], SIZE, interpolation=cv2.INTER_AREA)
    portrait = np.ascontiguousarray(image[:, 140:500])
    assert detect_cuts([image, image, portrait, portrait, image]) == [2, 4]
