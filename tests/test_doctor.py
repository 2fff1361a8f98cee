"""``python -m backend doctor`` on this machine: the default pipeline is usable, and missing pieces say why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def doctor(weights_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TROUPE_WEIGHTS_DIR": str(weights_dir)}
    return subprocess.run([sys.executable, "-m", "backend", "doctor"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def line_of(report: str, name: str) -> str:
    return next(line for line in report.splitlines() if f" {name} " in f"{line} ")


def test_default_pipeline_is_ready_and_missing_weights_are_explained(tmp_path):
    result = doctor(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert line_of(result.stdout, "mediapipe-fit").startswith("ok")
    assert line_of(result.stdout, "open-body").startswith("ok")
    romp = line_of(result.stdout, "estimator: romp")
    assert romp.startswith("--") and "ROMP.pkl" in romp and "weights install romp-hrnet32" in romp
    assert "the default pipeline (mediapipe-fit, open-body) can run" in result.stdout


def test_installed_checkpoint_makes_the_estimator_ready(tmp_path):
    (tmp_path / "BEV.pth").write_bytes(b"checked when installed; doctor only looks for it")
    assert line_of(doctor(tmp_path).stdout, "estimator: bev").startswith("ok")


def test_default_estimator_needs_the_shipped_lasor_weights(monkeypatch, tmp_path):
    import backend.lasor.train as lasor_train
    from backend.app.doctor import _estimator_weights
    from backend.estimators.catalog import estimator_info

    default = estimator_info("mediapipe-fit")
    assert _estimator_weights(default) == (True, f"shipped LASOR weights {lasor_train.DEFAULT_WEIGHTS.name}")
    monkeypatch.setattr(lasor_train, "DEFAULT_WEIGHTS", tmp_path / "gone.pt")
    ok, detail = _estimator_weights(default)
    assert not ok and "shipped LASOR weights missing" in detail


def test_doctor_says_where_the_mediapipe_models_came_from_or_how_to_install_them(tmp_path):
    line = line_of(doctor(tmp_path).stdout, "mediapipe models")
    assert line.startswith("ok") and "pose_detector" in line and "from mediapipe-0.10.21-" in line
    assert "sha256-checked" in line and "Apache-2.0" in line
    env = {**os.environ, "TROUPE_WEIGHTS_DIR": str(tmp_path), "TROUPE_MODELS_DIR": str(tmp_path / "no-models")}
    missing = subprocess.run([sys.executable, "-m", "backend", "doctor"], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    line = line_of(missing.stdout, "mediapipe models")
    assert line.startswith("FAIL") and "python -m backend models install --from mediapipe-0.10.21-" in line
