"""The running reconstruction and preference task, polled on Blender's main thread by ``bpy.app.timers``.

``poll`` and ``poll_task`` are the timer callbacks. In background mode timers never fire, so scripts use the
operators' ``wait`` option and tests call these functions directly.
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

from . import backend_env
from .client import BackendClient, JobOptions, JobStatus, ReconstructionJob
from .tasks import CommandSequence

POLL_INTERVAL_S = 0.1
ADDON_PACKAGE = __package__

_job: ReconstructionJob | None = None
_handled = False  # the finished job's outcome (import or error) was dealt with
_task: CommandSequence | None = None
_task_done: Callable[[CommandSequence], None] | None = None
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


def running() -> bool:
    return _job is not None and not _job.status.finished


def current_job() -> ReconstructionJob | None:
    return _job


def outcome_ready() -> bool:
    """The last job ended and its result was imported (or its error recorded)."""
    return _job is not None and _handled


def start(options: JobOptions, python: str | None = None) -> ReconstructionJob:
    """Spawn the backend and send the request; progress arrives through :func:`poll`."""
    global _job, _handled, last_collection
    if running():
        raise RuntimeError("a reconstruction is already running; cancel it first")
    root = backend_env.backend_root()
    if root is None:
        raise RuntimeError("the backend source is missing from the add-on; reinstall Troupe")
    client = BackendClient(python if python is not None else backend_python(), root, backend_extra_env())
    _job = ReconstructionJob(client, options)
    _handled = False
    last_collection = None
    state = bpy.context.window_manager.troupe_job
    state.last_error = ""
    state.warnings = ""
    _job.start()
    _sync(_job.status)
    return _job


def start_polling() -> None:
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=POLL_INTERVAL_S, persistent=True)


def poll() -> float | None:
    """Timer callback: read the backend's messages, update the UI, import the result when done."""
    global _handled
    if _job is None or _handled:
        return None
    if _job.step().finished:
        _handled = True
        _finish(_job)
    _sync(_job.status)
    _redraw()
    return None if _handled else POLL_INTERVAL_S


def wait(timeout: float | None = None) -> JobStatus:
    """Block until the job ends (scripts in background mode), then finish it like the timer would.

    Past ``timeout`` seconds the job is cancelled (and killed after the protocol's grace period).
    """
    if _job is None:
        raise RuntimeError("no reconstruction was started")
    deadline = None if timeout is None else time.monotonic() + timeout
    while not _handled:
        if deadline is not None and time.monotonic() > deadline and _job.status.state != "cancelling":
            cancel()
        time.sleep(0.02)
        poll()
    return _job.status


def cancel() -> None:
    if running():
        _job.cancel()
        _sync(_job.status)


def _finish(job: ReconstructionJob) -> None:
    global last_collection
    status = job.status
    if status.state == "done":
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


def _sync(status: JobStatus) -> None:
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
    state.message = _describe(status)


def _describe(status: JobStatus) -> str:
    if status.state == "running" and status.total:
        eta = f", {status.eta_s:.0f} s left" if status.eta_s is not None else ""
        return f"{status.stage or 'frames'} {status.done}/{status.total}, {status.people} people{eta}"
    if status.state == "done":
        return f"done: {status.people} people over {status.frames} frames"
    return {"starting": "starting backend", "running": "running", "cancelling": "cancelling",
            "cancelled": "cancelled", "error": "failed"}.get(status.state, status.state)


# --- preference tasks (environment creation, SMPL install, doctor) -------------------------------------------


def task_running() -> bool:
    return _task is not None and not _task.finished


def start_task(task: CommandSequence, on_done: Callable[[CommandSequence], None] | None = None) -> None:
    global _task, _task_done
    if task_running():
        raise RuntimeError(f"{_task.title} is still running")
    _task, _task_done = task, on_done
    state = bpy.context.window_manager.troupe_job
    state.task_error = ""
    state.task_log = str(task.log_path)
    task.start()
    poll_task()


def start_task_polling() -> None:
    if not bpy.app.timers.is_registered(poll_task):
        bpy.app.timers.register(poll_task, first_interval=0.2, persistent=True)  # survives File > Open


def poll_task() -> float | None:
    """Timer callback for preference tasks: advance, mirror progress into the UI, finish."""
    if _task is None:
        return None
    _task.step()
    state = bpy.context.window_manager.troupe_job
    state.task_running = not _task.finished
    state.task_title = _task.title
    state.task_progress = _task.fraction
    state.task_line = _task.current_label if not _task.finished else _task.state
    if _task.finished:
        state.task_error = _task.error
        if _task_done is not None:
            _task_done(_task)
    _redraw()
    return None if _task.finished else 0.2


def wait_task() -> CommandSequence:
    while task_running():
        time.sleep(0.05)
        poll_task()
    return _task


def cancel_task() -> None:
    if task_running():
        _task.cancel()
        poll_task()


def current_task() -> CommandSequence | None:
    return _task


# --- helpers ------------------------------------------------------------------------------------------------


def result_path(source: str, output_dir: str) -> Path:
    """Where a new result goes (folder created): the chosen folder, else beside the .blend, else the temp folder."""
    if output_dir:
        folder = Path(os.path.abspath(bpy.path.abspath(output_dir)))
    elif bpy.data.filepath:
        folder = Path(bpy.data.filepath).parent / "troupe"
    else:
        folder = Path(tempfile.gettempdir()) / "troupe"
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(source.rstrip("/\\")).stem or "result"
    return folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}.npz"


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
    for callback in (poll, poll_task):
        if bpy.app.timers.is_registered(callback):
            bpy.app.timers.unregister(callback)
    if running():
        _job.cancel()
        _job.client.kill()
    if task_running():
        _task.cancel()
