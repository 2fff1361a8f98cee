"""The camera's motion and the world frame (backend/world): synthetic clips with a known camera path.

The clips are rendered by ``backend.evaluation.camera_clip``: a photo from ../shared/data seen by a camera that
pans, tilts and zooms about its centre, with the built-in body standing and walking in front of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.errors import OptionError
from backend.evaluation.camera_clip import ClipConfig, clip_result, load_photo, make_camera_clip, true_world_pelvis
from backend.options import check_options
from backend.result.contract import ResultFileError, read_result, validate, write_result
from backend.sources.shots import detect_cuts
from backend.world import CameraPath, path_of_frames
from backend.world.motion import FrameMotion, MotionSettings, RotationTracker
from backend.world.segments import spread_loop_corrections
from tests.camera_clip_cli import reconstruct_clip

ROTATION_BOUND_DEG = 0.2  # worst per-frame rotation error over the known-path clip (measured: 0.07)
ZOOM_BOUND = 0.003  # worst relative focal-length error


def _degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(Rotation.from_matrix(a @ np.swapaxes(b, 1, 2)).magnitude())


@pytest.fixture(scope="module")
def moving_clip(clip_photo, clip_body):
    return make_camera_clip(clip_photo, clip_body, ClipConfig(frames=90))


def test_known_pan_tilt_zoom_is_recovered_with_people_masked(moving_clip) -> None:
    clip = moving_clip
    path = path_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(len(clip.frames))])
    error = _degrees(path.rotations, clip.rotations)
    turned = np.degrees(Rotation.from_matrix(clip.rotations).magnitude())
    assert turned.max() > 10.0 and clip.zoom.max() > 1.3  # the clip really pans, tilts and zooms
    assert error.max() < ROTATION_BOUND_DEG, f"worst rotation error {error.max():.3f} deg"
    assert np.abs(path.zoom / clip.zoom - 1.0).max() < ZOOM_BOUND
    assert path.num_segments == 1 and path.moving


def test_a_pan_that_comes_back_closes_the_loop_on_its_first_frame(moving_clip) -> None:
    """The clip pans away and back to where it started: the keyframe that sees the first frame's view again is
    measured against it, so the chain's drift is gone at the end (measured: 0.0002 deg against 0.041 without)."""
    clip = moving_clip
    boxes = [clip.boxes(i) for i in range(len(clip.frames))]
    tracker = RotationTracker(clip.camera.width, clip.camera.height, clip.camera.fx,
                              (clip.camera.width / 2, clip.camera.height / 2))
    motions = [tracker.update(frame, people) for frame, people in zip(clip.frames, boxes)]
    assert any(motion.loop_frames == index for index, motion in enumerate(motions) if index > 60)  # on frame 0
    closed = path_of_frames(clip.frames, clip.camera.fx, boxes)
    chained = path_of_frames(clip.frames, clip.camera.fx, boxes, settings=MotionSettings(loop_anchors=0))
    closed_error, chained_error = (_degrees(path.rotations, clip.rotations) for path in (closed, chained))
    assert closed_error[-1] < 0.01 and closed_error[-1] < chained_error[-1] / 4
    assert closed_error.mean() < chained_error.mean()


def test_a_closure_that_would_turn_the_chain_too_far_is_not_taken(moving_clip) -> None:
    """The correction cap guards against a mismatched old keyframe: with it below every correction this clip's
    closures make, none is taken and the path is the chained one."""
    clip = moving_clip
    boxes = [clip.boxes(i) for i in range(len(clip.frames))]
    capped = path_of_frames(clip.frames, clip.camera.fx, boxes, settings=MotionSettings(loop_max_correction_deg=1e-6))
    chained = path_of_frames(clip.frames, clip.camera.fx, boxes, settings=MotionSettings(loop_anchors=0))
    assert np.array_equal(capped.rotations, chained.rotations) and np.array_equal(capped.zoom, chained.zoom)


def test_a_loop_correction_ramps_in_over_the_frames_before_it() -> None:
    """A 2 deg correction found at frame 20 on frame 0: frames 11-19 (window 10) turn by their share of it, in
    order, frame 20 keeps its closed camera, the rest are untouched; the zoom likewise."""
    correction = Rotation.from_euler("y", 2.0, degrees=True).as_matrix()
    frames = [FrameMotion(np.eye(3), 1.0, 50, index == 0, 0.0) for index in range(25)]
    frames[20] = FrameMotion(np.eye(3), 1.0, 50, False, 0.0, loop_frames=20, loop_correction=correction,
                             loop_zoom=1.1)
    rotations, zoom = np.tile(np.eye(3), (25, 1, 1)), np.ones(25)
    spread_loop_corrections(frames, rotations, zoom, window=10)
    turned = np.degrees(Rotation.from_matrix(rotations).magnitude())
    assert np.allclose(turned[11:20], 2.0 * np.arange(1, 10) / 10)
    assert np.allclose(turned[:11], 0.0) and np.allclose(turned[20:], 0.0)
    assert np.allclose(zoom[11:20], 1.1 ** (np.arange(1, 10) / 10)) and zoom[20] == 1.0


def test_a_crowd_filling_the_view_does_not_hide_the_pan(clip_body, shared_data: Path) -> None:
    """People's boxes over all but a strip at the edge (a crowd, a stand): the corners on them are used too (the
    people standing still are background to the camera; RANSAC drops the walking ones). Without: the strip pans
    out of view and the camera is read as still (15 degrees off at the end)."""
    clip = make_camera_clip(load_photo(shared_data / "group7_walk.jpg"), clip_body,
                            ClipConfig(frames=30, width=320, height=180))
    crowd = np.array([0.1 * clip.camera.width, 0.0, clip.camera.width, clip.camera.height])
    path = path_of_frames(clip.frames, clip.camera.fx, [[crowd, *clip.boxes(i)] for i in range(30)])
    turned = np.degrees(Rotation.from_matrix(clip.rotations).magnitude())
    assert turned.max() > 10.0
    assert _degrees(path.rotations, clip.rotations).max() < 0.25  # measured: 0.18


def test_the_rotation_and_zoom_fit_reaches_the_least_squares_optimum() -> None:
    """From a start off by half a degree and 5 %: exact correspondences give back the turn and zoom exactly, and
    noisy ones the minimum of the pixel error (no small turn or zoom change lowers it)."""
    from backend.world.motion import _reprojection, refine_rotation_zoom

    rng = np.random.default_rng(3)
    focal, truth = 500.0, Rotation.from_rotvec([0.03, -0.08, 0.02]).as_matrix()
    a = rng.uniform(-300, 300, (80, 2))
    turned = np.column_stack([a / focal, np.ones(80)]) @ truth.T
    b = 1.2 * focal * turned[:, :2] / turned[:, 2:3]
    start = Rotation.from_rotvec([0.005, 0.0, 0.0]).as_matrix() @ truth
    rotation, zoom = refine_rotation_zoom(a, b, focal, start, 1.2 * 1.05)
    assert _degrees(rotation[None], truth[None])[0] < 1e-8 and abs(zoom / 1.2 - 1) < 1e-10
    noisy = b + rng.normal(0, 1.0, b.shape)
    rotation, zoom = refine_rotation_zoom(a, noisy, focal, start, 1.2 * 1.05)
    rays = np.column_stack([a / focal, np.ones(80)])
    residual, jacobian = _reprojection(rays, noisy, focal, rotation, np.log(zoom))
    assert np.abs(jacobian.T @ residual).max() < 1e-6 * np.abs(jacobian).max() * np.abs(residual).max()


def test_static_clip_stays_static_while_people_walk(clip_photo, clip_body) -> None:
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=30, width=320, height=180, static=True))
    boxes = [clip.boxes(i) for i in range(len(clip.frames))]
    path = path_of_frames(clip.frames, clip.camera.fx, boxes)
    assert not path.moving and np.array_equal(path.rotations, np.tile(np.eye(3), (30, 1, 1)))
    assert np.array_equal(path.zoom, np.ones(30))
    measured = path_of_frames(clip.frames, clip.camera.fx, boxes, mode="moving")  # what auto snapped away
    assert measured.moving and _degrees(measured.rotations, clip.rotations).max() < 0.05


def test_clip_with_a_cut_gets_two_segments(clip_photo, clip_body, shared_data: Path) -> None:
    other = load_photo(shared_data / "group7_walk.jpg")
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=50, width=320, height=180, cut_at=25),
                            second_background=other)
    cuts = detect_cuts(clip.frames)
    assert cuts == [25]
    path = path_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(50)], new_segments=cuts)
    assert path.num_segments == 2 and list(np.flatnonzero(np.diff(path.segment))) == [24]
    assert np.allclose(path.rotations[25], np.eye(3))  # the second shot is its own reference
    assert _degrees(path.rotations, clip.rotations).max() < ROTATION_BOUND_DEG


def test_world_frame_puts_people_where_they_are(moving_clip, clip_body) -> None:
    clip = moving_clip
    path = path_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(len(clip.frames))])
    arrays = clip_result(clip, clip_body, path)
    validate(arrays)
    pelvis = arrays["world_transl"] + arrays["rest_joints"][arrays["row_track"], 0]
    error = np.linalg.norm(pelvis - true_world_pelvis(clip, clip_body), axis=1)
    assert error.mean() < 0.15, f"mean world position error {error.mean():.3f} m"
    assert arrays["camera_position"][0, 2] == pytest.approx(2.5, abs=0.25)  # floor 2.5 m below the camera
    standing = arrays["row_track"] == 0  # the first person stands still while the camera pans
    world_speed = np.linalg.norm(np.diff(pelvis[standing], axis=0), axis=1).mean() * 30.0
    camera_speed = np.linalg.norm(np.diff(arrays["transl"][standing], axis=0), axis=1).mean() * 30.0
    assert world_speed < 0.05 < 0.5 < camera_speed, (world_speed, camera_speed)


def _world_pixels(arrays: dict, body) -> np.ndarray:
    """Every row's joints in the world seen through its frame's animated camera (pixels)."""
    import torch

    poses = arrays.get("world_poses", arrays["poses"]).copy()
    poses[:, 0] = arrays["world_orient"]
    track, frame = arrays["row_track"], arrays["row_frame"]
    with torch.no_grad():
        joints = body(torch.as_tensor(poses), torch.as_tensor(arrays["betas"][track]),
                      torch.as_tensor(arrays["world_transl"])).joints.numpy().astype(np.float64)
    camera = np.einsum("nij,nkj->nki", arrays["camera_rotation"][frame], joints - arrays["camera_position"][frame,
                                                                                                         None])
    return arrays["camera_focal"][frame, None] * camera[..., :2] / camera[..., 2:] + arrays["principal_point"]


def test_under_a_zoom_fitted_people_are_refitted_onto_their_2d_joints_regressed_ones_keep_their_pose(
        moving_clip, clip_body) -> None:
    """A fitted body meets its joints2d through the zooming camera; a regressed one keeps its pose, lands on the
    picture, and its joints2d (the first lens's projection) is what misses (README: A moving camera)."""
    clip = moving_clip
    path = path_of_frames(clip.frames, clip.camera.fx, [clip.boxes(i) for i in range(len(clip.frames))])
    picture = np.stack([truth["joints2d"] for people in clip.people for truth in people])
    zoomed = clip.zoom[np.repeat(np.arange(len(clip.frames)), len(clip.people[0]))] > 1.2
    fitted = clip_result(clip, clip_body, path, fitted=True)
    validate(fitted)
    landed = _world_pixels(fitted, clip_body)[zoomed]
    assert np.abs(landed - fitted["joints2d"][zoomed]).max() < 1.5
    assert np.abs(landed - picture[zoomed]).max() < 1.5
    regressed = clip_result(clip, clip_body, path)
    assert "world_poses" not in regressed
    landed = _world_pixels(regressed, clip_body)[zoomed]
    assert np.abs(landed - picture[zoomed]).max() < 1.5
    assert np.abs(regressed["joints2d"][zoomed] - picture[zoomed]).max() > 5.0  # what a fixed lens costs


def test_result_without_camera_keys_still_loads_and_partial_camera_keys_do_not(moving_clip, clip_body,
                                                                                tmp_path: Path) -> None:
    arrays = clip_result(moving_clip, clip_body, CameraPath.still(len(moving_clip.frames)))
    camera_keys = [k for k in arrays if k.startswith(("camera_", "world_", "segment_"))]
    old = {k: v for k, v in arrays.items() if k not in camera_keys}
    write_result(tmp_path / "old.npz", old)
    assert "camera_rotation" not in read_result(tmp_path / "old.npz")
    with pytest.raises(ResultFileError, match="lacks camera_focal"):
        write_result(tmp_path / "partial.npz", {**old, **{k: arrays[k] for k in camera_keys if k != "camera_focal"}})
    sheared = arrays["camera_rotation"].copy()
    sheared[3, 0, 1] += 0.1
    with pytest.raises(ResultFileError, match="not a rotation"):
        validate({**arrays, "camera_rotation": sheared})
    assert not (tmp_path / "partial.npz").exists()
    with pytest.raises(ResultFileError, match="world_poses"):
        validate({**old, "world_poses": old["poses"]})


def test_camera_option_is_checked_before_any_work() -> None:
    assert check_options({"camera": "moving"}) == {"camera": "moving"}
    with pytest.raises(OptionError, match="camera"):
        check_options({"camera": "wobbly"})


@pytest.mark.slow
def test_reconstruct_a_panning_clip_with_a_cut_writes_the_camera(clip_photo, clip_body, shared_data: Path,
                                                                  tmp_path: Path) -> None:
    """The command line, end to end, on a synthetic video file: two segments, the known path recovered."""
    other = load_photo(shared_data / "group7_walk.jpg")
    clip = make_camera_clip(clip_photo, clip_body, ClipConfig(frames=40, cut_at=20, people=2),
                            second_background=other)
    data, _ = reconstruct_clip(clip, tmp_path, "--fov", "50", "--no-coherence")  # people's refinement: no part here
    # a segment starts at every cut the shot detector reports (on this compressed video it also reports a false
    # cut at frame 24, a few frames into the second shot), and the real cut is one of them
    starts = [int(c) for c in data["shot_cuts"]]
    assert 20 in starts
    assert list(np.flatnonzero(np.diff(data["camera_segment"])) + 1) == starts
    assert not data["segment_static"].any()
    # world -> camera per frame; relative to each segment's first frame it is the clip's known path
    first = np.array([max([0] + [c for c in starts if c <= frame]) for frame in range(40)])
    relative = data["camera_rotation"] @ np.swapaxes(data["camera_rotation"][first], 1, 2)
    truth = clip.rotations @ np.swapaxes(clip.rotations[first], 1, 2)
    assert _degrees(relative, truth).max() < 0.5  # compressed video: a looser bound than on raw frames
    zoom = clip.zoom / clip.zoom[first]
    assert np.allclose(data["camera_focal"][:, 0] / data["focal_length"][0], zoom, rtol=0.01)
    assert "camera_focal_estimate" not in data  # the user gave the lens: nothing to suggest
