"""The add-on's protocol client, task runner and environment helpers against real subprocesses (no bpy needed)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from blender_addon import backend_env, client, tasks
from blender_addon.client import BackendClient, JobOptions, ReconstructionJob
from tests.test_addon_fixtures import REPO_ROOT, make_fake_backend, torch_python


def _job(python: str, tmp_path: Path, **options: object) -> ReconstructionJob:
    opts = JobOptions(input=str(tmp_path / "clip.mp4"), output=str(tmp_path / "out.npz"), **options)
    return ReconstructionJob(BackendClient(python, REPO_ROOT), opts)


def _record(path: Path) -> dict:
    for _ in range(100):  # the fake writes its record as it goes; give it a moment after exit
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"fake backend left no record at {path}")


def _wait_exit(job: ReconstructionJob, timeout: float = 10.0) -> int:
    return job.client.process.wait(timeout=timeout)


def test_successful_job_reports_progress_people_warnings_and_output(tmp_path: Path) -> None:
    result = tmp_path / "fixture.npz"
    result.write_bytes(b"not really a result, only copied")
    python, record = make_fake_backend(tmp_path, "ok", result)
    job = _job(python, tmp_path, frame_start=3, frame_end=9, smoothing=0.25, coherence=False, fov=55.0,
               camera="moving")
    job.start()
    status = job.run()
    assert status.state == "done", status.error
    assert (status.people, status.frames, status.done, status.total) == (3, 12, 2, 2)
    assert status.warnings == ["fake warning"]
    assert status.backend_version == "0.0-fake"
    assert Path(status.output).read_bytes() == result.read_bytes()
    assert _wait_exit(job) == 0  # stdin closed after done: the backend exits
    seen = _record(record)
    assert seen["argv"] == ["-m", "backend", "serve"]
    assert Path(seen["cwd"]) == REPO_ROOT and seen["pythonpath"] == str(REPO_ROOT)
    hello, request = seen["messages"]
    assert hello == {"type": "hello", "protocol": 1}
    assert request == {
        "type": "reconstruct", "id": job.id, "input": str(tmp_path / "clip.mp4"), "output": str(tmp_path / "out.npz"),
        "estimator": None, "body_model": None, "device": None, "frame_start": 3, "frame_end": 9,
        "smoothing": 0.25, "coherence": False, "camera": "moving", "fov": 55.0, "estimator_options": {},
    }  # fmt: skip
    assert seen.get("stdin_closed") is True


def test_stray_stdout_lines_are_logged_not_fatal(tmp_path: Path) -> None:
    result = tmp_path / "fixture.npz"
    result.write_bytes(b"x")
    python, _ = make_fake_backend(tmp_path, "garbage", result)
    job = _job(python, tmp_path)
    job.start()
    assert job.run().state == "done"
    assert "a library printing on stdout" in job.client.stderr_tail


def test_error_event_becomes_the_job_error(tmp_path: Path) -> None:
    python, _ = make_fake_backend(tmp_path, "error")
    job = _job(python, tmp_path)
    job.start()
    status = job.run()
    assert status.state == "error"
    assert status.error == "cannot decode frame 17 of the video" and status.error_code == "INPUT_ERROR"
    assert _wait_exit(job) == 0


@pytest.mark.parametrize("mode", ["crash", "dead"])
def test_backend_that_dies_reports_exit_code_and_stderr(tmp_path: Path, mode: str) -> None:
    python, _ = make_fake_backend(tmp_path, mode)
    job = _job(python, tmp_path)
    job.start()
    status = job.run()
    assert status.state == "error" and status.error_code == "BACKEND_EXIT"
    assert "exit code 3" in status.error
    assert ("out of memory" if mode == "crash" else "torch is not installed") in status.error


def test_missing_interpreter_fails_at_start(tmp_path: Path) -> None:
    job = _job(str(tmp_path / "no" / "python"), tmp_path)
    job.start()
    assert job.status.state == "error" and job.status.error_code == "BACKEND_START"
    assert "not found" in job.status.error


def test_protocol_mismatch_is_refused(tmp_path: Path) -> None:
    python, record = make_fake_backend(tmp_path, "ok", protocol=2)
    job = _job(python, tmp_path)
    job.start()
    status = job.run()
    assert status.state == "error" and status.error_code == "PROTOCOL_MISMATCH"
    assert "protocol 2" in status.error
    _wait_exit(job)
    assert [m["type"] for m in _record(record)["messages"]] == ["hello"]  # no request sent


def test_cancel_stops_a_running_job(tmp_path: Path) -> None:
    python, record = make_fake_backend(tmp_path, "slow")
    job = _job(python, tmp_path)
    job.start()
    deadline = time.monotonic() + 10
    while job.step().done == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.status.state == "running" and job.status.total == 1000
    job.cancel()
    assert job.run().state == "cancelled"
    assert _wait_exit(job) == 0
    assert [m["type"] for m in _record(record)["messages"]] == ["hello", "reconstruct", "cancel"]


def test_cancel_kills_a_backend_that_ignores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "CANCEL_GRACE_S", 0.3)
    python, _ = make_fake_backend(tmp_path, "stubborn")
    job = _job(python, tmp_path)
    job.start()
    while job.step().done == 0:
        time.sleep(0.02)
    job.cancel()
    assert job.run().state == "cancelled"
    assert _wait_exit(job) != 0  # killed


def test_parse_message_tolerates_non_protocol_lines() -> None:
    assert client.parse_message('{"type": "done", "id": "a"}') == {"type": "done", "id": "a"}
    assert client.parse_message("[1, 2]") == {"type": "log", "message": "[1, 2]"}
    assert client.parse_message("plain text") == {"type": "log", "message": "plain text"}


def test_real_backend_answers_hello_and_reports_a_bad_input(tmp_path: Path) -> None:
    """The lead's ``backend serve``: the handshake and a clear error for a missing input, through this client."""
    python = torch_python()
    if python is None or not (REPO_ROOT / "backend" / "app" / "server.py").is_file():
        pytest.skip("needs the backend's interpreter (torch) and backend/app/server.py")
    job = _job(python, tmp_path)
    job.options.input = str(tmp_path / "missing.mp4")
    job.start()
    status = job.run()
    assert status.backend_version, "hello was not answered"
    assert status.state == "error" and status.error_code, status
    assert "missing.mp4" in status.error
    assert not (tmp_path / "out.npz").exists()


# --- the task runner used by the preferences ----------------------------------------------------------------


def test_command_sequence_runs_steps_in_order_and_logs(tmp_path: Path) -> None:
    steps = [tasks.Step(f"step {i}", [sys.executable, "-c", f"print('hello from {i}')"]) for i in range(3)]
    seq = tasks.CommandSequence("demo", steps, tmp_path / "logs" / "demo.log")
    assert seq.run() == "done" and seq.fraction == 1.0
    log = seq.output()
    assert log.index("hello from 0") < log.index("hello from 1") < log.index("hello from 2")
    assert seq.last_line() == "hello from 2"


def test_command_sequence_stops_at_the_first_failure(tmp_path: Path) -> None:
    steps = [
        tasks.Step("good", [sys.executable, "-c", "print('fine')"]),
        tasks.Step("bad", [sys.executable, "-c", "import sys; print('pip: no matching distribution'); sys.exit(2)"]),
        tasks.Step("never", [sys.executable, "-c", "open('ran', 'w')"]),
    ]
    seq = tasks.CommandSequence("install", steps, tmp_path / "install.log", cwd=tmp_path)
    assert seq.run() == "error"
    assert seq.error.startswith("bad failed (exit code 2)") and "no matching distribution" in seq.error
    assert not (tmp_path / "ran").exists()


def test_command_sequence_cancel_terminates_the_running_step(tmp_path: Path) -> None:
    seq = tasks.CommandSequence("sleep", [tasks.Step("sleep", [sys.executable, "-c", "import time; time.sleep(60)"])],
                                tmp_path / "sleep.log")
    seq.start()
    started = time.monotonic()
    seq.cancel()
    assert seq.state == "cancelled" and seq.process.poll() is not None
    assert time.monotonic() - started < 10


def test_environment_commands_install_torch_from_the_chosen_index(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backend_env.TORCH_INDEX_ENV_VAR, raising=False)
    commands = [argv for _label, argv in
                backend_env.create_env_commands("/usr/bin/python3", tmp_path / "venv", "cuda", REPO_ROOT)]
    assert commands[0] == ["/usr/bin/python3", "-m", "venv", str(tmp_path / "venv")]
    torch_step = commands[2]
    assert torch_step[0] == str(backend_env.venv_python(tmp_path / "venv"))
    assert torch_step[-2:] == ["--index-url", backend_env.TORCH_INDEX["cuda"]]
    reqs = backend_env.requirements(REPO_ROOT)
    assert any(r.startswith("torch") for r in reqs) and any(r.startswith("mediapipe") for r in reqs)
    assert torch_step[-3] == next(r for r in reqs if r.startswith("torch"))
    assert commands[3][-len(reqs):] == reqs
    assert commands[4] == backend_env.backend_command(str(backend_env.venv_python(tmp_path / "venv")), "models",
                                                      "install")


def test_torch_index_can_be_a_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend_env.TORCH_INDEX_ENV_VAR, "https://mirror.example/simple")
    torch_step = backend_env.create_env_commands("/usr/bin/python3", tmp_path / "venv", "cpu", REPO_ROOT)[2][1]
    assert torch_step[-2:] == ["--index-url", "https://mirror.example/simple"]


def test_one_requirements_file_serves_python_3_10_to_3_13() -> None:
    """Markers pick one version of each package per Python: mediapipe 0.10.21 up to 3.12 (no 3.13 wheel), 1.2.3 from
    3.13 (only its TFLite schema is used; the models come from the pinned 0.10.21 wheel on every Python)."""
    from packaging.requirements import Requirement

    reqs = [Requirement(line) for line in backend_env.requirements(REPO_ROOT)]
    for minor in (10, 11, 12, 13):
        chosen = [r for r in reqs if r.marker is None or r.marker.evaluate({"python_version": f"3.{minor}"})]
        names = [r.name for r in chosen]
        assert len(names) == len(set(names)) and {"torch", "numpy", "mediapipe", "onnx"} <= set(names)
        mediapipe = next(str(r.specifier) for r in chosen if r.name == "mediapipe")
        assert mediapipe == ("==0.10.21" if minor < 13 else "==1.2.3")


def test_environment_creation_step_makes_a_usable_interpreter(tmp_path: Path) -> None:
    """The first step for real (a venv without pip is quick); the detected interpreter then runs."""
    env_dir = tmp_path / "venv"
    seq = tasks.CommandSequence("venv", [tasks.Step("venv", [sys.executable, "-m", "venv", "--without-pip",
                                                              str(env_dir)])], tmp_path / "venv.log")
    assert seq.run() == "done", seq.output()
    python = backend_env.venv_python(env_dir)
    assert python.is_file()
    assert backend_env.detect_interpreter(tmp_path) == str(python)


def test_interpreter_override_and_subprocess_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend_env.PYTHON_ENV_VAR, sys.executable)
    assert backend_env.detect_interpreter() == sys.executable
    monkeypatch.setenv("PYTHONHOME", "/blender/python")
    env = backend_env.subprocess_env(tmp_path, {"TROUPE_WEIGHTS_DIR": "/w"})
    assert "PYTHONHOME" not in env and env["PYTHONPATH"] == str(tmp_path) and env["TROUPE_WEIGHTS_DIR"] == "/w"
    assert backend_env.backend_root() == REPO_ROOT
