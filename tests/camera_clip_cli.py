"""The command line on a synthetic camera clip (``backend.evaluation.camera_clip``), for the end-to-end camera
tests (tests/test_camera_motion.py, tests/test_camera_focal.py): the frames written as an mp4, reconstructed by a
real ``python -m backend reconstruct`` subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

from backend.evaluation.camera_clip import CameraClip
from backend.result.contract import read_result

REPO_ROOT = Path(__file__).resolve().parents[1]


def reconstruct_clip(clip: CameraClip, folder: Path, *options: str) -> tuple[dict, subprocess.CompletedProcess]:
    """The result the command line writes for ``clip`` (with ``options``) and the finished process; fails the test
    with the end of its stderr when the command fails."""
    video = folder / "pan.mp4"
    size = (clip.camera.width, clip.camera.height)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for frame in clip.frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    out = folder / "pan.npz"
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(video), "-o", str(out), "--quiet",
                           *options], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return read_result(out), proc
