"""Running clip jobs as Ray tasks: how much of a node each task asks for, and a loop that keeps a bounded
number of tasks in flight and yields their outcomes as they finish.

Each task asks for ``cpus_per_task`` CPUs and, where the cluster has GPUs and the device allows them, a fraction
of a GPU (several clips share one GPU when they fit in its memory; Ray sets ``CUDA_VISIBLE_DEVICES`` for the
task, so the task's device is plain ``cuda``). A task whose worker dies (killed, out of memory, node lost) is
run again by Ray up to ``max_retries`` times; a clip's own failure is an outcome, never retried
(``backend.batch.tasks``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from backend.batch.cluster import ClusterInfo, require_ray
from backend.batch.progress import ProgressBoard
from backend.batch.tasks import ClipJob, ClipOutcome, run_clip
from backend.errors import Cancelled, DeviceError


@dataclass(frozen=True)
class TaskResources:
    num_cpus: float
    num_gpus: float
    device: str  # what the pipeline is told inside the task


def task_resources(cluster: ClusterInfo, device: str, gpu_fraction: float, cpus_per_task: float) -> TaskResources:
    """The resources each task requests: a GPU fraction when the cluster has GPUs and the device is not the CPU,
    else CPUs only. ``--device cuda`` on a cluster without GPUs is refused here, before any task runs."""
    if device == "cpu":
        return TaskResources(cpus_per_task, 0.0, "cpu")
    if cluster.gpus > 0:
        return TaskResources(cpus_per_task, gpu_fraction, "cuda")
    if device.startswith("cuda"):
        raise DeviceError(f"--device {device} was asked for, but the Ray cluster ({cluster.address}) has no GPU; "
                          "use --device auto or cpu")
    return TaskResources(cpus_per_task, 0.0, "cpu")


def run_tasks(jobs: Iterable[ClipJob], resources: TaskResources, max_retries: int, max_in_flight: int,
              on_frames: Callable[[int], None] | None = None,
              cancel: threading.Event | None = None) -> Iterator[tuple[ClipJob, ClipOutcome]]:
    """Submit ``jobs`` as Ray tasks, at most ``max_in_flight`` at once, and yield each with its outcome in the
    order they finish. A task that failed for good (its worker died more often than retried) yields a failed
    outcome with the code ``WORKER_DIED``. ``on_frames`` is told, about once a second, the frames done so far
    by the tasks under way (from a :class:`ProgressBoard` actor the tasks report to). Once ``cancel`` is set
    (checked about once a second) the tasks under way are cancelled and :class:`Cancelled` is raised."""
    ray = require_ray()
    remote = ray.remote(run_clip).options(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus,
                                          max_retries=max_retries, retry_exceptions=False, name="troupe-clip")
    board = ray.remote(ProgressBoard).options(num_cpus=0).remote() if on_frames is not None else None
    queue = iter(jobs)
    in_flight: dict = {}
    try:
        _fill(remote, board, queue, in_flight, max_in_flight)
        while in_flight:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"batch cancelled with {len(in_flight)} task(s) under way")
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            finished = [(in_flight.pop(ref), ref) for ref in done]
            if board is not None:  # first, so that a finished task's frames are not counted twice
                under_way = {(job.name, job.chunk) for job in in_flight.values()}
                reported = ray.get(board.frames.remote())
                on_frames(sum(frames for key, frames in reported.items() if key in under_way))
            for job, ref in finished:
                yield job, _outcome(ray, ref, job)
            _fill(remote, board, queue, in_flight, max_in_flight)
    finally:
        for ref in in_flight:  # cancelled or stopped early: nothing keeps running on the cluster
            ray.cancel(ref, force=True)


def _fill(remote, board, queue: Iterator[ClipJob], in_flight: dict, limit: int) -> None:
    while len(in_flight) < limit:
        job = next(queue, None)
        if job is None:
            return
        in_flight[remote.remote(job, board)] = job


def _outcome(ray, ref, job: ClipJob) -> ClipOutcome:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker died for good, or the task could not be run at all
        code = "WORKER_DIED" if isinstance(exc, (ray.exceptions.WorkerCrashedError,
                                                 ray.exceptions.NodeDiedError)) else "TASK_ERROR"
        first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return ClipOutcome(job.name, job.chunk, False, error_code=code, error=first_line[:300])


__all__ = ["TaskResources", "run_tasks", "task_resources"]
