"""Bad input on the real command line: one clear line on stderr, a non-zero exit, and nothing half-written."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.result.contract import read_result

REPO_ROOT = Path(__file__).resolve().parents[1]


def troupe(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend", *map(str, args)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("troupe:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.mp4", None, "input not found"),
        ("empty.png", b"", "empty file"),
        ("bad.mp4", b"\x00" * 4096, "corrupt"),
    ],
)
def test_unreadable_inputs(tmp_path, name, content, expected):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    result = troupe("reconstruct", source, "-o", tmp_path / "out.npz", "--quiet")
    assert result.returncode == 1
    assert expected in error_line(result) and source.name in error_line(result)
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--estimator", "nope"], "unknown estimator 'nope'; available: "),
        (["--estimator", "crmh"], "not available"),
        (["--estimator", "romp"], "ROMP.pkl not found"),
        (["--estimator", "romp", "--fit-init", "lasor"], "romp has no option 'initialiser' (its options: backbone, center_thresh, precision)"),
        (["--body-model", "smpl-neutral"], "smpl-neutral is not installed"),
        (["--device", "cuda"], "CUDA was requested"),
        (["--fov", "200"], "between 1 and 179"),
    ],
)
def test_unusable_options_name_the_problem(shared_data, tmp_path, options, expected):
    if options == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA, so asking for it is not an error")
    result = troupe("reconstruct", shared_data / "football_player_b.jpg", "-o", tmp_path / "o.npz", *options)
    assert result.returncode == 1
    assert expected in error_line(result)
    assert not (tmp_path / "o.npz").exists()


def test_video_without_people_gives_an_empty_result_and_says_so(tmp_path):
    ramp = np.linspace(0, 255, 320, dtype=np.uint8)
    frames = [np.dstack([np.tile(ramp, (240, 1)), np.full((240, 320), 120 + i, np.uint8), np.tile(ramp[::-1], (240, 1))])
              for i in range(6)]  # fmt: skip
    video = write_video(tmp_path / "sky.avi", frames)
    result = troupe("reconstruct", video, "-o", tmp_path / "sky.npz", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "no people found in 6 frame(s)" in result.stderr
    data = read_result(tmp_path / "sky.npz")
    assert data["track_id"].shape == (0,) and int(data["num_frames"]) == 6


def test_non_ascii_paths_with_spaces_and_a_folder_of_mixed_files(shared_data, tmp_path):
    folder = tmp_path / "Équipe été 2026"
    folder.mkdir()
    shutil.copy(shared_data / "football_player_b.jpg", folder / "joueur n°1.jpg")
    (folder / "lisez-moi.txt").write_text("pas une image")
    output = tmp_path / "résultats finaux" / "scène 1.npz"
    result = troupe("reconstruct", folder, "-o", output, "--quiet")
    assert result.returncode == 0, result.stderr
    data = read_result(output)
    assert int(data["num_frames"]) == 1 and len(data["track_id"]) >= 1
    native_noise = [line for line in result.stderr.splitlines() if line[:5] in ("W0000", "I0000", "INFO:")]
    assert native_noise == [], "MediaPipe's native log lines reached the terminal"


def test_truncated_video_fails_cleanly_or_keeps_the_decoded_part_when_asked(shared_data, tmp_path):
    frames = [cv2.resize(frame, (480, 270)) for _, frame in _first_frames(shared_data / "dancer_1080p.mp4", 24)]
    clip = write_video(tmp_path / "clip.avi", frames)
    truncated = tmp_path / "cut short.avi"
    truncated.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.6)])

    failed = troupe("reconstruct", truncated, "-o", tmp_path / "a.npz", "--quiet")
    assert failed.returncode == 1
    assert "cannot be decoded" in error_line(failed) and "cut short.avi" in error_line(failed)
    assert not (tmp_path / "a.npz").exists()

    kept = troupe("reconstruct", truncated, "-o", tmp_path / "b.npz", "--quiet", "--keep-partial")
    assert kept.returncode == 0, kept.stderr
    assert "partial result" in kept.stderr
    data = read_result(tmp_path / "b.npz")
    assert 0 < int(data["num_frames"]) < 24
    assert len(data["track_id"]) == 1  # the dancer, in the frames that decoded


@pytest.mark.parametrize("keep_partial", [False, True])
def test_ctrl_c_cancels_and_writes_nothing_unless_asked(shared_data, tmp_path, keep_partial):
    output = tmp_path / "dancer.npz"
    args = [sys.executable, "-m", "backend", "reconstruct", str(shared_data / "dancer_1080p.mp4"), "-o", str(output)]
    process = subprocess.Popen(
        args + (["--keep-partial"] if keep_partial else []),
        cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_frames(process)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=120)[1]
    if keep_partial:
        assert process.returncode == 0, stderr
        assert 0 < int(read_result(output)["num_frames"]) < 300
    else:
        assert process.returncode == 130, stderr
        assert "nothing written" in stderr
        assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["dancer.npz"] if keep_partial else [])  # no temp file


def _wait_for_frames(process: subprocess.Popen, timeout: float = 120) -> None:
    """Read the progress bar until at least one chunk of frames is done."""
    deadline = time.monotonic() + timeout
    buffer = ""
    while time.monotonic() < deadline:
        char = process.stderr.read(1)
        if not char:
            raise AssertionError(f"backend ended before any progress:\n{buffer}")
        buffer += char
        if "people=" in buffer[-200:] and "| 0/" not in buffer[-60:]:
            return
    raise AssertionError("no progress within the timeout")


def _first_frames(path: Path, count: int):
    from backend.sources.frames import open_source

    return open_source(path, frame_end=count - 1).frames()
