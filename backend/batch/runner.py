"""A batch from start to end: which clips are still to do (the manifest), how each is cut into tasks (whole, or
chunks of a long video: at its shot cuts, overlapping inside long shots), running them on Ray, and each clip's
result put in place.

A clip's result appears under its final name only when complete: a whole clip's task writes it atomically
(``backend.result.write_result``); a chunked clip's chunks go to a working folder (``.troupe-chunks/<clip>/``)
and the stitched result is written atomically once all of them are in. The manifest is saved when the batch
starts, every few seconds while clips finish, and at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from backend.batch.chunks import detect_clip_cuts, shot_chunk_ranges
from backend.batch.cluster import connected, require_ray
from backend.batch.inputs import VIDEO_SUFFIXES, Clip, input_fingerprint
from backend.batch.manifest import DONE, FAILED, RUNNING, ClipEntry, Manifest, options_hash
from backend.batch.progress import BatchProgress
from backend.batch.scheduling import run_tasks, task_resources
from backend.batch.tasks import ClipJob, ClipOutcome, failed_outcome, stitch_chunks

CHUNKS_FOLDER = ".troupe-chunks"
_SAVE_EVERY_S = 2.0
_HASH_IGNORES = ("device", "keep_partial")  # where a result was made, not what it is


@dataclass
class BatchSettings:
    """How a batch runs (the reconstruction options are separate: they are what the results are)."""

    address: str | None = None  # an existing Ray cluster; None: a local one in this process
    num_cpus: int | None = None  # local cluster only; None: all of the machine's
    num_gpus: int | None = None
    cpus_per_task: float = 1.0
    gpu_fraction: float = 0.25  # of one GPU per task, where the cluster has GPUs
    max_retries: int = 3  # per task, when its worker dies
    chunk_frames: int = 900  # videos longer than this are split (0: never)
    chunk_overlap: int = 16
    redo: bool = False  # redo every clip, complete or not
    quiet: bool = False


@dataclass
class BatchReport:
    names: list[str]  # every clip of this batch, in input order
    done: int = 0
    failed: int = 0
    skipped: int = 0  # complete from an earlier run
    frames: int = 0
    seconds: float = 0.0  # wall time of the run


@dataclass
class _ClipState:
    clip: Clip
    jobs: list[ClipJob]
    outcomes: dict[int, ClipOutcome] = field(default_factory=dict)


def run_batch(clips: list[Clip], out_dir: Path, values: dict[str, Any], settings: BatchSettings,
              on_progress: Callable[[BatchProgress], None] | None = None,
              cancel: threading.Event | None = None) -> BatchReport:
    """Reconstruct every clip not yet complete for these options into ``out_dir``; see the module docstring.
    ``on_progress`` is told of every change of the counts; once ``cancel`` is set, the tasks under way are
    cancelled, the manifest saved (their clips are redone by the next run) and :class:`Cancelled` raised."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(out_dir)
    digest = options_hash({key: value for key, value in values.items() if key not in _HASH_IGNORES})
    manifest.options = {**values, "hash": digest}
    report = BatchReport([clip.name for clip in clips])
    todo = []
    for clip in clips:
        fingerprint = input_fingerprint(clip.source)
        if not settings.redo and manifest.is_complete(clip.name, digest, fingerprint):
            report.skipped += 1
            continue
        manifest.clips[clip.name] = ClipEntry(str(clip.source), clip.result_name, digest, fingerprint)
        todo.append(clip)
    progress = BatchProgress(len(clips), report.skipped, settings.quiet, on_progress)
    try:
        if todo:
            _run(todo, out_dir, manifest, values, settings, progress, report, cancel)
    finally:
        progress.close()
        manifest.save()
    report.seconds = time.perf_counter() - started
    return report


def _run(todo: list[Clip], out_dir: Path, manifest: Manifest, values: dict[str, Any], settings: BatchSettings,
         progress: BatchProgress, report: BatchReport, cancel: threading.Event | None) -> None:
    states: dict[str, _ClipState] = {}
    for clip in todo:
        try:
            ranges = _frame_ranges(clip, values, settings)
        except Exception as exc:  # noqa: BLE001 - an unreadable input fails alone, before any task
            _failed(manifest.clips[clip.name], failed_outcome(clip.name, 0, exc), progress, report)
            continue
        states[clip.name] = _ClipState(clip, _jobs(clip, ranges, out_dir, values))
    if not states:
        return
    with connected(settings.address, settings.num_cpus, settings.num_gpus) as cluster:
        resources = task_resources(cluster, values.get("device", "auto"), settings.gpu_fraction,
                                   settings.cpus_per_task)
        jobs = [_on_device(job, resources.device) for state in states.values() for job in state.jobs]
        now = time.time()
        for name in states:
            manifest.clips[name].status, manifest.clips[name].started = RUNNING, now
            manifest.clips[name].chunks = len(states[name].jobs)
        manifest.save()
        slots = max(1, int(cluster.cpus // max(settings.cpus_per_task, 1e-3)))
        saved = time.perf_counter()
        for job, outcome in run_tasks(jobs, resources, settings.max_retries, 2 * slots + 2,
                                      on_frames=progress.frames_under_way if progress.shown else None,
                                      cancel=cancel):
            state = states[job.name]
            state.outcomes[job.chunk] = outcome
            if len(state.outcomes) == len(state.jobs):
                _finish_clip(state, out_dir, manifest.clips[job.name], progress, report)
            if time.perf_counter() - saved > _SAVE_EVERY_S:
                manifest.save()
                saved = time.perf_counter()


def _frame_ranges(clip: Clip, values: dict[str, Any], settings: BatchSettings) -> list[tuple[int, int]] | None:
    """The chunks of a long video (cut at its shot cuts, overlapping inside long shots), or None for a clip
    done in one task (also every non-video). Only a video longer than a chunk is scanned for cuts."""
    if settings.chunk_frames <= 0 or clip.source.suffix.lower() not in VIDEO_SUFFIXES:
        return None
    from backend.sources import open_source

    frame_range = values.get("frame_start"), values.get("frame_end")
    info = open_source(clip.source, *frame_range).info
    if info.num_frames <= settings.chunk_frames:
        return None
    cuts = detect_clip_cuts(clip.source, *frame_range)
    ranges = shot_chunk_ranges(info.first_frame, info.num_frames, cuts, settings.chunk_frames,
                               settings.chunk_overlap)
    return ranges if len(ranges) > 1 else None


def _jobs(clip: Clip, ranges: list[tuple[int, int]] | None, out_dir: Path, values: dict[str, Any]) -> list[ClipJob]:
    if ranges is None:
        return [ClipJob(clip.name, str(clip.source), str(out_dir / clip.result_name), values)]
    folder = out_dir / CHUNKS_FOLDER / clip.name
    return [ClipJob(clip.name, str(clip.source), str(folder / f"chunk-{index:03d}.npz"), values, index, start, end)
            for index, (start, end) in enumerate(ranges)]


def _on_device(job: ClipJob, device: str) -> ClipJob:
    return dataclasses.replace(job, options={**job.options, "device": device})


def _finish_clip(state: _ClipState, out_dir: Path, entry: ClipEntry, progress: BatchProgress,
                 report: BatchReport) -> None:
    outcomes = [state.outcomes[index] for index in range(len(state.jobs))]
    entry.seconds = sum(outcome.seconds for outcome in outcomes)
    entry.worker = outcomes[-1].worker or None
    failure = next((outcome for outcome in outcomes if not outcome.ok), None)
    if failure is None and len(outcomes) > 1:
        try:
            frames, people = _stitch(state, out_dir)
        except Exception as exc:  # noqa: BLE001 - a chunk result that cannot be read fails this clip alone
            failure = failed_outcome(state.clip.name, 0, exc)
        else:
            outcomes = [ClipOutcome(state.clip.name, 0, True, frames, people)]
    if failure is not None:
        _failed(entry, failure, progress, report)
        return
    entry.status, entry.finished = DONE, time.time()
    entry.frames, entry.people = outcomes[0].frames, outcomes[0].people
    entry.error_code = entry.error = None
    report.done += 1
    report.frames += entry.frames
    progress.clip_finished(entry.frames, entry.people, failed=False)


def _stitch(state: _ClipState, out_dir: Path) -> tuple[int, int]:
    """Stitch a chunked clip's results into its final result on a worker (``tasks.stitch_chunks``: it loads the
    body model); returns (frames, people). The task asks for no CPU, so it does not queue behind the chunks
    already submitted while the driver waits for it."""
    ray = require_ray()
    task = ray.remote(stitch_chunks).options(num_cpus=0, max_retries=2, name="troupe-stitch")
    frames, people = ray.get(task.remote([job.output for job in state.jobs], str(out_dir / state.clip.result_name),
                                         state.jobs[0].options))
    shutil.rmtree(out_dir / CHUNKS_FOLDER / state.clip.name, ignore_errors=True)
    with contextlib.suppress(OSError):  # the working folder goes once no other clip's chunks are in it
        (out_dir / CHUNKS_FOLDER).rmdir()
    return frames, people


def _failed(entry: ClipEntry, outcome: ClipOutcome, progress: BatchProgress, report: BatchReport) -> None:
    entry.status, entry.finished = FAILED, time.time()
    entry.error_code, entry.error = outcome.error_code, outcome.error
    report.failed += 1
    progress.clip_finished(0, 0, failed=True)


__all__ = ["BatchReport", "BatchSettings", "run_batch"]
