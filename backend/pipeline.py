"""The reconstruction pipeline: frames -> shot cuts -> estimator -> coherence -> tracker -> smoother -> result file.

Frames are processed in chunks, so memory is bounded by one chunk of frames plus the (small) per-person
parameters: the tracker keeps people without their masks, and a small appearance descriptor instead of pixels.
A chunk is split at shot cuts, so neither the estimator's warm start nor a track crosses a cut. Frames with
several people are refined for coherence (backend.coherence) while their masks are still at hand. Smoothing runs
per track in :func:`assemble_result`, before ``joints2d`` is computed, so the projections match the smoothed
bodies. Progress and cancellation go through callbacks so the command line, the service and tests share one
code path.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from backend.body import BodyModel, load_body_model
from backend.camera import Camera
from backend.device import resolve_device
from backend.estimators import DEFAULT_ESTIMATOR, create_estimator
from backend.result import empty_track_arrays, write_result
from backend.shots import ShotCutDetector
from backend.smoothing import DEFAULT_SMOOTHNESS, SmoothingSettings, smooth_motion
from backend.sources import SourceError, SourceInfo, open_source
from backend.tracking import Track, Tracker, TrackerSettings


class Cancelled(Exception):
    """The user cancelled the reconstruction."""


@dataclass
class ReconstructOptions:
    estimator: str = DEFAULT_ESTIMATOR
    body_model: str = "open-body"
    device: str = "auto"
    fov: float | None = None  # degrees across the longer image side; default in backend.camera
    focal: float | None = None  # pixels; overrides fov
    frame_start: int | None = None
    frame_end: int | None = None
    chunk_size: int = 8
    keep_partial: bool = False  # on cancel or a broken video, write what was done so far
    estimator_options: dict = field(default_factory=dict)
    smoothing: float = DEFAULT_SMOOTHNESS  # 0 = off .. 1 = strongest (backend.smoothing)
    smoothing_method: str = "zero-phase"  # or "one-euro" (causal, as a live preview would see it)
    shot_cuts: bool = True  # detect shot cuts and end every track at them
    coherence: bool = True  # Jiang et al. refinement of frames with several people (backend.coherence)


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
    ``BodyModelError`` or ``DeviceError`` with a message meant for the user.
    """
    options = options or ReconstructOptions()
    smoothing = SmoothingSettings(options.smoothing, options.smoothing_method)  # invalid values fail early
    source = open_source(input_path, options.frame_start, options.frame_end)
    camera = _camera_for(source.info, options)
    device = resolve_device(options.device)
    body = load_body_model(options.body_model, device=device)
    estimator = create_estimator(options.estimator, body, device, **options.estimator_options)
    run = _Run(source.info, progress, cancel, options.shot_cuts)
    if options.coherence:
        run.coherence = functools.partial(_coherent, body=body, camera=camera)
    try:
        interruption = _track_all(source, estimator, camera, options.chunk_size, run)
    finally:
        estimator.close()
    if interruption is not None and not options.keep_partial:
        raise interruption
    tracks = run.tracker.finished_tracks(is_clip=source.info.kind != "image" and run.frames_done > 1)
    arrays = assemble_result(
        tracks, body, camera, source.info, options.estimator, run.frames_done, smoothing=smoothing
    )
    arrays["shot_cuts"] = np.asarray(run.cuts, np.int64)
    write_result(output_path, arrays)
    warnings = [] if interruption is None else [f"partial result: {interruption}"]
    if not tracks:
        warnings.append(f"no people found in {run.frames_done} frame(s) of {source.info.path}; the result is empty")
    return ReconstructSummary(Path(output_path), run.frames_done, len(tracks), interruption is not None, warnings)


def _camera_for(info: SourceInfo, options: ReconstructOptions) -> Camera:
    if options.focal is not None:
        return Camera.from_focal(info.width, info.height, options.focal)
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
        self._progress = progress
        self._cancel = cancel
        self._started = time.perf_counter()

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
    """Estimate and track every chunk; returns the exception that stopped the run early, if any."""
    run.report(0)
    try:
        for chunk in source.chunks(chunk_size):
            run.check_cancel()
            people_now = 0
            for shot_part in _split_at_cuts(chunk, run, source.info.first_frame):
                people_now = _track_part(shot_part, estimator, camera, run, source.info.first_frame)
            run.frames_done += len(chunk)
            run.report(people_now)
        return None
    except (Cancelled, SourceError) as exc:
        return exc


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


def _track_part(part: list, estimator, camera: Camera, run: _Run, first_frame: int) -> int:
    """Estimate and track frames of one shot; returns how many people the last frame has."""
    if part[0][0] == "cut":
        run.tracker.cut()
        reset = getattr(estimator, "reset", None)
        if callable(reset):
            reset()  # no warm start from the previous shot
    frames = [frame for _, _, frame in part]
    per_frame = estimator.estimate(frames, camera)
    if run.coherence is not None:
        per_frame = [run.coherence(people) if len(people) > 1 else people for people in per_frame]
    for (_, index, frame), people in zip(part, per_frame):
        run.tracker.update(index - first_frame, people, image=frame)
    return len(per_frame[-1]) if per_frame else 0


def assemble_result(
    tracks: list[Track], body: BodyModel, camera: Camera, info: SourceInfo, estimator: str, num_frames: int,
    smoothing: SmoothingSettings | None = None,
) -> dict[str, np.ndarray]:
    """Turn tracks into the result-file arrays.

    Each track gets one body shape (the median of its per-frame shapes). Translations are corrected so each
    row's pelvis stays where the estimator put it; then each track's motion is smoothed (``smoothing``; None
    or smoothness 0 = raw), and ``joints2d`` is recomputed from the final body, so ``FK(poses, betas) + transl``
    projects exactly onto ``joints2d``.
    """
    arrays: dict[str, np.ndarray] = {
        "fps": np.float64(info.fps),
        "image_size": np.array([info.width, info.height], np.int64),
        "focal_length": np.array([camera.fx, camera.fy], np.float64),
        "principal_point": np.array([camera.cx, camera.cy], np.float64),
        "num_frames": np.int64(num_frames),
        "body_model": np.str_(body.name),
        "estimator": np.str_(estimator),
        "source_path": np.str_(str(Path(info.path).resolve())),
        "frame_indices": np.arange(info.first_frame, info.first_frame + num_frames, dtype=np.int64),
        "joint_names": np.array(body.joint_names),
        "parents": body.parents.cpu().numpy().astype(np.int64),
        "faces": body.faces.cpu().numpy().astype(np.int64),
        "skin_weights": body.skin_weights.detach().cpu().numpy().astype(np.float32),
    }
    if not tracks:
        arrays.update(empty_track_arrays(body.num_betas))
        arrays["rest_vertices"] = np.zeros((0, body.num_vertices, 3), np.float32)
        return arrays
    arrays.update(_track_arrays(tracks, body, camera, info.fps, smoothing))
    return arrays


@torch.no_grad()
def _track_arrays(
    tracks: list[Track], body: BodyModel, camera: Camera, fps: float, smoothing: SmoothingSettings | None
) -> dict[str, np.ndarray]:
    device = body.faces.device

    def stacked(rows: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(rows), dtype=torch.float32, device=device)

    people = [person for track in tracks for person in track.people]
    row_track = np.concatenate([np.full(len(t.people), i, np.int64) for i, t in enumerate(tracks)])
    row_betas = stacked([_padded(p.betas, body.num_betas) for p in people])
    track_betas = torch.stack(
        [row_betas[torch.as_tensor(row_track == i)].median(dim=0).values for i in range(len(tracks))]
    )
    poses = stacked([p.poses for p in people])
    transl = stacked([p.transl for p in people])
    # Keep each row's pelvis in place when its shape becomes the track's shape.
    pelvis_shift = body.rest_joints(row_betas)[:, 0] - body.rest_joints(track_betas)[row_track][:, 0]
    transl = transl + pelvis_shift
    if smoothing is not None and smoothing.smoothness > 0:
        row_frame = np.concatenate([np.asarray(t.frames, np.int64) for t in tracks])
        pelvis_rest = body.rest_joints(track_betas)[row_track][:, 0]
        poses, transl = _smoothed(poses, transl, pelvis_rest, row_track, row_frame, fps, smoothing)
    output = body(poses, track_betas[row_track], transl)
    joints = output.joints.cpu().numpy()
    return {
        "track_id": np.array([t.track_id for t in tracks], np.int64),
        "betas": track_betas.cpu().numpy().astype(np.float32),
        "rest_joints": body.rest_joints(track_betas).cpu().numpy().astype(np.float32),
        "rest_vertices": body.shaped_vertices(track_betas).cpu().numpy().astype(np.float32),
        "row_track": row_track,
        "row_frame": np.concatenate([np.asarray(t.frames, np.int64) for t in tracks]),
        "poses": poses.cpu().numpy().astype(np.float32),
        "transl": transl.cpu().numpy().astype(np.float32),
        "joints2d": camera.project(joints.astype(np.float64)).astype(np.float32),
        "confidence": np.array([p.confidence for p in people], np.float32),
    }


def _smoothed(poses, transl, pelvis_rest, row_track, row_frame, fps, smoothing):
    """Smooth each track's rows; the root is smoothed as the pelvis position (transl + rest pelvis)."""
    new_poses, pelvis = poses.cpu().numpy().astype(np.float64), (transl + pelvis_rest).cpu().numpy()
    for track in np.unique(row_track):
        rows = np.flatnonzero(row_track == track)
        new_poses[rows], pelvis[rows] = smooth_motion(new_poses[rows], pelvis[rows], row_frame[rows], fps, smoothing)
    as_tensor = lambda a: torch.as_tensor(a, dtype=poses.dtype, device=poses.device)  # noqa: E731
    return as_tensor(new_poses), as_tensor(pelvis) - pelvis_rest


def _padded(betas: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, np.float32)
    out[: min(size, len(betas))] = np.asarray(betas, np.float32)[:size]
    return out


__all__ = ["Cancelled", "Progress", "ReconstructOptions", "ReconstructSummary", "assemble_result", "reconstruct"]
