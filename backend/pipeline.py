"""The reconstruction pipeline: frames -> shot cuts -> estimator -> coherence -> tracker (and the camera's motion
on the background) -> result file, with the camera and the people in a gravity-up world (``backend.world``).

Frames are processed in chunks, so memory is bounded by one chunk of frames plus the (small) per-person
parameters: the tracker keeps people without their masks, and a small appearance descriptor instead of pixels.
A chunk is split at shot cuts, so neither the estimator's warm start nor a track crosses a cut. Frames with
several people are refined for coherence (backend.coherence) while their masks are still at hand. The tracks
become the result's arrays in ``backend.result.assembly`` (short gaps bridged, motion smoothed). Progress and
cancellation go through callbacks so the command line, the service and tests share one code path.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.body import BodyModel, load_body_model
from backend.errors import Cancelled
from backend.estimators.base import FoundPeople
from backend.estimators.registry import create_estimator
from backend.geometry.camera import Camera
from backend.options import DEFAULT_FOV_DEGREES, check_paths, default
from backend.result.assembly import assemble_result
from backend.result.contract import write_result
from backend.runtime.device import resolve_device
from backend.runtime.torch_threads import single_thread
from backend.runtime.user_warnings import backend_warnings
from backend.sources.frames import SourceError, SourceInfo, open_source
from backend.sources.shots import ShotCutDetector
from backend.tracking.smoothing import SmoothingSettings
from backend.tracking.tracker import Tracker, TrackerSettings
from backend.world import CameraPath, CameraPathBuilder, RotationTracker, add_world_frame
from backend.world.focal import FocalEstimate, estimate_tracker_focal
from backend.world.motion import person_boxes


@dataclass
class ReconstructOptions:
    """A reconstruction's options, typed; the user-facing ones and their defaults are declared in
    :data:`backend.options.FIELDS` (``tests/test_options_schema.py`` keeps the two in step)."""

    estimator: str = default("estimator")
    body_model: str = default("body_model")
    device: str = default("device")
    fov: float | None = default("fov")  # degrees across the longer image side
    focal: float | None = default("focal")  # pixels; overrides fov
    frame_start: int | None = default("frame_start")
    frame_end: int | None = default("frame_end")
    keep_partial: bool = default("keep_partial")  # on cancel or a broken video, write what was done so far
    smoothing: float = default("smoothing")  # 0 = off .. 1 = strongest (backend.tracking.smoothing)
    coherence: bool = default("coherence")  # Jiang et al. refinement of frames with several people
    camera: str = default("camera")  # auto | static | moving: the camera's motion in clips (backend.world)
    estimator_options: dict = field(default_factory=lambda: default("estimator_options"))
    # internal settings, not offered to users
    chunk_size: int = 8
    smoothing_method: str = "zero-phase"  # or "one-euro" (causal, as a live preview would see it)
    shot_cuts: bool = True  # detect shot cuts and end every track at them


@dataclass
class Progress:
    done: int
    total: int
    fps: float
    eta_s: float | None
    stage: str
    people: int


@dataclass
class ReconstructSummary:
    output: Path | None
    frames: int
    people: int
    partial: bool = False
    warnings: list[str] = field(default_factory=list)
    camera_seconds: float = 0.0  # spent measuring the camera's motion and building the world frame
    camera_moving: bool = False  # some segment of the clip has a moving camera
    focal_estimate: float | None = None  # the lens the camera's turns imply (original pixels), when none was given
    notes: list[str] = field(default_factory=list)  # for the user, not problems (the command line prints them)


ProgressCallback = Callable[[Progress], None]


def reconstruct(
    input_path: str | Path,
    output_path: str | Path,
    options: ReconstructOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ReconstructSummary:
    """Reconstruct everybody in ``input_path`` into the result file ``output_path``.

    Raises :class:`Cancelled` (nothing written unless ``keep_partial``), ``SourceError``, ``EstimatorError``,
    ``BodyModelError`` or ``DeviceError`` with a message meant for the user. The backend's own warnings raised on
    the way (a damaged optional model, say) end in the summary's ``warnings``, where the add-on's panel lists them.
    """
    with backend_warnings() as raised:
        summary = _reconstruct(input_path, output_path, options or ReconstructOptions(), progress, cancel)
    summary.warnings += [warning for warning in raised if warning not in summary.warnings]
    return summary


def _reconstruct(input_path: str | Path, output_path: str | Path, options: ReconstructOptions,
                 progress: ProgressCallback | None, cancel: threading.Event | None) -> ReconstructSummary:
    check_paths(input_path, output_path)  # nothing read or loaded before the output is known to be writable
    smoothing = SmoothingSettings(options.smoothing, options.smoothing_method)  # invalid values fail early
    source = open_source(input_path, options.frame_start, options.frame_end)
    camera = _camera_for(source.info, options)
    device = resolve_device(options.device)
    body = load_body_model(options.body_model, device=device)
    estimator = create_estimator(options.estimator, body, device, **options.estimator_options)
    is_clip = source.info.kind != "image"
    # In a clip the stages already run side by side (people found ahead on a worker thread, in ONNX Runtime's
    # own threads), so torch's intra-op threads would only contend for the cores: the rest of the clip's torch
    # work (the world frame's zoom refit, the camera's motion, the result) runs on one thread, as the fit and the
    # coherence step always did (benchmarks/bench_clip_speed.py: the world frame 6x faster on 2 loaded cores).
    with single_thread() if is_clip else contextlib.nullcontext():
        return _estimate_and_write(source, camera, body, estimator, options, smoothing, output_path, progress,
                                   cancel)


def _estimate_and_write(source, camera: Camera, body: BodyModel, estimator, options: ReconstructOptions,
                        smoothing: SmoothingSettings, output_path: str | Path, progress: ProgressCallback | None,
                        cancel: threading.Event | None) -> ReconstructSummary:
    """The stages after the set-up: estimate and track every frame, assemble, the world frame, write."""
    run = _Run(source.info, progress, cancel, options.shot_cuts)
    is_clip = source.info.kind != "image"
    run.camera_path = CameraPathBuilder(options.camera)
    if is_clip and options.camera != "static":
        run.motion = RotationTracker(camera.width, camera.height, camera.fx, (camera.cx, camera.cy))
    if options.coherence:
        run.coherence = functools.partial(_coherent, body=body, camera=camera)
    try:
        interruption = _track_all(source, estimator, camera, options.chunk_size, run)
    finally:
        estimator.close()
    if interruption is not None and (not options.keep_partial or run.frames_done == 0):
        raise interruption  # never an empty result in place of a good one
    tracks = run.tracker.finished_tracks(is_clip=source.info.kind != "image" and run.frames_done > 1)
    arrays = assemble_result(
        tracks, body, camera, source.info, options.estimator, run.frames_done, smoothing=smoothing
    )
    arrays["shot_cuts"] = np.asarray(run.cuts, np.int64)
    path, focal = None, None
    if is_clip:
        path = _camera_path(run)
        started = time.perf_counter()
        arrays.update(add_world_frame(arrays, path, body))
        focal = _focal_estimate(run, path, source.info, options)
        if focal is not None:
            arrays["camera_focal_estimate"] = np.float64(focal.focal)
        run.camera_seconds += time.perf_counter() - started
    write_result(output_path, arrays)
    warnings = [] if interruption is None else [f"partial result: {interruption}"]
    if not tracks:
        warnings.append(f"no people found in {run.frames_done} frame(s) of {source.info.path}; the result is empty")
    summary = ReconstructSummary(Path(output_path), run.frames_done, len(tracks), interruption is not None,
                                 warnings, run.camera_seconds, path is not None and path.moving)
    if focal is not None:
        summary.focal_estimate = focal.focal
        summary.notes.append(_focal_note(focal, source.info))
    return summary


def _focal_estimate(run: "_Run", path: CameraPath, info: SourceInfo, options: ReconstructOptions
                    ) -> FocalEstimate | None:
    """The focal length (original pixels) the camera's turns imply, when the user gave no lens and the clip's
    camera moves (``backend.world.focal``). Only reported: the people were estimated through the default lens,
    so swapping it now would take the bodies off their 2D joints."""
    if options.focal is not None or options.fov is not None or run.motion is None or not path.moving:
        return None
    estimate = estimate_tracker_focal(run.motion, info.width)
    return None if estimate is None else estimate.scaled(1.0 / info.scale)


def _focal_note(focal: FocalEstimate, info: SourceInfo) -> str:
    longer = max(info.width, info.height) / info.scale
    return (f"the camera's motion suggests --fov {focal.fov_degrees(longer):.0f} (focal length {focal.focal:.0f} "
            f"px, +-{100 * focal.spread:.1f} %); the default {DEFAULT_FOV_DEGREES:.0f} deg lens was used, which "
            f"scales depths, the camera height and the turn: run again with that --fov for them")


def _camera_path(run: "_Run") -> CameraPath:
    """The camera over the frames done: measured, or still (``--camera static``) with a segment per shot."""
    if run.motion is None or len(run.camera_path) < run.frames_done:
        return CameraPath.still(run.frames_done, run.cuts)
    return run.camera_path.build(run.frames_done)


def _camera_for(info: SourceInfo, options: ReconstructOptions) -> Camera:
    """The camera of the frames as decoded; a focal length given in the original picture's pixels is scaled
    with the frames (the result is written back in the original's pixels)."""
    if options.focal is not None:
        return Camera.from_focal(info.width, info.height, options.focal * info.scale)
    if options.fov is not None:
        return Camera.from_fov(info.width, info.height, options.fov)
    return Camera.from_fov(info.width, info.height)


class _Run:
    """Bookkeeping of one run: tracker, frame counter, progress reports, cancellation."""

    def __init__(
        self, info: SourceInfo, progress: ProgressCallback | None, cancel: threading.Event | None,
        detect_cuts: bool = True,
    ) -> None:  # fmt: skip
        self.info = info
        self.tracker = Tracker(TrackerSettings.for_fps(info.fps))
        self.shots = ShotCutDetector() if detect_cuts and info.kind != "image" else None
        self.cuts: list[int] = []  # frames (from the first processed one) that start a new shot
        self.frames_done = 0
        self.coherence: Callable[[list], list] | None = None  # set by reconstruct() when enabled
        self.motion: RotationTracker | None = None  # set by reconstruct() for clips unless the camera is static
        self.camera_path = CameraPathBuilder()
        self.camera_seconds = 0.0
        self._progress = progress
        self._cancel = cancel
        self._started = time.perf_counter()

    def follow_camera(self, frame: np.ndarray, people: list, new_segment: bool) -> None:
        """The camera's motion at this frame, measured on the background around ``people``."""
        if self.motion is None:
            return
        started = time.perf_counter()
        self.camera_path.add(self.motion.update(frame, person_boxes(people), new_segment))
        self.camera_seconds += time.perf_counter() - started

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled(f"cancelled after {self.frames_done} of {self.info.num_frames} frames")

    def report(self, people_now: int) -> None:
        if self._progress is None:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        fps = self.frames_done / elapsed
        left = self.info.num_frames - self.frames_done
        eta = left / fps if fps > 0 else None
        self._progress(Progress(self.frames_done, self.info.num_frames, fps, eta, "estimating", people_now))


def _track_all(source, estimator, camera: Camera, chunk_size: int, run: _Run) -> Exception | None:
    """Estimate and track every chunk; returns the exception that stopped the run early, if any. With an
    estimator whose first stage can run ahead, the people of each chunk are found while the previous chunk's
    bodies are fitted (:class:`_PeopleAhead`)."""
    run.report(0)
    ahead = _PeopleAhead(estimator) if callable(getattr(estimator, "find_people", None)) else None
    pending = None  # (chunk, parts, people being found) read but not yet fitted
    try:
        stop = None
        try:
            for chunk in source.chunks(chunk_size):
                run.check_cancel()
                parts = _split_at_cuts(chunk, run, source.info.first_frame)
                found = ahead.submit(parts) if ahead is not None else None
                if pending is not None:
                    _track_chunk(*pending, estimator, camera, run)
                pending = (chunk, parts, found)
        except SourceError as exc:  # a damaged frame: what was read before it is still tracked
            stop = exc
        if pending is not None:
            _track_chunk(*pending, estimator, camera, run)
        return stop
    except Cancelled as exc:
        return exc
    finally:
        if ahead is not None:
            ahead.close()


class _PeopleAhead:
    """Finds the people of the chunk just read on a worker thread while the main thread fits the chunk before:
    the two stages share no state, and on the CPU they overlap (the detection networks run in ONNX Runtime's
    threads, the fit is a single-threaded torch loop). One worker, so chunks are searched in order."""

    def __init__(self, estimator) -> None:
        self._estimator = estimator
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="troupe-people")

    def submit(self, parts: list[list]) -> Future:
        """Future of one ``FoundPeople`` per shot part of a chunk (a part beginning at a cut begins a shot)."""
        jobs = [([frame for _, _, frame in part], part[0][0] == "cut") for part in parts]
        return self._worker.submit(lambda: [self._estimator.find_people(frames, cut) for frames, cut in jobs])

    def close(self) -> None:
        """Waits for the search under way (at most one chunk) and drops the rest."""
        self._worker.shutdown(wait=True, cancel_futures=True)


def _track_chunk(chunk: list, parts: list[list], found: Future | None, estimator, camera: Camera,
                 run: _Run) -> None:
    people = found.result() if found is not None else [None] * len(parts)
    people_now = 0
    for part, part_people in zip(parts, people):
        people_now = _track_part(part, estimator, camera, run, run.info.first_frame, part_people)
    run.frames_done += len(chunk)
    run.report(people_now)


def _split_at_cuts(chunk: list[tuple[int, np.ndarray]], run: _Run, first_frame: int) -> list[list]:
    """The chunk as runs of frames of one shot each; at every cut the tracker ends its tracks."""
    parts: list[list] = [[]]
    for index, frame in chunk:
        if run.shots is not None and run.shots.update(frame):
            run.cuts.append(index - first_frame)
            if parts[-1]:
                parts.append([])
            parts[-1].append(("cut", index, frame))
        else:
            parts[-1].append(("same", index, frame))
    return [part for part in parts if part]


def _coherent(people: list, body: BodyModel, camera: Camera) -> list:
    """One frame's people without interpenetration and in the depth order their masks show (Jiang et al.)."""
    from backend.coherence import refine_people

    return refine_people(people, body, camera)


def _track_part(part: list, estimator, camera: Camera, run: _Run, first_frame: int,
                found: FoundPeople | None = None) -> int:
    """Estimate and track frames of one shot (``found``: their people, found ahead); returns how many people
    the last frame has."""
    if part[0][0] == "cut":
        run.tracker.cut()
        reset = getattr(estimator, "reset", None)
        if found is None and callable(reset):
            reset()  # no warm start from the previous shot (``found.new_shot`` says so otherwise)
    frames = [frame for _, _, frame in part]
    per_frame = estimator.estimate(frames, camera) if found is None else estimator.estimate(frames, camera,
                                                                                           found=found)
    if run.coherence is not None:
        per_frame = [run.coherence(people) if len(people) > 1 else people for people in per_frame]
    for number, ((kind, index, frame), people) in enumerate(zip(part, per_frame)):
        run.follow_camera(frame, people, new_segment=number == 0 and kind == "cut")
        run.tracker.update(index - first_frame, people, image=frame)
    return len(per_frame[-1]) if per_frame else 0


__all__ = ["Cancelled", "Progress", "ReconstructOptions", "ReconstructSummary", "assemble_result", "reconstruct"]
