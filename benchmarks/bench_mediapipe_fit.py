"""Figures for the README: people found and median reprojection error on the test photos, CPU frames per second
of ``mediapipe-fit`` on the first frames of football_dribble.mp4 with and without the temporal warm start, and Adam against LBFGS on the photos' people.

Run from the repository root: ``python benchmarks/bench_mediapipe_fit.py [--frames 60] [--body open-body]``
(``--optimizers`` adds the optimiser comparison). Uses the shared test footage (../shared/data) and Troupe's
cache (``TROUPE_CACHE_DIR`` if set). Timings depend on the machine's load: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def read_image(name: str) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(DATA / name))
    if bgr is None:
        raise SystemExit(f"cannot read {DATA / name}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_frames(name: str, count: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(DATA / name))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def photos(estimator, camera_for) -> None:
    for name in ("street_steps_group.jpg", "football_player_a.jpg"):
        image = read_image(name)
        estimator.reset()
        start = time.perf_counter()
        people = estimator.estimate([image], camera_for(image))[0]
        seconds = time.perf_counter() - start
        errors = [p.extras["reprojection_px"] for p in people]
        median = float(np.median(errors)) if errors else float("nan")
        print(f"{name}: {len(people)} people, median reprojection {median:.1f} px, {seconds:.2f} s")


def video(estimator, camera_for, count: int) -> None:
    """Frames per second with the temporal warm start, and in the same run without it (reset before every frame,
    so each frame gets the full tile scan and a fit from the neutral start): the ratio is the warm start's gain."""
    frames = read_frames("football_dribble.mp4", count)
    camera = camera_for(frames[0])
    estimator.reset()
    estimator.estimate(frames[:1], camera)  # warm-up (first-call overheads), not timed
    warm_fps, results = _timed(lambda: _estimate_warm(estimator, frames, camera), len(frames))
    cold_fps, _ = _timed(lambda: _estimate_cold(estimator, frames, camera), len(frames))
    people = sum(len(r) for r in results)
    errors = [p.extras["reprojection_px"] for r in results for p in r]
    print(f"football_dribble.mp4, first {len(frames)} frames: {warm_fps:.2f} frames/s with warm start, "
          f"{cold_fps:.2f} frames/s from a cold start every frame (ratio {warm_fps / cold_fps:.2f}x), "
          f"{people / len(frames):.1f} people/frame, median reprojection {np.median(errors):.1f} px")


def _estimate_warm(estimator, frames, camera) -> list:
    estimator.reset()
    return estimator.estimate(frames, camera)


def _estimate_cold(estimator, frames, camera) -> list:
    results = []
    for frame in frames:
        estimator.reset()
        results.extend(estimator.estimate([frame], camera))
    return results


def _timed(run, count: int) -> tuple[float, list]:
    start = time.perf_counter()
    results = run()
    return count / (time.perf_counter() - start), results


def optimizers(estimator, camera_for) -> None:
    """Same detections, same energy: final mean energy and seconds for Adam and LBFGS schedules."""
    from backend.estimators.mediapipe_fit import _fit_input
    from backend.fitting import FitOptions, fit_people

    batches = []
    for name in ("street_steps_group.jpg", "football_player_a.jpg"):
        image = read_image(name)
        camera = camera_for(image)
        estimator.finder.reset()
        detections = estimator.finder.find(image)
        data, _ = _fit_input([detections], [None], estimator.points.num_betas)
        batches.append((data, (camera.fx, camera.fy, camera.cx, camera.cy)))
    fit_people(estimator.points, *batches[0])  # warm-up
    schedules = {
        "adam 30+90 (default)": FitOptions(),
        "adam 15+45": FitOptions(orient_steps=15, full_steps=45),
        "lbfgs 10+40": FitOptions(optimizer="lbfgs", orient_steps=10, full_steps=40),
        "lbfgs 10+100": FitOptions(optimizer="lbfgs", orient_steps=10, full_steps=100),
    }
    for label, options in schedules.items():
        start, energies = time.perf_counter(), []
        for data, intrinsics in batches:
            energies.extend(fit_people(estimator.points, data, intrinsics, options).energy)
        print(f"{label:22s} {time.perf_counter() - start:5.2f} s, mean energy {np.mean(energies):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--body", default="open-body")
    parser.add_argument("--optimizers", action="store_true", help="also compare Adam and LBFGS")
    args = parser.parse_args()

    import torch

    from backend.body import load_body_model
    from backend.estimators.mediapipe_fit import MediapipeFitEstimator
    from backend.geometry.camera import Camera

    print(f"CPU threads for torch: {torch.get_num_threads()} (the fit itself runs on one)")
    estimator = MediapipeFitEstimator(load_body_model(args.body))
    camera_for = lambda image: Camera.from_fov(image.shape[1], image.shape[0])  # noqa: E731
    try:
        photos(estimator, camera_for)
        video(estimator, camera_for, args.frames)
        if args.optimizers:
            optimizers(estimator, camera_for)
    finally:
        estimator.close()


if __name__ == "__main__":
    main()
