"""The add-on's *Create Environment* recipe on Python 3.13 (what Blender 5.1-5.3 bundle), for real: a venv, pip
from the package registries, the models by name, then the default estimator on a real photo in that environment.

The commands are the add-on's own (``backend_env.create_env_commands``), run by the add-on's own task runner
(``tasks.CommandSequence``) from the source checkout, as the button does. One difference, by its documented
setting: PyTorch's index cannot be reached from CI machines, so ``$TROUPE_TORCH_INDEX_URL`` (default here: PyPI)
gives the same torch version from the package registry (a CUDA build on Linux: about 4.7 GB, ~2 minutes here).

Minutes, and network: ``dev.py test`` runs it as a step of its own, beside the main suite (marker
``python313_env``). The interpreter is
``$TROUPE_TEST_PYTHON313``, else ``python3.13`` on PATH, else pyenv's 3.13.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from backend.result.contract import read_result
from blender_addon import backend_env, tasks

REPO_ROOT = Path(__file__).resolve().parents[1]
PHOTO = "football_player_a.jpg"  # two players in the labels (and a third body, on 3.11 alike)

pytestmark = [pytest.mark.slow, pytest.mark.python313_env]


def python313() -> str | None:
    """A real Python 3.13 executable (pyenv's shims resolved), or None."""
    candidates: list[tuple[str, dict[str, str]]] = []
    if os.environ.get("TROUPE_TEST_PYTHON313"):
        candidates.append((os.environ["TROUPE_TEST_PYTHON313"], {}))
    candidates.append(("python3.13", {}))
    if shutil.which("pyenv"):
        listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
        candidates += [("python3.13", {"PYENV_VERSION": v}) for v in listed if v.startswith("3.13")]
    for command, extra in candidates:
        try:
            probe = subprocess.run([command, "-c", "import sys; print(sys.version_info[:2] == (3, 13)); "
                                    "print(sys.executable)"], capture_output=True, text=True, timeout=60,
                                   env={**os.environ, **extra})
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = probe.stdout.split("\n")
        if probe.returncode == 0 and lines[0] == "True":
            return lines[1]
    return None


@pytest.fixture
def env_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the environment goes (several GB: removed afterwards); pip's cache off, so nothing lands in $HOME."""
    monkeypatch.setenv(backend_env.TORCH_INDEX_ENV_VAR,
                       os.environ.get(backend_env.TORCH_INDEX_ENV_VAR, "https://pypi.org/simple"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    folder = Path(tempfile.mkdtemp(prefix="troupe-py313-"))
    yield folder / "venv"
    shutil.rmtree(folder, ignore_errors=True)


def test_create_environment_on_python_3_13_reconstructs_a_photo(env_dir: Path, shared_data: Path) -> None:
    base = python313()
    if base is None:
        pytest.fail("Python 3.13 not found: install it (Blender 5.1+ bundles it) or set TROUPE_TEST_PYTHON313")
    steps = [tasks.Step(label, argv) for label, argv in
             backend_env.create_env_commands(base, env_dir, "cpu", backend_env.backend_root())]
    created = tasks.CommandSequence("Create Environment", steps, env_dir.parent / "create.log",
                                    cwd=backend_env.backend_root())
    assert created.run() == "done", created.output()[-4000:]
    python = str(backend_env.venv_python(env_dir))
    env = backend_env.subprocess_env(REPO_ROOT)

    doctor = subprocess.run(backend_env.backend_command(python, "doctor"), capture_output=True, text=True, env=env,
                            cwd=REPO_ROOT, timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = {line[5:32].strip(): line for line in doctor.stdout.splitlines() if line[:4] in ("ok  ", "FAIL", "--  ")}
    assert lines["python"].startswith("ok   python                     3.13.")
    assert lines["mediapipe"].startswith("ok") and " 1.2.3 " in lines["mediapipe"]
    assert lines["mediapipe models"].startswith("ok") and "from mediapipe-0.10.21-" in lines["mediapipe models"]

    output = env_dir.parent / "photo.npz"
    run = subprocess.run(backend_env.backend_command(python, "reconstruct", str(shared_data / PHOTO), "-o",
                                                     str(output)), capture_output=True, text=True, env=env,
                         cwd=REPO_ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    result = read_result(output)
    assert str(result["estimator"]) == "mediapipe-fit" and int(result["num_frames"]) == 1
    assert len(result["track_id"]) >= 2  # both players
