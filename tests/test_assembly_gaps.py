"""Gaps in a track: short ones are bridged by interpolated rows flagged as not observed, longer ones stay empty
(the scene hides the person there). A body guessed across a long gap drifts off its person."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.body import load_body_model
from backend.estimators.base import PersonEstimate
from backend.geometry.camera import Camera
from backend.result.assembly import assemble_result
from backend.sources.frames import SourceInfo
from backend.tracking.smoothing import fill_short_gaps, filled_gap_frames
from backend.tracking.tracker import Track

FPS = 30.0


@pytest.fixture(scope="module")
def body():
    return load_body_model("open-body")


def _person(body, frame: int) -> PersonEstimate:
    poses = np.zeros((24, 3), np.float32)
    poses[0] = [np.pi, 0.0, 0.0]  # upright in the camera frame
    poses[18, 2] = 0.02 * frame  # an elbow bending over time
    transl = np.array([0.01 * frame, 0.3, 4.0], np.float32)
    return PersonEstimate(poses, np.zeros(body.num_betas, np.float32), transl, np.zeros((24, 2), np.float32), 0.9)


def test_short_gaps_are_filled_and_flagged_long_ones_are_left_empty(body) -> None:
    seen = [f for f in range(60) if not (10 <= f < 13) and not (30 <= f < 50)]  # gaps of 3 and 20 frames
    track = Track(0, seen, [_person(body, f) for f in seen])
    info = SourceInfo(Path("clip.mp4"), "video", 640, 480, FPS, 60, 0)
    result = assemble_result([track], body, Camera.from_fov(640, 480), info, "test", 60)
    frames, observed = result["row_frame"], result["observed"]
    assert filled_gap_frames(FPS) >= 3
    assert set(frames.tolist()) == set(range(60)) - set(range(30, 50))  # the 20-frame gap has no rows
    assert (~observed).sum() == 3 and set(frames[~observed].tolist()) == {10, 11, 12}
    assert (result["confidence"][~observed] == 0).all() and (result["confidence"][observed] > 0).all()
    # the bridged rows lie between their neighbours (linear motion: exactly)
    order = np.argsort(frames)
    transl, bridged = result["transl"][order], frames[order]
    at = {int(f): t for f, t in zip(bridged, transl)}
    np.testing.assert_allclose(at[11][0] - at[9][0], 2 * (at[10][0] - at[9][0]), atol=1e-4)


def test_images_and_filled_rows_round_trip_through_the_result_file(body, tmp_path: Path) -> None:
    from backend.result.contract import read_result, write_result

    info = SourceInfo(Path("photo.jpg"), "image", 640, 480, 0.0, 1, 0)
    result = assemble_result([Track(0, [0], [_person(body, 0)])], body, Camera.from_fov(640, 480), info, "t", 1)
    assert result["observed"].tolist() == [True]
    write_result(tmp_path / "r.npz", result)
    assert read_result(tmp_path / "r.npz")["observed"].dtype == bool


def test_rotations_are_bridged_on_the_shortest_arc() -> None:
    """An angle wrapping past pi between two rows is interpolated the short way, not backwards round."""
    poses = np.zeros((2, 24, 3))
    poses[0, 0] = [0.0, 0.0, np.pi - 0.1]
    poses[1, 0] = [0.0, 0.0, -(np.pi - 0.1)]  # the same axis, 0.2 rad further round
    frames, out, _, observed, _ = fill_short_gaps(np.array([0, 2]), poses, np.ones((2, 3)), 4)
    assert frames.tolist() == [0, 1, 2] and observed.tolist() == [True, False, True]
    assert np.linalg.norm(out[1, 0]) == pytest.approx(np.pi, abs=1e-6)  # half way: exactly pi
