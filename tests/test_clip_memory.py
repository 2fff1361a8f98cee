"""A clip's search remembers where nobody was found; on a pan those places move with the picture (measured by
phase correlation on real footage), and without one clear shift they are forgotten. A clip frame looks at a new
person box at its own scale only."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.detection import proposals as P
from backend.detection.clip import ClipPeopleFinder, _grey_thumbnail, picture_shift


@pytest.fixture(scope="module")
def frame(shared_data: Path) -> np.ndarray:
    """Frame 100 of the dribble clip (the stands and the pitch), RGB."""
    capture = cv2.VideoCapture(str(shared_data / "football_dribble.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _panned(frame: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Two views of ``frame``, the second with the picture moved by (dx, dy) pixels (the camera turned the other
    way); both 1120 x 600."""
    x0, y0 = 80, 60
    before = frame[y0 : y0 + 600, x0 : x0 + 1120]
    after = frame[y0 - dy : y0 - dy + 600, x0 - dx : x0 - dx + 1120]
    return np.ascontiguousarray(before), np.ascontiguousarray(after)


def test_the_pictures_shift_is_measured_and_an_unrelated_picture_has_none(frame: np.ndarray) -> None:
    for dx, dy in ((-40, 0), (24, -16), (0, 0)):
        before, after = _panned(frame, dx, dy)
        small_before, small_after = _grey_thumbnail(before), _grey_thumbnail(after)
        shift = picture_shift(small_before, small_after, before.shape[1] / small_before.shape[1])
        assert shift is not None
        np.testing.assert_allclose(shift, [dx, dy], atol=2.0)
    noise = np.random.default_rng(0).integers(0, 256, frame.shape, dtype=np.uint8)
    assert picture_shift(_grey_thumbnail(frame), _grey_thumbnail(noise)) is None
    portrait = np.ascontiguousarray(frame[:, :400])  # the next picture of a folder, of another shape
    assert picture_shift(_grey_thumbnail(frame), _grey_thumbnail(portrait)) is None


class _NoFinder:
    """The clip finder's picture following needs no people finder."""


def _place(x: float, y: float) -> P.Proposals:
    return P.Proposals(np.array([[x, y, 120.0, 0.0]]), np.array([P.PERSON]), np.array([0.4]),
                       np.full((1, 3), np.nan))


def test_places_where_nobody_was_found_move_with_the_picture(frame: np.ndarray) -> None:
    before, after = _panned(frame, -40, 8)
    clip = ClipPeopleFinder(_NoFinder())
    clip._follow_picture(before)
    clip._empty = [_place(600.0, 300.0)]
    clip._follow_picture(after)
    moved = clip._empty[0]
    np.testing.assert_allclose(moved.regions[0, :2], [560.0, 308.0], atol=2.0)
    assert P.coincides(_place(560.0, 308.0), 0, moved)
    assert not P.coincides(_place(600.0, 300.0), 0, moved)  # where it was is no longer known to be empty
    noise = np.random.default_rng(1).integers(0, 256, after.shape, dtype=np.uint8)
    clip._follow_picture(noise)  # no clear shift (a cut): nothing is known to be empty any more
    assert clip._empty == []


def test_a_clip_frame_looks_at_a_person_box_at_its_own_scale_only() -> None:
    box = _place(300.0, 200.0)
    every = P.attempts(box, [0], 16.0)
    own = P.attempts(box, [0], 16.0, box_scales=1)
    assert len(every) == 1 + len(P.PERSON_RETRIES)
    assert len(own) == 1
    np.testing.assert_allclose(own[0].region, every[0].region)

