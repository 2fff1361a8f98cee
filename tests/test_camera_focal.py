"""The absolute focal length from the camera's turns (backend/world/focal.py).

Keyframe pairs made from known rays (any turn, exact truth), the synthetic known-path clip rendered by
``backend.evaluation.camera_clip`` through a lens narrower than the tracker's 55 deg guess, and a static clip.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.evaluation.camera_clip import ClipConfig, make_camera_clip
from backend.geometry.camera import Camera
from backend.world.focal import estimate_focal, focal_of_frames
from backend.world.motion import KeyPair
from tests.camera_clip_cli import reconstruct_clip

PAIRS_BOUND = 0.02  # relative focal error from exact pairs with 0.3 px noise (measured: 0.1-0.7 %)
CLIP_BOUND = 0.03  # on the rendered known-path clip, 60 frames, a 30 deg lens tracked as 55 deg (measured 0.33 %)
FOCAL = 700.0


def _pairs(turns_deg: list[tuple[float, float, float]], zooms: list[float] | None = None, noise: float = 0.3,
           seed: int = 0) -> list[KeyPair]:
    """Keyframe pairs of a 640x360 camera of focal ``FOCAL`` turning by each rotation vector (degrees) and
    zooming by each factor in turn (each keyframe's focal: the zooms before it chained)."""
    rng = np.random.default_rng(seed)
    pairs, chain = [], 1.0
    for index, turn in enumerate(turns_deg):
        focal, zoom = FOCAL * chain, 1.0 if zooms is None else zooms[index]
        key = np.column_stack([rng.uniform(-320, 320, 400), rng.uniform(-180, 180, 400)])
        rays = np.column_stack([key / focal, np.ones(len(key))]) @ Rotation.from_rotvec(np.radians(turn)).as_matrix().T
        frame = zoom * focal * rays[:, :2] / rays[:, 2:3]
        seen = (np.abs(frame[:, 0]) < 320) & (np.abs(frame[:, 1]) < 180) & (rays[:, 2] > 0)
        key, frame = key[seen][:100], frame[seen][:100] + rng.normal(0.0, noise, (min(seen.sum(), 100), 2))
        pairs.append(KeyPair(key, frame, 0))
        chain *= zoom
    return pairs


@pytest.mark.parametrize("turns, zooms", [
    ([(0.0, 3.0, 0.0)], None),  # a 3 deg pan about one axis is enough
    ([(0.0, 10.0, 0.0)], None),
    ([(5.0, 0.0, 0.0)], None),  # a tilt alone
    ([(0.0, 8.0, 0.0), (2.0, -6.0, 0.0), (0.0, 8.0, 1.0)], [1.2, 1.1, 0.9]),  # turns and zooms, chained
], ids=["pan-3", "pan-10", "tilt-5", "pan-tilt-zoom"])
def test_focal_of_a_turning_camera_is_recovered(turns, zooms) -> None:
    estimate = estimate_focal(_pairs(turns, zooms), 640)
    assert estimate is not None
    assert abs(estimate.focal / FOCAL - 1) < PAIRS_BOUND
    assert estimate.spread < 0.02 and estimate.turn_deg > 2.0


@pytest.mark.parametrize("turns", [
    [(0.0, 0.0, 20.0)],  # a roll about the optical axis: H = R_z whatever the focal
    [(0.0, 0.3, 0.0)],  # too small a pan
    [(0.0, 0.0, 0.0)] * 3,  # a still camera
], ids=["roll-20", "pan-0.3", "still"])
def test_focal_is_not_claimed_when_the_motion_does_not_determine_it(turns) -> None:
    assert estimate_focal(_pairs(turns), 640) is None


def test_focal_of_the_known_path_clip_through_a_narrow_lens(clip_photo, clip_body) -> None:
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=60, fov_degrees=30.0))
    guess = Camera.from_fov(clip.camera.width, clip.camera.height).fx  # the default 55 deg lens
    estimate = focal_of_frames(clip.frames, guess, [clip.boxes(i) for i in range(60)])
    assert estimate is not None
    assert abs(estimate.focal / clip.camera.fx - 1) < CLIP_BOUND, f"{estimate.focal:.1f} vs {clip.camera.fx:.1f}"
    assert abs(estimate.fov_degrees(clip.camera.width) - 30.0) < 1.0


def test_static_clip_gives_no_focal(clip_photo, clip_body) -> None:
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=30, static=True))
    assert focal_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(30)]) is None


@pytest.mark.slow
def test_reconstruct_without_a_lens_reports_the_focal_the_pan_implies(clip_photo, clip_body, tmp_path: Path) -> None:
    """The command line on a panning video with no --fov: the estimate in the result and the note, while the
    lens used stays the default one."""
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=30, fov_degrees=35.0, people=2))
    data, proc = reconstruct_clip(clip, tmp_path, "--no-coherence")  # the people's refinement plays no part here
    assert np.allclose(data["focal_length"], Camera.from_fov(640, 360).fx)  # the default lens, unchanged
    assert abs(float(data["camera_focal_estimate"]) / clip.camera.fx - 1) < 0.05  # measured +0.25 % (mp4v)
    suggested = re.search(r"the camera's motion suggests --fov (\d+)", proc.stderr)
    assert suggested is not None and abs(int(suggested.group(1)) - 35) <= 1, proc.stderr  # measured 35
