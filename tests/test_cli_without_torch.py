"""The commands that explain what is missing work where torch is not installed: --help and doctor say how to
install it, and reconstruct refuses in one line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_TORCH = """
import runpy, sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
sys.meta_path.insert(0, NoTorch())
sys.argv = ["backend", *sys.argv[1:]]
runpy.run_module("backend", run_name="__main__")
"""


def run_without_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_help_says_how_to_install_torch() -> None:
    run = run_without_torch("--help")
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "torch is not installed" in run.stdout and "pip install -r backend/requirements.txt" in run.stdout


def test_doctor_reports_torch_missing_and_every_estimator() -> None:
    run = run_without_torch("doctor")
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    lines = run.stdout.splitlines()
    torch_line = next(line for line in lines if line.split()[1:2] == ["torch"])
    assert torch_line.startswith("FAIL") and "pip install -r backend/requirements.txt" in torch_line
    assert {"mediapipe-fit", "romp", "bev", "pare", "lasor", "crmh", "dimr"} <= {
        line.split("estimator: ")[1].split()[0] for line in lines if "estimator: " in line}


def test_reconstruct_refuses_in_one_line(shared_data: Path, tmp_path: Path) -> None:
    run = run_without_torch("reconstruct", str(shared_data / "trio_stage.jpg"), "-o", str(tmp_path / "out.npz"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "troupe: error: torch is not installed in this environment: pip install -r backend/requirements.txt in "
        "the backend's environment (in Blender: Create Backend Environment in the add-on's preferences)"]
    assert not (tmp_path / "out.npz").exists()


def test_bench_outside_a_checkout_says_where_the_benchmarks_live(monkeypatch) -> None:
    """The add-on bundles the backend without benchmarks/: ``bench`` says so in one line (it raised
    UnboundLocalError before: the error class was imported after the try)."""
    import argparse
    import sys

    import pytest

    from backend.app import cli
    from backend.errors import OptionError

    monkeypatch.setitem(sys.modules, "benchmarks", None)
    with pytest.raises(OptionError, match="benchmarks/ folder: run this from a checkout"):
        cli._run_bench(argparse.Namespace(rest=[], estimator=None))
