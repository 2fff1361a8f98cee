"""The JSON-lines service, driven as the add-on drives it: a real subprocess over stdin/stdout."""

from __future__ import annotations

import pytest

from backend import __version__
from tests.backend_process import BackendProcess


@pytest.fixture
def backend():
    process = BackendProcess()
    yield process
    process.close()


def test_handshake_reports_protocol_and_version(backend):
    backend.send({"type": "hello", "protocol": 1})
    assert backend.next_event() == {"type": "hello", "protocol": 1, "backend_version": __version__}


@pytest.mark.parametrize(
    "line, code",
    [
        ("{not json", "BAD_REQUEST"),
        ('["a", "list"]', "BAD_REQUEST"),
        ('{"type": "teleport"}', "UNKNOWN_REQUEST"),
        ('{"type": "reconstruct", "id": "j1", "input": "x.jpg"}', "BAD_REQUEST"),
        ('{"type": "reconstruct", "id": "j1", "input": "x", "output": "y", "colour": "red"}', "BAD_REQUEST"),
        ('{"type": "cancel", "id": "nothing-running"}', "NO_SUCH_JOB"),
    ],
)
def test_malformed_or_unknown_messages_get_an_error_and_the_service_lives_on(backend, line, code):
    backend.send(line)
    event = backend.next_event()
    assert event["type"] == "error" and event["code"] == code and event["message"]
    backend.send({"type": "ping", "id": "p"})
    assert backend.next_event() == {"type": "pong", "id": "p"}


def test_missing_input_is_a_specific_error_and_writes_nothing(backend, tmp_path):
    output = tmp_path / "out.npz"
    backend.send(
        {"type": "reconstruct", "id": "j1", "input": str(tmp_path / "missing clip.mp4"), "output": str(output)}
    )
    event = backend.wait_for("error", "done")
    assert event["type"] == "error" and event["id"] == "j1"
    assert event["code"] == "INPUT_ERROR" and "missing clip.mp4" in event["message"]
    assert not output.exists()


def test_exits_cleanly_when_stdin_closes(backend):
    backend.send({"type": "hello", "protocol": 1})
    backend.next_event()
    assert backend.close(timeout=20) == 0


def test_stdout_carries_protocol_lines_only(backend):
    backend.send({"type": "hello", "protocol": 1})
    backend.send("{oops")
    backend.send({"type": "ping", "id": 1})
    for _ in range(3):
        backend.next_event()
    backend.close()
    assert len(backend.raw_lines) == 3  # every line parsed as JSON in the reader, and nothing else appeared
