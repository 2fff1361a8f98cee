"""The work a batch worker does: one clip, or one chunk of a long clip, through the same pipeline as
``reconstruct`` (``backend.pipeline.reconstruct``), written atomically to its result path; and a chunked clip's
result stitched from its chunks.

A failure the user can act on (a corrupt input, an estimator without its weights; every error that carries a
``troupe_code``) is returned as a value, not raised: it belongs to that clip alone, and Ray must not retry it.
Only a dying worker (killed, out of memory) makes Ray run the task again. This module imports neither Ray nor
torch: a worker imports the pipeline when it runs its first task.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClipJob:
    """What one task reconstructs: ``source`` (frames ``frame_start..frame_end`` of it) into ``output``."""

    name: str  # the clip's name in the batch
    source: str
    output: str
    options: dict[str, Any]  # ReconstructOptions' fields, already checked (backend.options)
    chunk: int = 0  # index of the chunk in its clip (0 for a whole clip)
    frame_start: int | None = None  # a chunk's frames, overriding the options' range
    frame_end: int | None = None


@dataclass(frozen=True)
class ClipOutcome:
    """What a task reports back: counts and time on success, the error's code and line on failure."""

    name: str
    chunk: int
    ok: bool
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    error_code: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    worker: str = ""


def run_clip(job: ClipJob, board: Any = None) -> ClipOutcome:
    """Reconstruct ``job``; never raises for an expected failure (see the module docstring). ``board``: a Ray
    actor handle of :class:`backend.batch.progress.ProgressBoard`, told the frames done about once a second."""
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        summary = _reconstruct(job, _reporter(job, board))
    except Exception as exc:  # noqa: BLE001 - every failure becomes this clip's report
        return failed_outcome(job.name, job.chunk, exc, time.perf_counter() - started, worker)
    return ClipOutcome(job.name, job.chunk, True, summary.frames, summary.people, time.perf_counter() - started,
                       warnings=tuple(summary.warnings), worker=worker)


def stitch_chunks(chunk_outputs: list[str], output: str, options: dict[str, Any]) -> tuple[int, int]:
    """Write the result of a clip from its chunks' results (``backend.batch.stitch``), with one camera path and
    world over the whole clip where the chunks measured theirs (``backend.batch.camera_chain``: the pipeline's
    world stage, run again on the stitched tracks, which needs the body model); returns (frames, people).
    A Ray task, so the driver needs neither torch nor the body model."""
    from backend.batch.stitch import chunk_borders, stitch_results
    from backend.result import read_result, write_result

    chunks = [read_result(path) for path in chunk_outputs]
    arrays = stitch_results(chunks)
    if len(chunks) > 1 and all("camera_rotation" in chunk for chunk in chunks):
        from backend.batch.camera_chain import chained_path, chunk_path
        from backend.body import load_body_model
        from backend.options import default
        from backend.world import add_world_frame

        starts, _, borders = chunk_borders(chunks)
        path = chained_path([chunk_path(chunk) for chunk in chunks], starts, borders)
        body = load_body_model(options.get("body_model") or default("body_model"), device="cpu")
        arrays.update(add_world_frame(arrays, path, body))
    write_result(output, arrays)
    return int(arrays["num_frames"]), len(arrays["track_id"])


def failed_outcome(name: str, chunk: int, exc: BaseException, seconds: float = 0.0, worker: str = "") -> ClipOutcome:
    """The report of a failure: the error's ``troupe_code`` and first line, or ``INTERNAL_ERROR`` and the
    exception's type for a bug."""
    from backend.errors import error_code

    code = error_code(exc) or "INTERNAL_ERROR"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if code == "INTERNAL_ERROR":
        message = f"{type(exc).__name__}: {message}"
    return ClipOutcome(name, chunk, False, seconds=seconds, error_code=code, error=message, worker=worker)


def _reporter(job: ClipJob, board: Any):
    """A pipeline progress callback that tells ``board`` (at most once a second, never waiting for it)."""
    if board is None:
        return None
    last = [0.0]

    def report(progress) -> None:  # backend.pipeline.Progress
        now = time.monotonic()
        if now - last[0] >= 1.0 or progress.done == progress.total:
            last[0] = now
            board.report.remote(job.name, job.chunk, progress.done, progress.people)

    return report


def _reconstruct(job: ClipJob, progress=None):
    from backend.pipeline import ReconstructOptions, reconstruct

    values = dict(job.options)
    if job.frame_start is not None:
        values["frame_start"], values["frame_end"] = job.frame_start, job.frame_end
    options = ReconstructOptions(**values)
    return reconstruct(job.source, job.output, options, progress=progress)


__all__ = ["ClipJob", "ClipOutcome", "failed_outcome", "run_clip", "stitch_chunks"]
