"""Video over time: identities, smoothness, memory. Each part prints a figure against a baseline of the same run.

    python benchmarks/bench_temporal.py [tracking] [smoothing] [memory] [--frames 90] [--long 2000]

- tracking: synthetic people walking across each other (noisy 3D roots, missed and false detections, painted
  colour boxes as frames) with ground truth; identity switches, fragmentation and false tracks of the tracker
  with all cues against the same tracker without appearance (no frames).
- smoothing: the real default estimator on the first ``--frames`` of dancer_1080p.mp4, assembled without and
  with smoothing from the same tracks; mean 3D joint acceleration, median reprojection error against the
  MediaPipe 2D landmarks (10 limb joints, visible ones) and against the unsmoothed joints2d.
- memory: ``--long`` frames of football_dribble.mp4 (repeated by a generator) through shot cuts and tracking with
  a fake estimator that returns three people with full-size masks; tracemalloc peak against a 10x shorter run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
sys.path.insert(0, str(REPO_ROOT))

# SMPL joint -> MediaPipe pose landmark, for joints whose definitions agree (shoulders, elbows, wrists, knees, ankles).
SMPL_TO_MEDIAPIPE = {16: 11, 17: 12, 18: 13, 19: 14, 20: 15, 21: 16, 4: 25, 5: 26, 7: 27, 8: 28}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["tracking", "smoothing", "memory"])
    parser.add_argument("--frames", type=int, default=90, help="dancer frames for the smoothing part")
    parser.add_argument("--long", type=int, default=2000, help="frames for the memory part")
    parser.add_argument("--smoothness", type=float, default=None, help="default: the pipeline's default")
    args = parser.parse_args()
    os.environ.setdefault("TROUPE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "troupe-bench-cache"))
    for part in args.parts:
        {"tracking": bench_tracking, "smoothing": lambda: bench_smoothing(args.frames, args.smoothness),
         "memory": lambda: bench_memory(args.long)}[part]()  # fmt: skip
    return 0


# ----------------------------------------------------------------------------------------------- tracking


def bench_tracking(seeds: int = 5, people: int = 4, frames: int = 150) -> None:
    """Identity switches / fragmentation / false tracks over ``seeds`` synthetic crossing scenes."""
    from backend.tracking.tracker import Tracker, TrackerSettings

    totals = {"all cues": np.zeros(3, int), "no appearance": np.zeros(3, int)}
    for seed in range(seeds):
        scene = _crossing_scene(np.random.default_rng(seed), people, frames)
        for label, use_images in (("all cues", True), ("no appearance", False)):
            tracker = Tracker(TrackerSettings.for_fps(30.0))
            for frame, (estimates, image, _) in enumerate(scene):
                tracker.update(frame, estimates, image=image if use_images else None)
            totals[label] += _identity_errors(tracker.finished_tracks(is_clip=True), scene)
    print(f"tracking: {seeds} scenes x {people} people x {frames} frames, crossings, 5% missed, false detections")
    for label, (switches, fragments, false) in totals.items():
        print(f"  {label:14s} identity switches {switches:3d}  fragmentation {fragments:3d}  false tracks {false:3d}")


def _crossing_scene(rng: np.random.Generator, people: int, frames: int):
    """Per frame: (estimates, painted image, ground-truth person index per estimate, -1 = false detection)."""
    from backend.geometry.camera import Camera

    camera = Camera.from_fov(1280, 720)
    colours = rng.integers(40, 230, size=(people, 2, 3))  # shirt and shorts
    lanes = np.linspace(-2.5, 2.5, people)  # people enter apart and leave apart, crossing paths on the way
    start = np.stack([rng.permutation(lanes), np.zeros(people), rng.uniform(4, 9, people)], 1)
    end = np.stack([rng.permutation(lanes), np.zeros(people), rng.uniform(4, 9, people)], 1)
    scene = []
    for frame in range(frames):
        t = frame / (frames - 1)
        roots = start + (end - start) * t
        # Monocular errors: a little across the image, mostly along the viewing ray (depth scale, 4%).
        noisy = (roots + rng.normal(0, 0.015, (people, 3)) * [1, 1, 0]) * (1 + rng.normal(0, 0.04, (people, 1)))
        shown = [k for k in range(people) if rng.random() > 0.05]
        truth = shown + ([-1] if rng.random() < 0.03 else [])
        boxes = {k: _box(camera, roots[k] + rng.normal(0, 0.01, 3)) for k in shown}
        estimates = [_estimate(noisy[k], boxes[k]) for k in shown]
        if truth[-1] == -1:
            fake = np.array([rng.uniform(-3, 3), 0, rng.uniform(4, 9)])
            estimates.append(_estimate(fake, _box(camera, fake), confidence=0.3))
        order = rng.permutation(len(estimates))
        scene.append(([estimates[i] for i in order], _paint(boxes, roots, colours), [truth[i] for i in order]))
    return scene


def _box(camera, root: np.ndarray) -> np.ndarray:
    corners = np.array([[root[0] - 0.25, -0.85, root[2]], [root[0] + 0.25, 0.85, root[2]]])
    return camera.project(corners).ravel()


def _estimate(root: np.ndarray, box: np.ndarray, confidence: float = 0.9):
    from backend.estimators.base import PersonEstimate

    return PersonEstimate(np.zeros((24, 3)), np.zeros(10), root, np.zeros((24, 2)), confidence, bbox=box)


def _paint(boxes: dict, roots: np.ndarray, colours: np.ndarray) -> np.ndarray:
    import cv2

    image = np.full((720, 1280, 3), 70, np.uint8)
    for k in sorted(boxes, key=lambda k: -roots[k, 2]):  # far first: near people occlude
        x0, y0, x1, y1 = (int(v) for v in boxes[k])
        middle = (y0 + y1) // 2
        cv2.rectangle(image, (x0, y0), (x1, middle), tuple(int(c) for c in colours[k, 0]), -1)
        cv2.rectangle(image, (x0, middle), (x1, y1), tuple(int(c) for c in colours[k, 1]), -1)
    return image


def _identity_errors(tracks, scene) -> np.ndarray:
    """(identity switches, extra tracks per real person, tracks made mostly of false detections)."""
    owner: dict[int, int] = {}  # id(estimate) -> ground-truth person
    for estimates, _, truth in scene:
        for estimate, person in zip(estimates, truth):
            owner[id(estimate.transl)] = person
    switches, false = 0, 0
    tracks_of: dict[int, set] = {}
    per_person: dict[int, list[tuple[int, int]]] = {}
    for track in tracks:
        people = [owner.get(id(p.transl), -1) for p in track.people]
        false += int(np.mean(np.array(people) == -1) > 0.5)
        for frame, person in zip(track.frames, people):
            if person >= 0:
                per_person.setdefault(person, []).append((frame, track.track_id))
                tracks_of.setdefault(person, set()).add(track.track_id)
    for observations in per_person.values():
        ids = [track_id for _, track_id in sorted(observations)]
        switches += sum(a != b for a, b in itertools.pairwise(ids))
    fragments = sum(len(ids) - 1 for ids in tracks_of.values())
    return np.array([switches, fragments, false])


# ----------------------------------------------------------------------------------------------- smoothing


def bench_smoothing(frames: int, smoothness: float | None) -> None:
    """Acceleration and reprojection error of the real estimator's motion, unsmoothed vs smoothed."""
    import torch

    from backend.body import load_body_model
    from backend.estimators.registry import create_estimator
    from backend.pipeline import ReconstructOptions, _camera_for, _Run, _track_all, assemble_result
    from backend.sources.frames import open_source
    from backend.tracking.smoothing import SmoothingSettings

    options = ReconstructOptions(frame_end=frames - 1)
    settings = SmoothingSettings(options.smoothing if smoothness is None else smoothness)
    source = open_source(DATA / "dancer_1080p.mp4", 0, frames - 1)
    camera, body = _camera_for(source.info, options), load_body_model("open-body")
    estimator = create_estimator(options.estimator, body, "cpu")
    started = time.perf_counter()
    run = _Run(source.info, None, None)
    try:
        _track_all(source, estimator, camera, options.chunk_size, run)
    finally:
        estimator.close()
    elapsed = time.perf_counter() - started
    tracks = run.tracker.finished_tracks(is_clip=True)
    raw = assemble_result(tracks, body, camera, source.info, "mediapipe-fit", run.frames_done)
    smooth = assemble_result(tracks, body, camera, source.info, "mediapipe-fit", run.frames_done, smoothing=settings)
    landmarks = np.stack([p.extras["keypoints2d"] for t in tracks for p in t.people])
    visible = np.stack([p.extras["keypoint_visibility"] for t in tracks for p in t.people])
    print(f"smoothing: dancer_1080p.mp4 frames 0..{frames - 1}, {len(tracks)} track(s), {len(raw['poses'])} rows, "
          f"estimator {elapsed / max(run.frames_done, 1):.2f} s/frame, smoothness {settings.smoothness}")  # fmt: skip
    accel = {}
    for label, arrays in (("raw", raw), ("smoothed", smooth)):
        joints = _joints(body, arrays, torch)
        accel[label] = _mean_acceleration(joints, arrays["row_track"], arrays["row_frame"])
        error = _landmark_error(arrays["joints2d"], landmarks, visible)
        print(f"  {label:9s} mean joint acceleration {accel[label] * 1000:7.2f} mm/frame^2   "
              f"median reprojection vs MediaPipe landmarks {error:6.2f} px")  # fmt: skip
    drift = np.median(np.linalg.norm(smooth["joints2d"] - raw["joints2d"], axis=-1))
    print(f"  acceleration ratio smoothed/raw {accel['smoothed'] / accel['raw']:.3f}; "
          f"median 2D distance smoothed vs unsmoothed joints2d {drift:.2f} px")


def _joints(body, arrays: dict, torch) -> np.ndarray:
    with torch.no_grad():
        out = body(torch.as_tensor(arrays["poses"]), torch.as_tensor(arrays["betas"])[arrays["row_track"]],
                   torch.as_tensor(arrays["transl"]))  # fmt: skip
    return out.joints.numpy()


def _mean_acceleration(joints: np.ndarray, row_track: np.ndarray, row_frame: np.ndarray) -> float:
    """Mean norm of the second difference of the 3D joints over runs of consecutive frames, metres/frame^2."""
    values = []
    for track in np.unique(row_track):
        rows = np.flatnonzero(row_track == track)
        frames, track_joints = row_frame[rows], joints[rows]
        for i in range(2, len(rows)):
            if frames[i] - frames[i - 2] == 2:
                second = track_joints[i] - 2 * track_joints[i - 1] + track_joints[i - 2]
                values.append(np.linalg.norm(second, axis=-1).mean())
    return float(np.mean(values)) if values else float("nan")


def _landmark_error(joints2d: np.ndarray, landmarks: np.ndarray, visible: np.ndarray) -> float:
    smpl, mediapipe = list(SMPL_TO_MEDIAPIPE), list(SMPL_TO_MEDIAPIPE.values())
    distance = np.linalg.norm(joints2d[:, smpl] - landmarks[:, mediapipe], axis=-1)
    return float(np.median(distance[visible[:, mediapipe] > 0.5]))


# ----------------------------------------------------------------------------------------------- memory


def bench_memory(frames: int) -> None:
    """Peak traced memory of shot cuts + tracking over a long clip against a 10x shorter one."""
    short = _peak_memory(max(frames // 10, 20))
    long = _peak_memory(frames)
    print(f"memory: tracemalloc peak {short[0] / 2**20:.1f} MiB for {short[1]} frames, "
          f"{long[0] / 2**20:.1f} MiB for {long[1]} frames (ratio {long[0] / short[0]:.2f}; "
          f"frames 1280x720, 3 people with full-size masks per frame, chunk 8)")  # fmt: skip


def _peak_memory(frames: int) -> tuple[int, int]:
    from backend.geometry.camera import Camera
    from backend.pipeline import _Run, _track_all
    from backend.sources.frames import open_source

    source = _RepeatedSource(open_source(DATA / "football_dribble.mp4"), frames)
    tracemalloc.start()
    run = _Run(source.info, None, None)
    _track_all(source, _MaskedEstimator(), Camera.from_fov(source.info.width, source.info.height), 8, run)
    tracks = run.tracker.finished_tracks(is_clip=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sum(len(t.frames) for t in tracks) > 0
    return peak, frames


class _RepeatedSource:
    """A video source's frames cycled to ``frames`` frames, decoded lazily (one chunk in memory)."""

    def __init__(self, source, frames: int) -> None:
        from dataclasses import replace

        self._source = source
        self.info = replace(source.info, num_frames=frames)

    def chunks(self, size: int):
        def cycled():
            index = 0
            while True:
                for _, frame in self._source.frames():
                    if index == self.info.num_frames:
                        return
                    yield index, frame
                    index += 1

        iterator = cycled()
        while chunk := list(itertools.islice(iterator, size)):
            yield chunk


class _MaskedEstimator:
    """Three people walking across, each with a full-size float mask, as a real estimator would return."""

    name = "masked-fake"

    def __init__(self) -> None:
        self._frame = 0

    def estimate(self, frames, camera):
        out = []
        for frame in frames:
            height, width = frame.shape[:2]
            people = []
            for k in range(3):
                root = np.array([-1.5 + k * 1.5 + 0.002 * self._frame, 0.0, 6.0])
                box = _box(camera, root)
                mask = np.zeros((height, width), np.float32)
                x0, y0, x1, y1 = (int(v) for v in box)
                mask[max(y0, 0) : y1, max(x0, 0) : x1] = 1.0
                estimate = _estimate(root, box)
                estimate.mask = mask
                people.append(estimate)
            out.append(people)
            self._frame += 1
        return out

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
