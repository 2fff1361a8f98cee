"""The add-on's background work: the reconstruction (or a batch of clips) and the preference task, each run by a
:class:`runner.JobRunner` (``reconstruction`` and ``preference_task``), plus the settings they read from the preferences.

In background mode timers never fire, so scripts use the operators' ``wait`` option and tests call
``reconstruction.poll()`` / ``reconstruction.wait()`` directly.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import bpy

from . import backend_env, client as client_module
from .client import BackendClient, JobOptions, JobStatus, ReconstructionJob
from .runner import JobRunner
from .tasks import CommandSequence

POLL_INTERVAL_S = 0.1
ADDON_PACKAGE = __package__

last_collection: bpy.types.Collection | None = None


# --- configuration from the preferences ---------------------------------------------------------------------


def preferences() -> bpy.types.AddonPreferences | None:
    addon = bpy.context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_data_dir(create: bool = False) -> Path | None:
    """The extension's persistent user folder (survives updates); None for a legacy add-on."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="", create=create))
    except (ValueError, AttributeError):
        return None


def backend_python() -> str:
    """The configured interpreter, else one found beside the backend or in the extension's user folder."""
    prefs = preferences()
    configured = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""
    return configured or backend_env.detect_interpreter(user_data_dir())


def backend_extra_env() -> dict[str, str]:
    prefs = preferences()
    if prefs is not None and prefs.weights_dir:
        return {"TROUPE_WEIGHTS_DIR": bpy.path.abspath(prefs.weights_dir)}
    return {}


def backend_device(default: str = "auto") -> str:
    prefs = preferences()
    return prefs.device.lower() if prefs is not None else default


# --- reconstruction -----------------------------------------------------------------------------------------


def start(options: JobOptions, python: str | None = None) -> ReconstructionJob:
    """Spawn the backend and send the request; progress arrives through ``reconstruction.poll``."""
    global last_collection
    if reconstruction.running():
        raise RuntimeError("a reconstruction is already running; cancel it first")
    root = backend_env.backend_root()
    if root is None:
        raise RuntimeError("the backend source is missing from the add-on; reinstall Troupe")
    client = BackendClient(python if python is not None else backend_python(), root, backend_extra_env())
    last_collection = None
    state = bpy.context.window_manager.troupe_job
    state.last_error = ""
    state.warnings = ""
    return reconstruction.start(ReconstructionJob(client, options))


def _finish(job: ReconstructionJob) -> None:
    global last_collection
    status = job.status
    if status.state == "done" and not status.batch:  # a batch's results stay in its folder
        warnings = list(status.warnings)
        try:
            from .scene import build_scene

            last_collection = build_scene(status.output, warnings=warnings)
            _push_undo("Troupe reconstruction")
        except Exception as exc:  # noqa: BLE001 - any import failure becomes the job's error
            status.state, status.error, status.error_code = "error", f"cannot import the result: {exc}", "IMPORT"
        status.warnings = warnings
    if status.state == "error":
        print(f"Troupe: error: {status.error}", file=sys.stderr)
        _popup_error(status.error)


def _sync(job: ReconstructionJob) -> None:
    status = job.status
    state = bpy.context.window_manager.troupe_job
    state.running = not status.finished
    state.state = status.state
    state.stage = status.stage
    state.progress = status.fraction
    state.done, state.total = status.done, status.total
    state.fps = status.fps
    state.eta_s = -1.0 if status.eta_s is None else status.eta_s
    state.people = status.people
    state.last_error = status.error if status.state == "error" else state.last_error
    state.warnings = "\n".join(status.warnings)
    state.message = describe(status)
    _redraw()


def describe(status: JobStatus) -> str:
    """One line about the job for the panel, the status bar and the operators' reports."""
    if status.batch and status.state in ("running", "done"):
        failed = f", {status.failed} failed" if status.failed else ""
        if status.state == "done":
            return f"batch done: {status.done - status.failed} of {status.total} clips, {status.frames} frames{failed}"
        return f"batch: {status.done}/{status.total} clips, {status.frames} frames{failed}"
    if status.state == "running" and status.total:
        eta = f", {status.eta_s:.0f} s left" if status.eta_s is not None else ""
        return f"{status.stage or 'frames'} {status.done}/{status.total}, {status.people} people{eta}"
    if status.state == "done":
        return f"done: {status.people} people over {status.frames} frames"
    return {"starting": "starting backend", "running": "running", "cancelling": "cancelling",
            "cancelled": "cancelled", "error": "failed"}.get(status.state, status.state)


reconstruction: JobRunner[ReconstructionJob] = JobRunner("a reconstruction", POLL_INTERVAL_S, _sync, _finish)


# --- preference tasks (environment creation, SMPL install, doctor) -------------------------------------------

_task_done: Callable[[CommandSequence], None] | None = None


def start_task(task: CommandSequence, on_done: Callable[[CommandSequence], None] | None = None) -> None:
    """Run ``task``; ``on_done`` is called once when it has finished."""
    global _task_done
    if preference_task.running():
        raise RuntimeError(f"{preference_task.work.title} is still running")
    _task_done = on_done
    state = bpy.context.window_manager.troupe_job
    state.task_error = ""
    state.task_log = str(task.log_path)
    preference_task.start(task)


def _sync_task(work: CommandSequence) -> None:
    state = bpy.context.window_manager.troupe_job
    state.task_running = not work.finished
    state.task_title = work.title
    state.task_progress = work.fraction
    state.task_line = work.current_label if not work.finished else work.state
    _redraw()


def _task_finished(work: CommandSequence) -> None:
    bpy.context.window_manager.troupe_job.task_error = work.error
    if _task_done is not None:
        _task_done(work)


preference_task: JobRunner[CommandSequence] = JobRunner("a preference task", 0.2, _sync_task, _task_finished)


# --- helpers ------------------------------------------------------------------------------------------------


def result_path(source: str, output_dir: str) -> Path:
    """Where a new result goes (folder created): the chosen folder, else beside the .blend, else the temp folder."""
    folder = results_folder(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(source.rstrip("/\\")).stem or "result"
    return folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}.npz"


def batch_output(folder: str, output_dir: str) -> Path:
    """Where a batch of ``folder`` writes its results: ``<folder name>-batch`` in the chosen results folder,
    else beside the .blend, else in the temp folder. The same folder each time, so a rerun resumes the batch."""
    name = Path(folder.rstrip("/\\")).name or "clips"
    return results_folder(output_dir) / f"{name}-batch"


def results_folder(output_dir: str) -> Path:
    """The chosen results folder, else ``troupe`` beside the .blend, else in the temp folder."""
    if output_dir:
        return Path(os.path.abspath(bpy.path.abspath(output_dir)))
    if bpy.data.filepath:
        return Path(bpy.data.filepath).parent / "troupe"
    return Path(tempfile.gettempdir()) / "troupe"


def log_dir() -> Path:
    base = user_data_dir(create=True) or Path(tempfile.gettempdir()) / "troupe"
    return base / "logs"


def _push_undo(message: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass  # no undo stack in background mode or in some contexts


def _popup_error(message: str) -> None:
    if bpy.app.background:
        return
    try:
        bpy.context.window_manager.popup_menu(lambda menu, _ctx: menu.layout.label(text=message), title="Troupe",
                                              icon="ERROR")
    except (RuntimeError, AttributeError):
        pass


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES", "STATUSBAR"}:
                area.tag_redraw()


def shutdown() -> None:
    """Stop everything this add-on started (disable, reload, quit): no orphan backends, no timers left."""
    for runner in (reconstruction, preference_task):
        runner.stop_timer()
    if reconstruction.running():
        reconstruction.work.cancel()
        if reconstruction.work.status.batch:  # the backend cancels on end of input and stops its Ray cluster
            reconstruction.work.client.close(timeout=client_module.BATCH_CANCEL_GRACE_S)
        else:
            reconstruction.work.client.kill()
    if preference_task.running():
        preference_task.work.cancel()
