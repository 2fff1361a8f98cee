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
import time
import traceback
from typing import IO, Any, TextIO

from backend import __version__
from backend.errors import OptionError, TroupeError, error_code
from backend.options import FIELDS, check_options, check_paths, resolve_request_path

PROTOCOL_VERSION = 1
REQUEST_FIELDS = {"type", "id", "input", "output", "base"}  # the options' fields are backend.options.FIELDS
RECONSTRUCT_FIELDS = REQUEST_FIELDS | set(FIELDS)
BATCH_FIELDS = {"type", "id", "inputs", "output", "base"} | set(FIELDS)
MAX_BATCH_INPUTS = 10_000
MAX_LINE_BYTES = 1 << 20  # a request is a few hundred bytes; a longer line is refused, not buffered
TOO_LONG = object()  # stands in the queue for a line over MAX_LINE_BYTES


class RequestError(ValueError):
    """A request the service refuses before any work, with its protocol code and one line for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Channel:
    """Thread-safe writer of protocol events."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, event_type: str, **fields: Any) -> None:
        # ASCII with escapes: a path holding undecodable bytes (a lone surrogate) cannot break the stream
        line = json.dumps({"type": event_type, **fields}, ensure_ascii=True)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def serve(stdin: IO | None = None, stdout: TextIO | None = None) -> int:
    """Run the service until stdin closes; returns the process exit code."""
    if stdout is None:
        stdout = _claim_stdout()
    channel = Channel(stdout)
    requests: "queue.Queue[str | bytes | object | None]" = queue.Queue()
    source = stdin if stdin is not None else sys.stdin.buffer  # bytes: the locale's decoder never sees them
    threading.Thread(target=_read_lines, args=(source, requests), daemon=True).start()
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


def _read_lines(stream: IO, requests: "queue.Queue[str | bytes | object | None]") -> None:
    """Lines of ``stream`` as they come (bytes are decoded one line at a time by the server, so one bad byte
    costs one error answer, never the reader); None when it closes."""
    try:
        while True:
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:  # the rest of an over-long line is read and dropped
                while line and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
                    line = stream.readline(MAX_LINE_BYTES)
                requests.put(TOO_LONG)
            elif line.strip():
                requests.put(line)
    finally:
        requests.put(None)


class _Server:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._job: _Job | None = None

    def handle_line(self, line: str | bytes | object) -> None:
        if line is TOO_LONG:
            self.channel.send("error", id=None, code="BAD_REQUEST", message=f"line longer than {MAX_LINE_BYTES} bytes")
            return
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.channel.send("error", id=None, code="BAD_REQUEST",
                                  message=f"not UTF-8 text: byte 0x{line[exc.start]:02x} at position {exc.start}")
                return
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            self.channel.send("error", id=None, code="BAD_REQUEST", message=f"not a JSON line: {exc.msg}")
            return
        except RecursionError:
            self.channel.send("error", id=None, code="BAD_REQUEST", message="JSON nested too deeply")
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
        self._start(message, checked_request, _Job)

    def _on_batch(self, message: dict) -> None:
        self._start(message, checked_batch_request, _BatchJob)

    def _start(self, message: dict, check, job_class) -> None:
        job_id = message.get("id")
        if self._job is not None and self._job.is_alive():
            self.channel.send(
                "error", id=job_id, code="BUSY", message=f"job {self._job.job_id!r} is still running; cancel it first"
            )
            return
        try:
            request = check(message)
        except RequestError as exc:
            self.channel.send("error", id=job_id, code=exc.code, message=str(exc))
            return
        self._job = job_class(job_id, request, self.channel)
        self._job.start()

    def _on_cancel(self, message: dict) -> None:
        job = self._job
        if job is None or not job.is_alive() or (message.get("id") not in (None, job.job_id)):
            self.channel.send("error", id=message.get("id"), code="NO_SUCH_JOB", message="no running job to cancel")
            return
        job.cancel.set()


def checked_request(message: dict) -> dict:
    """A reconstruct request with every field checked before any work (``backend.options``: the schema the
    command line uses): ``input`` and ``output`` as absolute paths, ``options`` as ReconstructOptions fields.
    Raises :class:`RequestError`."""
    unknown = sorted(set(message) - RECONSTRUCT_FIELDS)
    if unknown:
        raise RequestError("BAD_REQUEST", f"unknown fields in reconstruct request: {', '.join(unknown)}")
    for field in ("id", "input", "output"):
        if not isinstance(message.get(field), str) or not message[field]:
            raise RequestError("BAD_REQUEST", f"reconstruct request needs a non-empty string {field!r}")
    base, options = _base_and_options(message)
    try:
        paths = [resolve_request_path(message[field], field, base) for field in ("input", "output")]
    except OptionError as exc:
        raise RequestError("BAD_REQUEST", str(exc)) from None
    try:
        check_paths(*paths)
    except ValueError as exc:  # SourceError or ResultFileError
        raise RequestError(error_code(exc) or "BAD_REQUEST", str(exc)) from None
    return {"id": message["id"], "input": paths[0], "output": paths[1], "options": options}


def _base_and_options(message: dict) -> tuple[str | None, dict]:
    """A request's ``base`` folder (absolute, or None) and its options checked by the schema."""
    base = message.get("base")
    if base is not None and (not isinstance(base, str) or not os.path.isabs(base)):
        raise RequestError("BAD_REQUEST", f"'base' must be an absolute folder path, got {base!r}")
    try:
        return base, check_options({k: v for k, v in message.items() if k in FIELDS})
    except OptionError as exc:
        raise RequestError("INVALID_OPTION", str(exc)) from None


def checked_batch_request(message: dict) -> dict:
    """A batch request checked before any work: the options as for ``reconstruct``, ``inputs`` expanded into
    clips (``backend.batch.inputs``), ``output`` a folder, and Ray installed (else the line saying how to get
    it). Raises :class:`RequestError`."""
    unknown = sorted(set(message) - BATCH_FIELDS)
    if unknown:
        raise RequestError("BAD_REQUEST", f"unknown fields in batch request: {', '.join(unknown)}")
    for field in ("id", "output"):
        if not isinstance(message.get(field), str) or not message[field]:
            raise RequestError("BAD_REQUEST", f"batch request needs a non-empty string {field!r}")
    inputs = message.get("inputs")
    if (not isinstance(inputs, list) or not 0 < len(inputs) <= MAX_BATCH_INPUTS
            or not all(isinstance(item, str) and item for item in inputs)):
        raise RequestError("BAD_REQUEST", f"'inputs' must be a list of 1 to {MAX_BATCH_INPUTS} non-empty paths")
    base, options = _base_and_options(message)
    try:
        paths = [resolve_request_path(item, "inputs", base) for item in inputs]
        output = resolve_request_path(message["output"], "output", base)
    except OptionError as exc:
        raise RequestError("BAD_REQUEST", str(exc)) from None
    if output.exists() and not output.is_dir():
        raise RequestError("RESULT_ERROR", f"a batch's output must be a folder, got the file {output}")
    from backend.batch.cluster import check_ray_installed
    from backend.batch.inputs import expand_inputs

    try:
        clips = expand_inputs(paths)
        check_ray_installed()
    except (ValueError, TroupeError) as exc:  # SourceError, BatchError
        raise RequestError(error_code(exc) or "BAD_REQUEST", str(exc)) from None
    return {"id": message["id"], "clips": clips, "output": output, "options": options}


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
            for warning in [*summary.warnings, *(f"note: {note}" for note in summary.notes)]:  # the panel shows both
                self.channel.send("warning", id=self.job_id, message=warning)
            self.channel.send(
                "done", id=self.job_id, output=str(summary.output), people=summary.people,
                frames=summary.frames, partial=summary.partial,
            )  # fmt: skip

    def _reconstruct(self):  # -> backend.pipeline.ReconstructSummary
        # inside the try: a broken install is reported, not fatal
        from backend.pipeline import ReconstructOptions, reconstruct

        options = ReconstructOptions(**self.request["options"])
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


class _BatchJob(_Job):
    """A batch (``backend.batch``, on a local Ray cluster started for it) in a worker thread: ``progress``
    events count clips (``frames`` and ``failed`` beside them), a ``warning`` per failed clip, then ``done``."""

    def run(self) -> None:
        try:
            report, manifest = self._batch()
        except Exception as exc:  # noqa: BLE001 - every failure must reach the client as an event
            self._report_failure(exc)
            return
        entries = {name: manifest.clips[name] for name in report.names if name in manifest.clips}
        for name, entry in entries.items():
            if entry.status == "failed":
                self.channel.send("warning", id=self.job_id, message=f"{name}: {entry.error_code}: {entry.error}")
        people = sum(entry.people for entry in entries.values() if entry.status == "done")
        self.channel.send(
            "done", id=self.job_id, output=str(self.request["output"]), people=people, frames=report.frames,
            partial=False, clips=report.done, failed=report.failed, skipped=report.skipped,
            manifest=str(manifest.path),
        )  # fmt: skip

    def _batch(self):
        from backend.batch.manifest import Manifest
        from backend.batch.runner import BatchSettings, run_batch

        self._began = time.perf_counter()
        output = self.request["output"]
        report = run_batch(self.request["clips"], output, self.request["options"], BatchSettings(quiet=True),
                           on_progress=self._batch_progress, cancel=self.cancel)
        return report, Manifest.load(output)

    def _batch_progress(self, progress) -> None:  # backend.batch.progress.BatchProgress
        frames = progress.frames + progress.running_frames
        elapsed = max(time.perf_counter() - self._began, 1e-9)
        self.channel.send(
            "progress", id=self.job_id, done=progress.finished, total=progress.total, fps=round(frames / elapsed, 3),
            eta_s=None, stage="batch", frames=frames, failed=progress.failed,
        )  # fmt: skip
        self.channel.send("person", id=self.job_id, count=progress.people)


__all__ = ["PROTOCOL_VERSION", "serve"]
