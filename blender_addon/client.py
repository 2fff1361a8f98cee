"""Client side of the backend's JSON-lines protocol (version 1): process management and message parsing.

No bpy here. Blender polls :meth:`ReconstructionJob.step` from a timer on the main thread; the only thread is a
reader that turns the backend's stdout into messages on a queue (and one that keeps the tail of stderr), so
nothing touches bpy off the main thread and a slow backend never freezes the UI.
"""

from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import backend_env

PROTOCOL_VERSION = 1
HELLO_TIMEOUT_S = 120.0  # the first start of a fresh environment may compile bytecode for a while
CANCEL_GRACE_S = 10.0
BATCH_CANCEL_GRACE_S = 60.0  # a batch stops its Ray cluster first; killed mid-way, some of Ray's agents outlive it
STDERR_TAIL_LINES = 40


class BackendError(RuntimeError):
    """The backend could not be started or broke the protocol; the message is meant for the user."""


class BackendClient:
    """One ``<python> -m backend serve`` process and its message stream."""

    def __init__(self, python: str, root: Path, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.root = Path(root)
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_thread: threading.Thread | None = None

    def start(self) -> None:
        """Spawn the backend; raise :class:`BackendError` with a readable reason if it cannot start."""
        if not self.python:
            raise BackendError("no backend interpreter configured: set it in the Troupe add-on preferences")
        if not Path(self.python).is_file():
            raise BackendError(f"backend interpreter not found: {self.python}")
        try:
            self.process = subprocess.Popen(
                backend_env.backend_command(self.python, "serve"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(self.root),
                env=backend_env.subprocess_env(self.root, self.env),
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                creationflags=backend_env.NO_WINDOW,
            )
        except OSError as exc:
            raise BackendError(f"cannot start the backend with {self.python}: {exc}") from exc
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="troupe-stderr", daemon=True)
        self._stderr_thread.start()
        threading.Thread(target=self._read_stdout, name="troupe-stdout", daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if line:
                self.messages.put(parse_message(line))
        self.process.wait()
        self._stderr_thread.join(timeout=2.0)  # let stderr finish so the exit message can quote it
        self.messages.put({"type": "exit", "returncode": self.process.returncode})

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    def send(self, message: dict[str, Any]) -> bool:
        """Write one message; False if the backend is gone (its exit arrives as a message)."""
        if self.process is None or self.process.stdin is None or self.process.stdin.closed:
            return False
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def poll(self) -> list[dict[str, Any]]:
        """Every message received so far, without blocking."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next message, blocking up to ``timeout`` seconds (for scripts and tests)."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self, timeout: float = 5.0, wait: bool = False) -> None:
        """Close stdin (the backend exits on EOF) and kill it if it has not gone after ``timeout`` seconds.

        Without ``wait`` the grace period runs in a reaper thread, so Blender's UI never blocks on it.
        """
        if self.process is None:
            return
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        if wait:
            self._reap(timeout)
        else:
            threading.Thread(target=self._reap, args=(timeout,), name="troupe-reaper", daemon=True).start()

    def _reap(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def last_stderr_line(self) -> str:
        """The most telling stderr line: the CLI's ``troupe: error:`` line if any, else the last one."""
        lines = list(self.stderr_tail)
        for line in reversed(lines):
            if "error" in line.lower():
                return line.strip()
        return lines[-1].strip() if lines else ""


def parse_message(line: str) -> dict[str, Any]:
    """One stdout line -> message; anything that is not a JSON object becomes a ``log`` message."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return {"type": "log", "message": line}
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return {"type": "log", "message": line}
    return message


@dataclass
class JobOptions:
    """What the panel sends with a reconstruct request (field names follow the protocol). None leaves an option
    to the backend, whose option schema (``backend/options.py``) holds every default."""

    input: str
    output: str
    estimator: str | None = None
    body_model: str | None = None
    device: str | None = None
    frame_start: int | None = None
    frame_end: int | None = None
    smoothing: float | None = None
    coherence: bool | None = None
    camera: str | None = None  # auto | static | moving (clips)
    fov: float | None = None  # degrees across the longer side
    estimator_options: dict[str, Any] = field(default_factory=dict)  # the chosen estimator's own settings

    def request(self, job_id: str) -> dict[str, Any]:
        return {"type": "reconstruct", "id": job_id, **self.__dict__}


@dataclass
class BatchOptions(JobOptions):
    """A batch request (``backend.batch`` on the backend's local Ray): every clip of ``input`` (a folder, a
    video, or a .txt list) into the folder ``output``, with the reconstruction options of :class:`JobOptions`."""

    def request(self, job_id: str) -> dict[str, Any]:
        fields = {key: value for key, value in self.__dict__.items() if key != "input"}
        return {"type": "batch", "id": job_id, "inputs": [self.input], **fields}


@dataclass
class JobStatus:
    """Everything the UI shows about a job; plain data, copied into Blender properties by the add-on."""

    state: str = "starting"  # starting, running, cancelling, done, error, cancelled
    stage: str = ""
    done: int = 0
    total: int = 0
    fps: float = 0.0
    eta_s: float | None = None
    people: int = 0
    frames: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    error_code: str = ""
    output: str = ""
    backend_version: str = ""
    batch: bool = False  # done/total count clips, frames the frames so far
    failed: int = 0  # a batch's failed clips
    skipped: int = 0  # a batch's clips complete from an earlier run

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled")

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class ReconstructionJob:
    """One reconstruction (or, with :class:`BatchOptions`, one batch) through the serve protocol: handshake,
    request, progress, cancel, outcome."""

    def __init__(self, client: BackendClient, options: JobOptions) -> None:
        self.client = client
        self.options = options
        self.id = uuid.uuid4().hex[:12]
        self.status = JobStatus(batch=isinstance(options, BatchOptions))
        self._deadline = 0.0

    @property
    def finished(self) -> bool:
        return self.status.finished

    def start(self) -> None:
        """Start the backend and say hello; errors land in ``status`` rather than raising."""
        try:
            self.client.start()
        except BackendError as exc:
            self._fail(str(exc), "BACKEND_START")
            return
        self._deadline = time.monotonic() + HELLO_TIMEOUT_S
        self.client.send({"type": "hello", "protocol": PROTOCOL_VERSION})

    def step(self) -> JobStatus:
        """Handle every message that arrived; call from the main thread as often as convenient."""
        if self.status.finished:
            return self.status
        for message in self.client.poll():
            self._handle(message)
            if self.status.finished:
                break
        self._check_deadline()
        return self.status

    def run(self, poll_interval: float = 0.05) -> JobStatus:
        """Block until the job ends (background scripts, where timers never fire)."""
        while not self.step().finished:
            message = self.client.wait(poll_interval)
            if message is not None:
                self._handle(message)
        return self.status

    def cancel(self) -> None:
        """Ask the backend to stop; it is killed if it does not confirm within the grace period."""
        if self.status.finished:
            return
        if self.status.state == "starting" or not self.client.send({"type": "cancel", "id": self.id}):
            self._finish("cancelled")
            return
        self.status.state = "cancelling"
        self._deadline = time.monotonic() + (BATCH_CANCEL_GRACE_S if self.status.batch else CANCEL_GRACE_S)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if message.get("id") not in (None, self.id):
            return  # another job's late message
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(message)

    def _on_hello(self, message: dict[str, Any]) -> None:
        version = message.get("protocol")
        if version != PROTOCOL_VERSION:
            self._fail(
                f"backend speaks protocol {version}, this add-on speaks {PROTOCOL_VERSION}: "
                "update the add-on and the backend together",
                "PROTOCOL_MISMATCH",
            )
            return
        self.status.backend_version = str(message.get("backend_version", ""))
        self.status.state = "running"
        self._deadline = 0.0
        self.client.send(self.options.request(self.id))

    def _on_progress(self, message: dict[str, Any]) -> None:
        status = self.status
        status.done = int(message.get("done", status.done))
        status.total = int(message.get("total", status.total))
        status.fps = float(message.get("fps") or 0.0)
        eta = message.get("eta_s")
        status.eta_s = None if eta is None else float(eta)
        status.stage = str(message.get("stage", status.stage))
        if status.batch:
            status.frames = int(message.get("frames", status.frames))
            status.failed = int(message.get("failed", status.failed))

    def _on_person(self, message: dict[str, Any]) -> None:
        self.status.people = int(message.get("count", self.status.people))

    def _on_warning(self, message: dict[str, Any]) -> None:
        self.status.warnings.append(str(message.get("message", "")))

    def _on_log(self, message: dict[str, Any]) -> None:
        self.client.stderr_tail.append(str(message.get("message", "")))

    def _on_error(self, message: dict[str, Any]) -> None:
        if message.get("code") in ("CANCELLED", "NO_SUCH_JOB") and self.status.state == "cancelling":
            self._finish("cancelled")
            return
        self._fail(str(message.get("message") or "the backend reported an error"), str(message.get("code", "")))

    def _on_cancelled(self, message: dict[str, Any]) -> None:
        self._finish("cancelled")

    def _on_done(self, message: dict[str, Any]) -> None:
        self.status.output = str(message.get("output") or self.options.output)
        self.status.people = int(message.get("people", self.status.people))
        self.status.frames = int(message.get("frames", 0))
        if self.status.batch:
            self.status.done = self.status.total = int(message.get("clips", 0)) + int(message.get("failed", 0)) + \
                int(message.get("skipped", 0))
            self.status.failed = int(message.get("failed", 0))
            self.status.skipped = int(message.get("skipped", 0))
        self._finish("done")

    def _on_exit(self, message: dict[str, Any]) -> None:
        if self.status.state == "cancelling":
            self._finish("cancelled")
            return
        reason = self.client.last_stderr_line() or "no message"
        code = message.get("returncode")
        self._fail(f"the backend stopped unexpectedly (exit code {code}): {reason}", "BACKEND_EXIT")

    def _check_deadline(self) -> None:
        if not self._deadline or time.monotonic() < self._deadline or self.status.finished:
            return
        if self.status.state == "cancelling":
            self.client.kill()
            self._finish("cancelled")
        else:
            self._fail(f"the backend did not answer within {HELLO_TIMEOUT_S:.0f} s", "BACKEND_TIMEOUT")

    def _fail(self, message: str, code: str) -> None:
        self.status.error = message
        self.status.error_code = code
        self._finish("error")

    def _finish(self, state: str) -> None:
        self.status.state = state
        grace = 5.0 if state == "done" else 1.0
        if state == "cancelled" and self.status.batch:  # it exits once Ray's teardown ends (seconds on a loaded
            grace = BATCH_CANCEL_GRACE_S  # machine); killed, Ray's agents would outlive it
        self.client.close(timeout=grace)
