"""A person hidden for 20 frames in a real clip: the result has no rows while they are hidden (no body guessed
across the gap), every row it has is observed, and the same track carries on after the gap. The occluder is a
panel that slides in front of the dancer and away again, as someone walking past would. The dancer is the one
colourful thing in her plain studio, so her vanishing moves the colour histogram like a cut: shot-cut detection
(which rightly ends every track) is off here, to test the gap alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the whole pipeline on 48 real frames

HIDDEN = range(16, 36)


def _clip_with_an_occluder(shared_data: Path, folder: Path) -> Path:
    """48 frames of the dancer (640 x 360) as an image folder: a panel slides in from the left (frames 1-15),
    covers her entirely (frames 16-35) and slides out to the right (from frame 36)."""
    import cv2

    capture = cv2.VideoCapture(str(shared_data / "dancer_1080p.mp4"))
    folder.mkdir()
    colour = None
    for index in range(48):
        ok, bgr = capture.read()
        assert ok
        frame = cv2.resize(bgr, (640, 360), interpolation=cv2.INTER_AREA)
        if colour is None:  # the backdrop's colour: the panel changes the picture as a person walking by does
            colour = np.median(frame.reshape(-1, 3), axis=0)
        left = _panel_left(index)
        frame[:, max(left, 0) : max(left + 320, 0)] = colour
        cv2.imwrite(str(folder / f"frame_{index:03d}.png"), frame)
    capture.release()
    return folder


def _panel_left(index: int) -> int:
    """Left edge of the 320 px panel: sliding in 32 px a frame to x = 160 (covering 160-480), staying, sliding
    off; at walking speed, so the footage changes gradually, not like a cut."""
    if index < HIDDEN.start:
        return 160 - (HIDDEN.start - index) * 32
    if index < HIDDEN.stop:
        return 160
    return 160 + (index - HIDDEN.stop + 1) * 32


def test_a_long_gap_stays_empty_and_the_track_resumes(shared_data: Path, tmp_path: Path) -> None:
    from backend.pipeline import ReconstructOptions, reconstruct
    from backend.result.contract import read_result

    clip = _clip_with_an_occluder(shared_data, tmp_path / "clip")
    summary = reconstruct(clip, tmp_path / "result.npz", ReconstructOptions(shot_cuts=False))
    data = read_result(tmp_path / "result.npz")
    assert summary.people == 1, summary
    frames = data["row_frame"]
    assert not set(HIDDEN) & set(frames.tolist()), sorted(set(HIDDEN) & set(frames.tolist()))
    assert frames.min() <= 2 and frames.max() >= 45  # seen before and after the gap, as one track
    assert data["observed"].all()
