"""``python -m backend serve``: the JSON-lines service the Blender add-on drives (protocol in docs/protocol.md).

One request per line on stdin, one event per line on stdout. Stdout carries protocol lines only: the real stdout
is kept for the protocol and file descriptor 1 is pointed at stderr, so stray prints from libraries (native ones
included) cannot corrupt the stream. One job runs at a time in a worker thread, so ``cancel`` is read while it
runs. The service exits when stdin closes (Blender quit or crashed), cancelling a running job first.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import traceback
from typing import Any, TextIO

from backend import __version__
from backend.errors import OptionError, error_code

PROTOCOL_VERSION = 1
RECONSTRUCT_FIELDS = {
    "type", "id", "input", "output", "estimator", "body_model", "device", "fov", "focal",
    "frame_start", "frame_end", "keep_partial", "smoothing", "coherence",
}  # fmt: skip


class Channel:
    """Thread-safe writer of protocol events."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, event_type: str, **fields: Any) -> None:
        line = json.dumps({"type": event_type, **fields}, ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def serve(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the service until stdin closes; returns the process exit code."""
    if stdout is None:
        stdout = _claim_stdout()
    channel = Channel(stdout)
    requests: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin or sys.stdin, requests), daemon=True).start()
    server = _Server(channel)
    while True:
        line = requests.get()
        if line is None:
            server.shutdown()
            return 0
        server.handle_line(line)


def _claim_stdout() -> TextIO:
    """Keep the real stdout for the protocol and send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


def _read_lines(stream: TextIO, requests: "queue.Queue[str | None]") -> None:
    for line in stream:
        if line.strip():
            requests.put(line)
    requests.put(None)


class _Server:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._job: _Job | None = None

    def handle_line(self, line: str) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            self.channel.send("error", id=None, code="BAD_REQUEST", message=f"not a JSON line: {exc.msg}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.channel.send("error", id=None, code="BAD_REQUEST", message="a request is a JSON object with 'type'")
            return
        handler = getattr(self, f"_on_{message['type']}", None)
        if handler is None:
            self.channel.send(
                "error", id=message.get("id"), code="UNKNOWN_REQUEST", message=f"unknown request {message['type']!r}"
            )
            return
        handler(message)

    def shutdown(self) -> None:
        if self._job is not None and self._job.is_alive():
            self._job.cancel.set()
            self._job.join(timeout=30)

    def _on_hello(self, message: dict) -> None:
        self.channel.send("hello", protocol=PROTOCOL_VERSION, backend_version=__version__)

    def _on_ping(self, message: dict) -> None:
        self.channel.send("pong", id=message.get("id"))

    def _on_reconstruct(self, message: dict) -> None:
        job_id = message.get("id")
        if self._job is not None and self._job.is_alive():
            self.channel.send(
                "error", id=job_id, code="BUSY", message=f"job {self._job.job_id!r} is still running; cancel it first"
            )
            return
        problem = _request_problem(message)
        if problem:
            self.channel.send("error", id=job_id, code="BAD_REQUEST", message=problem)
            return
        self._job = _Job(job_id, message, self.channel)
        self._job.start()

    def _on_cancel(self, message: dict) -> None:
        job = self._job
        if job is None or not job.is_alive() or (message.get("id") not in (None, job.job_id)):
            self.channel.send("error", id=message.get("id"), code="NO_SUCH_JOB", message="no running job to cancel")
            return
        job.cancel.set()


def _request_problem(message: dict) -> str | None:
    unknown = sorted(set(message) - RECONSTRUCT_FIELDS)
    if unknown:
        return f"unknown fields in reconstruct request: {', '.join(unknown)}"
    for field in ("id", "input", "output"):
        if not isinstance(message.get(field), str) or not message[field]:
            return f"reconstruct request needs a non-empty string {field!r}"
    return None


class _Job(threading.Thread):
    """One reconstruction in a worker thread; reports through the channel."""

    def __init__(self, job_id: str, request: dict, channel: Channel) -> None:
        super().__init__(daemon=True, name=f"troupe-job-{job_id}")
        self.job_id = job_id
        self.request = request
        self.channel = channel
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            summary = self._reconstruct()
        except Exception as exc:  # noqa: BLE001 - every failure must reach the client as an event
            self._report_failure(exc)
        else:
            for warning in summary.warnings:
                self.channel.send("warning", id=self.job_id, message=warning)
            self.channel.send(
                "done", id=self.job_id, output=str(summary.output), people=summary.people,
                frames=summary.frames, partial=summary.partial,
            )  # fmt: skip

    def _reconstruct(self):  # -> backend.pipeline.ReconstructSummary
        from backend.pipeline import reconstruct  # inside the try: a broken install is reported, not fatal

        options = _options_from(self.request)
        return reconstruct(
            self.request["input"], self.request["output"], options, progress=self._progress, cancel=self.cancel
        )

    def _report_failure(self, exc: Exception) -> None:
        code = error_code(exc)  # backend.errors imports nothing: this works even when torch cannot load
        if code == "CANCELLED":
            self.channel.send("cancelled", id=self.job_id)
            return
        if code is None:
            traceback.print_exc()
            code = "INTERNAL"
        self.channel.send("error", id=self.job_id, code=code, message=f"{exc}" or type(exc).__name__)

    def _progress(self, progress) -> None:  # backend.pipeline.Progress
        self.channel.send(
            "progress", id=self.job_id, done=progress.done, total=progress.total, fps=round(progress.fps, 3),
            eta_s=None if progress.eta_s is None else round(progress.eta_s, 1), stage=progress.stage,
        )  # fmt: skip
        self.channel.send("person", id=self.job_id, count=progress.people)


def _options_from(request: dict):
    from backend.pipeline import ReconstructOptions

    defaults = ReconstructOptions()
    return ReconstructOptions(
        estimator=request.get("estimator") or defaults.estimator,
        body_model=request.get("body_model") or defaults.body_model,
        device=request.get("device") or defaults.device,
        fov=request.get("fov"),
        focal=request.get("focal"),
        frame_start=request.get("frame_start"),
        frame_end=request.get("frame_end"),
        keep_partial=bool(request.get("keep_partial", False)),
        smoothing=_smoothing_from(request.get("smoothing"), defaults.smoothing),
        coherence=defaults.coherence if request.get("coherence") is None else bool(request["coherence"]),
    )


def _smoothing_from(value: object, default: float) -> float:
    """``smoothing`` 0..1 (0 = off); absent means the default. Out of range fails as an invalid option."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise OptionError(f"smoothing must be a number between 0 and 1, got {value!r}")
    return float(value)


__all__ = ["PROTOCOL_VERSION", "serve"]
