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


def test_reconstructs_a_real_image_with_progress_and_a_valid_result(backend, shared_data, tmp_path):
    from backend.result.contract import read_result

    output = tmp_path / "résultat final.npz"
    backend.send({"type": "reconstruct", "id": "img", "input": str(shared_data / "football_player_b.jpg"),
                  "output": str(output), "smoothing": 0})  # fmt: skip
    events = []
    while not events or events[-1]["type"] not in ("done", "error", "cancelled"):
        events.append(backend.next_event(timeout=120))
    done = events[-1]
    assert done["type"] == "done", done
    assert any(e["type"] == "progress" and e["done"] == e["total"] == 1 for e in events)
    data = read_result(done["output"])
    assert done["people"] == len(data["track_id"]) >= 1


def test_second_request_is_refused_while_busy_and_cancel_writes_nothing(backend, shared_data, tmp_path):
    output = tmp_path / "dancer.npz"
    request = {"type": "reconstruct", "id": "clip", "input": str(shared_data / "dancer_1080p.mp4"), "output": str(output)}
    backend.send(request)
    first = backend.wait_for("progress")
    assert first["id"] == "clip" and first["total"] == 300
    backend.send({**request, "id": "second", "output": str(tmp_path / "second.npz")})
    refused = backend.wait_for("error")
    assert refused["id"] == "second" and refused["code"] == "BUSY"
    backend.send({"type": "cancel", "id": "clip"})
    assert backend.wait_for("cancelled", "done", "error") == {"type": "cancelled", "id": "clip"}
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no result, no temporary file
    backend.send({"type": "ping", "id": "after"})
    assert backend.wait_for("pong")["id"] == "after"


def test_closing_stdin_mid_job_stops_the_backend_without_leaving_files(shared_data, tmp_path):
    process = BackendProcess()
    process.send({"type": "reconstruct", "id": "clip", "input": str(shared_data / "dancer_1080p.mp4"),
                  "output": str(tmp_path / "out.npz")})  # fmt: skip
    process.wait_for("progress")
    assert process.close(timeout=60) == 0
    assert list(tmp_path.iterdir()) == []
