"""Bad requests to the real service (``python -m backend serve`` under a strict UTF-8 locale): each gets exactly
one ``error`` event with its code and one-line message, nothing in the workspace changes, the service keeps
answering, and it exits 0 when stdin closes with no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bad_input import REPO_ROOT, assert_untouched, children_of, snapshot
from tests.test_bad_input_cli import workspace  # noqa: F401 - the same files as the command line's cases


def serve(lines: list[bytes], timeout: float = 60) -> tuple[list[dict], str, int]:
    """Send ``lines`` then a ping, close stdin; (events, stderr, exit code) of the real service."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO_ROOT, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    payload = b"".join(line + b"\n" for line in lines) + b'{"type": "ping", "id": "alive"}\n'
    try:
        out, err = process.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:  # a hung service (the old reader died on one bad byte): none left behind
        process.kill()
        process.communicate()
        raise
    events = [json.loads(line) for line in out.decode("ascii").splitlines()]  # the protocol stream is pure JSON
    return events, err.decode("utf-8", "replace"), process.returncode


def request(**fields: object) -> bytes:
    message = {"type": "reconstruct", "id": "job", "input": "{ws}/photo.jpg", "output": "{ws}/new.npz", **fields}
    return json.dumps({k: v for k, v in message.items() if v is not ...}).encode()


CASES = [
    # (id, the line sent ({ws} is the workspace), error code, the message's expected text)
    ("invalid-utf8-byte", b"\xff", "BAD_REQUEST", "not UTF-8 text: byte 0xff at position 0"),
    ("truncated-utf8", b'{"type": "ping", "id": "\xc3"}', "BAD_REQUEST", "not UTF-8 text: byte 0xc3"),
    ("not-json", b"{not json", "BAD_REQUEST", "not a JSON line"),
    ("json-list", b'["a", "list"]', "BAD_REQUEST", "a request is a JSON object with 'type'"),
    ("json-string", b'"ping"', "BAD_REQUEST", "a request is a JSON object with 'type'"),
    ("no-type", b'{"id": "x"}', "BAD_REQUEST", "a request is a JSON object with 'type'"),
    ("unknown-type", b'{"type": "teleport"}', "UNKNOWN_REQUEST", "unknown request 'teleport'"),
    ("nested-too-deeply", b"[" * 100_000 + b"]" * 100_000, "BAD_REQUEST", "JSON nested too deeply"),
    ("line-over-1-MiB", b'{"type": "ping", "id": "' + b"x" * (1 << 20) + b'"}', "BAD_REQUEST",
     "line longer than 1048576 bytes"),
    ("cancel-without-job", b'{"type": "cancel", "id": "nothing"}', "NO_SUCH_JOB", "no running job to cancel"),
    ("no-output", request(output=...), "BAD_REQUEST", "needs a non-empty string 'output'"),
    ("empty-input", request(input=""), "BAD_REQUEST", "needs a non-empty string 'input'"),
    ("id-not-a-string", request(id=7), "BAD_REQUEST", "needs a non-empty string 'id'"),
    ("unknown-field", request(colour="red"), "BAD_REQUEST", "unknown fields in reconstruct request: colour"),
    ("fov-text", request(fov="wide"), "INVALID_OPTION", "fov must be a finite number, got 'wide'"),
    ("fov-200", request(fov=200), "INVALID_OPTION", "fov must be between 1 and 179 degrees, got 200.0"),
    ("estimator-options-list", request(estimator_options=[1]), "INVALID_OPTION",
     "estimator_options must be an object of option names and values, got [1]"),
    ("estimator-option-unknown", request(estimator_options={"colour": "red"}), "INVALID_OPTION",
     "mediapipe-fit has no option 'colour' (its options: initialiser, depth_order, second_opinion)"),
    ("estimator-option-range", request(estimator="romp", estimator_options={"center_thresh": 3}), "INVALID_OPTION",
     "romp option center_thresh must be between 0.01 and 0.99, got 3"),
    ("focal-infinity", request(focal=float("inf")), "INVALID_OPTION", "focal must be a finite number, got inf"),
    ("focal-nan", request(focal=float("nan")), "INVALID_OPTION", "focal must be a finite number, got nan"),
    ("focal-negative", request(focal=-1), "INVALID_OPTION", "focal must be a positive number of pixels"),
    ("fov-and-focal", request(fov=50, focal=900), "INVALID_OPTION", "either a field of view or a focal length"),
    ("frame-start-text", request(frame_start="abc"), "INVALID_OPTION", "frame_start must be a whole number, got 'abc'"),
    ("frame-start-fraction", request(frame_start=2.5), "INVALID_OPTION", "frame_start must be a whole number, got 2.5"),
    ("frame-start-true", request(frame_start=True), "INVALID_OPTION", "frame_start must be a whole number, got True"),
    ("frame-end-before-start", request(frame_start=9, frame_end=2), "INVALID_OPTION", "the last frame (2) comes"),
    ("coherence-text", request(coherence="no"), "INVALID_OPTION", "coherence must be true or false, got 'no'"),
    ("keep-partial-number", request(keep_partial=1), "INVALID_OPTION", "keep_partial must be true or false, got 1"),
    ("smoothing-true", request(smoothing=True), "INVALID_OPTION", "smoothing must be a finite number, got True"),
    ("smoothing-3", request(smoothing=3), "INVALID_OPTION", "smoothing must be between 0 and 1, got 3.0"),
    ("device-tpu", request(device="tpu"), "INVALID_OPTION", "device must be one of auto, cpu, cuda"),
    ("estimator-number", request(estimator=5), "INVALID_OPTION", "estimator must be a string, got 5"),
    ("relative-output", request(output="new.npz"), "BAD_REQUEST", "output 'new.npz' is relative"),
    ("relative-input", request(input="photo.jpg"), "BAD_REQUEST", "input 'photo.jpg' is relative"),
    ("relative-base", request(output="new.npz", base="here"), "BAD_REQUEST", "'base' must be an absolute folder"),
    ("input-missing", request(input="{ws}/gone.mp4"), "INPUT_ERROR", "input not found: {ws}/gone.mp4"),
    ("output-is-input", request(output="{ws}/photo.jpg"), "RESULT_ERROR", "output {ws}/photo.jpg is the input"),
    ("output-is-input-via-base", request(output="clip.avi", input="clip.avi", base="{ws}"), "RESULT_ERROR",
     "output {ws}/clip.avi is the input itself"),
    ("output-is-a-folder", request(output="{ws}/a folder"), "RESULT_ERROR", "output is a folder, not a file"),
    ("output-below-a-file", request(output="{ws}/notes.txt/r.npz"), "RESULT_ERROR", "a part of the path is a file"),
]


@pytest.mark.parametrize("line, code, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_one_error_and_the_service_lives_on(workspace: Path, line: bytes, code: str,
                                                          expected: str) -> None:
    before = snapshot(workspace)
    events, stderr, exit_code = serve([line.replace(b"{ws}", str(workspace).encode())])
    assert [e["type"] for e in events] == ["error", "pong"], events
    assert events[0]["code"] == code
    assert expected.format(ws=workspace) in events[0]["message"]
    assert "\n" not in events[0]["message"] and "Traceback" not in stderr, stderr
    assert exit_code == 0
    assert_untouched(workspace, before)
    assert children_of(os.getpid()) == []


def test_bad_lines_in_a_row_each_get_their_answer(workspace: Path) -> None:
    """The reader survives every bad line: three in a row, then the ping is still answered, in order."""
    events, _, exit_code = serve([b"\xff\xfe", b"{oops", request(fov="wide").replace(b"{ws}", bytes(workspace))])
    assert [e.get("code", e["type"]) for e in events] == ["BAD_REQUEST", "BAD_REQUEST", "INVALID_OPTION", "pong"]
    assert exit_code == 0
