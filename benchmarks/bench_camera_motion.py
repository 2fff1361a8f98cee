"""The camera's motion and the world frame (issue 18): accuracy on a known path, and what it does to real footage.

    python benchmarks/bench_camera_motion.py [synthetic] [focal] [dribble] [refine] [--frames 300] [--dribble-end N]

- synthetic: a ``--frames`` clip rendered by ``backend.evaluation.camera_clip`` (soccer_crowd.jpg as the distant
  background, a camera panning 30 deg, tilting 6 deg and zooming 1.4x, three people, one standing): rotation error
  per frame (of the frame-to-frame rotation) and the drift (the absolute error against the first frame over the
  clip; with and without loop closure, in the same run), focal length error per frame, tracking time; people's
  world position error when the bodies are the truth seen through the first frame's fixed lens (a regressor
  without error; and with 5 % depth noise) or fitted onto the picture's joints through that lens (as the default
  estimator does), the standing person's speed in the world against the camera frame, and where people land in
  the zoomed frames.
- focal: the focal length recovered from the camera's turns (``backend.world.focal``) on the same path rendered
  through lenses of ``--focal-fovs`` degrees, each tracked with the default 55 deg guess, and on a static clip
  (where there must be none).
- dribble: ``python -m backend reconstruct``'s pipeline on football_dribble.mp4 (default estimator, ``--camera
  auto``), in this process: the share of the run time spent on the camera (ratio in the same run), each long
  track's median speed in the world and in the camera frame, and foot sliding: the speed of each person's lowest
  foot joint between consecutive frames where the same foot stays lowest, in the world (along the floor) and in the
  camera frame; and the focal length the camera's turns imply (``camera_focal_estimate``) against the default lens.
- refine: the rotation-and-zoom fit of ``backend.world.motion`` (closed-form Jacobian) against SciPy's
  ``least_squares`` with a numerical one (the code before it), in the same run: the dribble clip's first
  ``--dribble-end`` frames (120 by default) tracked each way, then the focal length from their keyframe pairs,
  alternately; seconds, the ratio, and how far the two results differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))

from backend.body import load_body_model  # noqa: E402
from backend.evaluation.camera_clip import ClipConfig, clip_result, load_photo, make_camera_clip, true_world_pelvis  # noqa: E402
from backend.geometry.camera import Camera  # noqa: E402
from backend.world import path_of_frames  # noqa: E402
from backend.world.focal import focal_of_frames, reprojection_rms  # noqa: E402
from backend.world.motion import MotionSettings, RotationTracker  # noqa: E402
from backend.world.refit import refit_through_lens  # noqa: E402

FEET = (10, 11)  # L_Foot, R_Foot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["synthetic", "focal", "dribble"])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--dribble-end", type=int, default=None, help="last frame of the dribble clip (all)")
    parser.add_argument("--keep", type=Path, help="also write the dribble result here")
    parser.add_argument("--result", type=Path, help="measure this dribble result instead of reconstructing it")
    parser.add_argument("--focal-fovs", default="20,40,55,70", help="true lenses (deg) of the synthetic focal check")
    args = parser.parse_args()
    body = load_body_model("open-body")
    if "synthetic" in args.parts:
        synthetic(body, args.frames)
    if "focal" in args.parts:
        synthetic_focal(body, args.frames, [float(f) for f in args.focal_fovs.split(",") if f])
    if "dribble" in args.parts:
        dribble(body, args.dribble_end, args.keep, args.result)
    if "refine" in args.parts:
        refine(args.dribble_end or 120)
    return 0


def _scipy_refine(ac, bc, focal, rotation, zoom):  # noqa: ANN001, ANN202 - the baseline, as it was
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    rays = np.column_stack([ac / focal, np.ones(len(ac))])

    def residuals(params: np.ndarray) -> np.ndarray:
        turned = rays @ Rotation.from_rotvec(params[:3]).as_matrix().T
        return (np.exp(params[3]) * focal * turned[:, :2] / turned[:, 2:3] - bc).ravel()

    start = np.concatenate([Rotation.from_matrix(rotation).as_rotvec(), [np.log(max(zoom, 1e-6))]])
    fitted = least_squares(residuals, start, method="lm", xtol=1e-10, ftol=1e-10).x
    return Rotation.from_rotvec(fitted[:3]).as_matrix(), float(np.exp(fitted[3]))


def refine(end: int) -> None:
    from unittest import mock

    from backend.sources.frames import open_source
    from backend.world import focal as focal_module, motion as motion_module
    from backend.world.focal import estimate_tracker_focal

    frames = [frame for chunk in open_source(DATA / "football_dribble.mp4", None, end).chunks(8) for _, frame in chunk]
    height, width = frames[0].shape[:2]
    seconds = {"closed form": [0.0, 0.0], "scipy": [0.0, 0.0]}
    results = {}
    for _ in range(3):  # alternately: these machines drift over minutes
        for name, fit in (("closed form", motion_module.refine_rotation_zoom), ("scipy", _scipy_refine)):
            with mock.patch.object(motion_module, "refine_rotation_zoom", fit), \
                    mock.patch.object(focal_module, "refine_rotation_zoom", fit):
                started = time.perf_counter()
                tracker = RotationTracker(width, height, 0.9 * width, (width / 2, height / 2))
                rotations = [tracker.update(frame).rotation for frame in frames]
                tracked = time.perf_counter()
                estimate = estimate_tracker_focal(tracker, width)
                seconds[name][0] += tracked - started
                seconds[name][1] += time.perf_counter() - tracked
                results[name] = (np.array(rotations), None if estimate is None else estimate.focal)
    (ours, our_focal), (theirs, their_focal) = results["closed form"], results["scipy"]
    print(f"refine: football_dribble.mp4 frames 0-{len(frames) - 1}, 3 alternating runs each")
    for part, index in (("tracking", 0), ("focal length from the pairs", 1)):
        a, b = seconds["closed form"][index], seconds["scipy"][index]
        print(f"  {part}: closed form {a:.2f} s, scipy {b:.2f} s: {b / a:.2f}x faster")
    print(f"  largest rotation difference {_degrees(ours, theirs).max():.2e} deg; focal {our_focal} against "
          f"{their_focal} px")


def _degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return np.degrees(Rotation.from_matrix(a @ np.swapaxes(b, -1, -2)).magnitude())


def synthetic(body, frames: int) -> None:
    clip = make_camera_clip(load_photo(DATA / "soccer_crowd.jpg"), body, ClipConfig(frames=frames))
    boxes = [clip.boxes(i) for i in range(frames)]
    started = time.perf_counter()
    path = path_of_frames(clip.frames, clip.camera.fx, boxes)
    tracking = (time.perf_counter() - started) / frames
    unmasked = path_of_frames(clip.frames, clip.camera.fx)
    started = time.perf_counter()
    chained = path_of_frames(clip.frames, clip.camera.fx, boxes, settings=MotionSettings(loop_anchors=0))
    chained_tracking = (time.perf_counter() - started) / frames
    step = lambda r: r[1:] @ np.swapaxes(r[:-1], 1, 2)  # noqa: E731
    print(f"synthetic clip: {frames} frames {clip.camera.width}x{clip.camera.height}, pan 30 deg, tilt 6 deg, "
          f"zoom 1.4x, 3 people (1 standing)")
    for name, estimate in (("people masked", path), ("people not masked", unmasked),
                           ("people masked, no loop closure", chained)):
        per_frame = _degrees(step(estimate.rotations), step(clip.rotations))
        absolute = _degrees(estimate.rotations, clip.rotations)
        zoom = 100 * np.abs(estimate.zoom / clip.zoom - 1)
        print(f"  {name}: rotation error per frame mean {per_frame.mean():.4f} max {per_frame.max():.4f} deg; "
              f"drift (absolute error) at frame {frames - 1}: {absolute[-1]:.4f} deg, mean {absolute.mean():.4f}, "
              f"max {absolute.max():.3f} deg; "
              f"focal length error per frame mean {zoom.mean():.3f} % max {zoom.max():.3f} % (true zoom "
              f"{clip.zoom.min():.2f}-{clip.zoom.max():.2f}x)")
    print(f"  tracking: {1000 * tracking:.1f} ms/frame ({1000 * chained_tracking:.1f} without loop closure, "
          f"{tracking / chained_tracking:.2f}x)")
    truth = true_world_pelvis(clip, body)
    for fitted, noise in ((False, 0.0), (False, 0.05), (True, 0.0)):
        started = time.perf_counter()
        arrays = clip_result(clip, body, path, depth_noise=noise, fitted=fitted)
        seconds = time.perf_counter() - started
        pelvis = arrays["world_transl"] + arrays["rest_joints"][arrays["row_track"], 0]
        error = np.linalg.norm(pelvis - truth, axis=1)
        standing = arrays["row_track"] == 0
        world = np.linalg.norm(np.diff(pelvis[standing][:, :2], axis=0), axis=1).mean() * 30
        camera = np.linalg.norm(np.diff(arrays["transl"][standing], axis=0), axis=1).mean() * 30
        kind = ("fitted onto the picture through the first lens (re-fitted under the zoom)" if fitted else
                "truth through the first lens")
        print(f"  world pelvis error (bodies: {kind}, depth noise {100 * noise:.0f} %; {seconds:.1f} s): "
              f"mean {error.mean():.3f} m, median {np.median(error):.3f} m; camera height "
              f"{arrays['camera_position'][0, 2]:.2f} m (true 2.50); standing person's speed world "
              f"{world:.3f} m/s, camera frame {camera:.3f} m/s")
        if noise == 0.0:
            _zoomed_reprojection(clip, body, arrays)


def synthetic_focal(body, frames: int, fovs: list[float]) -> None:
    """The focal length recovered on the known path through each true lens, tracked with the default guess."""
    photo = load_photo(DATA / "soccer_crowd.jpg")
    for fov in [*fovs, None]:
        config = ClipConfig(frames=frames, static=True) if fov is None else ClipConfig(frames=frames, fov_degrees=fov)
        clip = make_camera_clip(photo, body, config)
        guess = Camera.from_fov(clip.camera.width, clip.camera.height).fx
        started = time.perf_counter()
        estimate = focal_of_frames(clip.frames, guess, [clip.boxes(i) for i in range(frames)])
        seconds = time.perf_counter() - started
        truth = f"true {clip.camera.fx:.1f} px ({config.fov_degrees:g} deg)" + (", static" if config.static else "")
        if estimate is None:
            print(f"  focal: {truth}: none (not determined); tracking and estimate {seconds:.1f} s")
            continue
        print(f"  focal: {truth}: recovered {estimate.focal:.1f} px ({estimate.fov_degrees(clip.camera.width):.1f} "
              f"deg), error {100 * (estimate.focal / clip.camera.fx - 1):+.2f} % (stated +-{100 * estimate.spread:.2f} "
              f"%), largest turn {estimate.turn_deg:.1f} deg, {estimate.pairs} keyframe pairs; tracked with "
              f"{guess:.1f} px (55 deg), tracking and estimate {seconds:.1f} s")


def _project(points: np.ndarray, rotation: np.ndarray, centre: np.ndarray, focal: np.ndarray,
             principal: np.ndarray) -> np.ndarray:
    """World points (n, J, 3) through per-row cameras (world -> OpenCV rotation, centre, fx fy) -> pixels."""
    camera = np.einsum("nij,nkj->nki", rotation, points - centre[:, None])
    return focal[:, None] * camera[..., :2] / camera[..., 2:3] + principal


def _zoomed_reprojection(clip, body, arrays: dict[str, np.ndarray]) -> None:
    """Where the people land in zoomed frames (zoom over 1.2x): the world bodies through the animated camera,
    and a rigid re-fit (orientation and translation) through the frame's lens onto ``joints2d``,
    each against ``joints2d`` (the estimator's 2D, here the first lens's projection) and the picture's joints."""
    frame, track = arrays["row_frame"], arrays["row_track"]
    rows = np.flatnonzero(clip.zoom[frame] > 1.2)
    if not len(rows):
        return
    picture = np.stack([clip.people[frame[r]][track[r]]["joints2d"] for r in rows])
    joints2d = arrays["joints2d"][rows].astype(np.float64)
    poses = arrays["world_poses" if "world_poses" in arrays else "poses"][rows].copy()
    poses[:, 0] = arrays["world_orient"][rows]
    world = _joints(body, poses, arrays["betas"][track[rows]], arrays["world_transl"][rows])
    focal = arrays["camera_focal"][frame[rows]]
    principal = arrays["principal_point"]
    landed = _project(world, arrays["camera_rotation"][frame[rows]], arrays["camera_position"][frame[rows]], focal,
                      principal)
    # the rigid re-fit: the joint rotations held by a prior too stiff to bend them
    intrinsics = np.column_stack([focal, np.tile(principal, (len(rows), 1))])
    rigid_poses, rigid_transl = refit_through_lens(arrays["poses"][rows], arrays["rest_joints"][track[rows]],
                                                   arrays["parents"], joints2d, intrinsics, prior_px=1e5)
    rigid = _joints(body, rigid_poses, arrays["betas"][track[rows]], np.zeros((len(rows), 3))) + rigid_transl[:, None]
    refit = focal[:, None] * rigid[..., :2] / rigid[..., 2:3] + principal
    worst = lambda a, b: float(np.abs(a - b).max())  # noqa: E731
    print(f"  zoomed frames (over 1.2x, {len(rows)} rows): joints2d (first lens) is {worst(joints2d, picture):.2f} "
          f"px from the picture at worst; world bodies through the zooming camera: {worst(landed, joints2d):.2f} "
          f"px from joints2d, {worst(landed, picture):.2f} px from the picture; a rigid re-fit onto joints2d "
          f"through the frame's lens: {worst(refit, joints2d):.2f} px from joints2d, "
          f"{worst(refit, picture):.2f} px from the picture")


@torch.no_grad()
def _joints(body, poses: np.ndarray, betas: np.ndarray, transl: np.ndarray) -> np.ndarray:
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return body(as_t(poses), as_t(betas), as_t(transl)).joints.numpy().astype(np.float64)


def dribble(body, end: int | None, keep: Path | None = None, result: Path | None = None) -> None:
    from backend.pipeline import ReconstructOptions, reconstruct
    from backend.result import read_result

    if result is not None:
        data = read_result(result)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = keep or Path(tmp) / "dribble.npz"
            started = time.perf_counter()
            summary = reconstruct(DATA / "football_dribble.mp4", out, ReconstructOptions(frame_end=end,
                                                                                          camera="auto"))
            total = time.perf_counter() - started
            data = read_result(out)
        share = summary.camera_seconds / (total - summary.camera_seconds)
        print(f"football_dribble.mp4: {summary.frames} frames, {summary.people} people, {total:.1f} s; camera "
              f"{summary.camera_seconds:.2f} s = +{100 * share:.1f} % of the run without it (same run)")
    print(f"  segments: {len(data['segment_static'])} (static: {list(map(bool, data['segment_static']))})")
    _dribble_focal(data)
    _dribble_focal_profile(data, end)
    _dribble_motion(body, data)


def _dribble_focal(data: dict[str, np.ndarray]) -> None:
    longer = float(max(data["image_size"]))
    fov = lambda focal: np.degrees(2 * np.arctan(0.5 * longer / focal))  # noqa: E731
    used = float(data["focal_length"][0])
    if "camera_focal_estimate" not in data:
        print(f"  focal: none determined (lens used {used:.0f} px, {fov(used):.1f} deg)")
        return
    focal = float(data["camera_focal_estimate"])
    print(f"  focal: the camera's turns imply {focal:.0f} px = {fov(focal):.1f} deg across {longer:.0f} px, against "
          f"the default {used:.0f} px ({fov(used):.1f} deg): {focal / used:.2f}x")


def _dribble_focal_profile(data: dict[str, np.ndarray], end: int | None) -> None:
    """How flat the focal length's cost is on the clip: its frames tracked again (people's boxes from their
    ``joints2d``), the keyframe pairs' reprojection error at a few lenses."""
    from backend.sources.frames import open_source

    source = open_source(DATA / "football_dribble.mp4", None, end)
    info = source.info
    focal = float(data["focal_length"][0]) * info.scale
    tracker = RotationTracker(info.width, info.height, focal, (info.width / 2, info.height / 2))
    cuts, frame_rows = set(int(c) for c in data["shot_cuts"]), data["row_frame"]
    number, started = 0, time.perf_counter()
    for chunk in source.chunks(8):
        for _, frame in chunk:
            boxes = [np.concatenate([j.min(0), j.max(0)]) * info.scale for j in data["joints2d"][frame_rows == number]]
            tracker.update(frame, boxes, number in cuts)
            number += 1
    pairs = tracker.key_pairs()
    seconds = time.perf_counter() - started
    longer = max(info.width, info.height) * tracker.scale
    fovs = (2, 5, 10, 15, 20, 30, 40, 55)
    rms = reprojection_rms(pairs, [0.5 * longer / np.tan(np.radians(f / 2)) for f in fovs])
    inliers = np.median([len(p.key) for p in pairs])
    print(f"  focal cost: {len(pairs)} keyframe pairs kept over {number} frames ({inliers:.0f} inliers at the median;"
          f" decoding and tracking them again {seconds:.1f} s, what a pass before the estimators would cost);"
          f" reprojection rms (px at 640 wide) at " + ", ".join(f"{f} deg {r:.3f}" for f, r in zip(fovs, rms)))


def _window_speed(points: np.ndarray, frames: np.ndarray, fps: float, window: int) -> float:
    """Median speed over ``window``-frame spans inside runs of consecutive frames (depth jitter averages out)."""
    position = {int(f): p for f, p in zip(frames, points)}
    spans = [np.linalg.norm(position[f + window] - position[f]) for f in position if f + window in position]
    return float(np.median(spans)) * fps / window if spans else float("nan")


def _dribble_motion(body, data: dict[str, np.ndarray]) -> None:
    fps = float(data["fps"])
    track = data["row_track"]
    betas = data["betas"][track]
    camera_joints = _joints(body, data["poses"], betas, data["transl"])
    world_poses = data["world_poses" if "world_poses" in data else "poses"].copy()
    world_poses[:, 0] = data["world_orient"]
    world_joints = _joints(body, world_poses, betas, data["world_transl"])
    speeds, slides = [], {"world": [], "camera": [], "world_across": [], "camera_across": []}
    for t in np.unique(track):
        rows = np.flatnonzero((track == t) & data["observed"])
        rows = rows[np.argsort(data["row_frame"][rows])]
        consecutive = np.flatnonzero(np.diff(data["row_frame"][rows]) == 1)
        if len(consecutive) < 30:
            continue
        a, b = rows[consecutive], rows[consecutive + 1]
        world = np.median(np.linalg.norm(world_joints[b, 0, :2] - world_joints[a, 0, :2], axis=1)) * fps
        camera = np.median(np.linalg.norm(camera_joints[b, 0] - camera_joints[a, 0], axis=1)) * fps
        window = max(1, round(0.4 * fps))
        frames = data["row_frame"][rows]
        world_w = _window_speed(world_joints[rows, 0, :2], frames, fps, window)
        camera_w = _window_speed(camera_joints[rows, 0], frames, fps, window)
        speeds.append((world_w, camera_w, world, camera, int(data["track_id"][t]), len(rows)))
        lowest = np.array(FEET)[np.argmin(world_joints[:, FEET, 2], axis=1)]
        same = lowest[a] == lowest[b]
        foot_a, foot_b = lowest[a[same]], lowest[b[same]]
        slides["world"].append(np.linalg.norm(world_joints[b[same], foot_b, :2] - world_joints[a[same], foot_a, :2],
                                              axis=1))
        camera_step = camera_joints[b[same], foot_b] - camera_joints[a[same], foot_a]
        slides["camera"].append(np.linalg.norm(camera_step, axis=1))
        # across the line of sight only: monocular depth jitter moves a foot along its ray, a camera turn across it
        world_step = world_joints[b[same], foot_b] - world_joints[a[same], foot_a]
        world_step = np.einsum("nij,nj->ni", data["camera_rotation"][data["row_frame"][a[same]]], world_step)
        ray = camera_joints[a[same], foot_a]
        ray = ray / np.linalg.norm(ray, axis=1, keepdims=True)
        across = lambda v: np.linalg.norm(v - (v * ray).sum(1, keepdims=True) * ray, axis=1)  # noqa: E731
        slides["world_across"].append(across(world_step))
        slides["camera_across"].append(across(camera_step))
    for world_w, camera_w, world, camera, track_id, count in sorted(speeds):
        print(f"  track {track_id} ({count} rows): pelvis speed over 0.4 s world {world_w:.2f} m/s, camera frame "
              f"{camera_w:.2f} m/s; frame to frame world {world:.2f}, camera frame {camera:.2f} m/s")
    if speeds:
        world_w, camera_w, _, _, track_id, _ = min(speeds)
        print(f"  slowest player in the world (track {track_id}): {world_w:.2f} m/s over 0.4 s (camera frame "
              f"{camera_w:.2f} m/s)")
        slide_world = np.concatenate(slides["world"]).mean() * fps
        slide_camera = np.concatenate(slides["camera"]).mean() * fps
        median_world = np.median(np.concatenate(slides["world"])) * fps
        median_camera = np.median(np.concatenate(slides["camera"])) * fps
        print(f"  lowest-foot sliding: mean world {slide_world:.2f} m/s, camera frame {slide_camera:.2f} m/s, ratio "
              f"{slide_world / slide_camera:.2f}; median {median_world:.2f} / {median_camera:.2f} m/s, ratio "
              f"{median_world / median_camera:.2f} (same result)")
        world_across = np.concatenate(slides["world_across"]).mean() * fps
        camera_across = np.concatenate(slides["camera_across"]).mean() * fps
        print(f"  ... across the line of sight (depth jitter left out): world {world_across:.2f} m/s, camera frame "
              f"{camera_across:.2f} m/s, ratio {world_across / camera_across:.2f}")


if __name__ == "__main__":
    sys.exit(main())
