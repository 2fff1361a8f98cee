"""Bad input on the real command line, refused before any work: the exit code, one specific line, no traceback,
every file of the workspace as it was (the input and an existing result byte for byte, no stray part) and no
process left behind. These are refused before torch is imported, so each case takes a fraction of a second."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.result.contract import write_result
from tests.bad_input import assert_untouched, children_of, run_troupe, snapshot, the_error_line
from tests.test_result import minimal_result


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A photo, a short clip, a folder of frames and a good earlier result."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.jpg"), image)
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(image)
    writer.release()
    (tmp_path / "frames").mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(tmp_path / "photo.jpg", tmp_path / "frames" / name)
    write_result(tmp_path / "good.npz", minimal_result())
    (tmp_path / "a folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder")
    os.symlink(tmp_path / "photo.jpg", tmp_path / "link.jpg")
    os.link(tmp_path / "clip.avi", tmp_path / "hard.avi")
    return tmp_path


def _options(*extra: str) -> tuple:
    return ("{ws}/photo.jpg", "-o", "{ws}/good.npz", *extra)


CASES = [
    # (id, arguments ({ws} is the workspace), exit code, the line's expected text)
    ("focal-nan", _options("--focal", "nan"), 1, "--focal must be a finite number, got nan"),
    ("focal-inf", _options("--focal", "inf"), 1, "--focal must be a finite number, got inf"),
    ("focal-minus-inf", _options("--focal=-inf"), 1, "--focal must be a finite number, got -inf"),
    ("focal-zero", _options("--focal", "0"), 1, "--focal must be a positive number of pixels"),
    ("focal-negative", _options("--focal=-500"), 1, "--focal must be a positive number of pixels"),
    ("focal-huge", _options("--focal", "1e9"), 1, "--focal must be a positive number of pixels up to 1e+06"),
    ("focal-text", _options("--focal", "wide"), 2, "argument --focal: invalid float value: 'wide'"),
    ("fov-nan", _options("--fov", "nan"), 1, "--fov must be a finite number, got nan"),
    ("fov-200", _options("--fov", "200"), 1, "--fov must be between 1 and 179 degrees, got 200.0"),
    ("fov-zero", _options("--fov", "0"), 1, "--fov must be between 1 and 179 degrees, got 0.0"),
    ("fov-and-focal", _options("--fov", "50", "--focal", "900"), 1, "give either a field of view or a focal length, not both"),
    ("smoothing-2", _options("--smoothing", "2"), 1, "--smoothing must be between 0 and 1, got 2.0"),
    ("smoothing-nan", _options("--smoothing", "nan"), 1, "--smoothing must be a finite number, got nan"),
    ("smoothing-negative", _options("--smoothing=-0.1"), 1, "--smoothing must be between 0 and 1, got -0.1"),
    ("start-negative", _options("--start=-1"), 1, "--start must be a frame number from 0 to 10000000, got -1"),
    ("start-text", _options("--start", "abc"), 2, "argument --start: invalid int value: 'abc'"),
    ("end-before-start", _options("--start", "5", "--end", "3"), 1, "the last frame (3) comes before the first (5)"),
    ("end-huge", _options("--end", "99999999999"), 1, "--end must be a frame number from 0 to 10000000"),
    ("estimator-empty", _options("--estimator", ""), 1, "--estimator must be a non-empty name, got ''"),
    ("body-model-blank", _options("--body-model", "  "), 1, "--body-model must be a non-empty name"),
    ("device-tpu", _options("--device", "tpu"), 1, "--device must be one of auto, cpu, cuda (or cuda:N), got 'tpu'"),
    ("input-missing", ("{ws}/nothing.mp4", "-o", "{ws}/good.npz"), 1, "input not found: {ws}/nothing.mp4"),
    ("output-is-the-image", ("{ws}/photo.jpg", "-o", "{ws}/photo.jpg"), 1, "output {ws}/photo.jpg is the input"),
    ("output-is-the-video", ("{ws}/clip.avi", "-o", "{ws}/clip.avi"), 1, "output {ws}/clip.avi is the input itself"),
    ("output-is-a-symlink-to-input", ("{ws}/photo.jpg", "-o", "{ws}/link.jpg"), 1, "is the input itself"),
    ("input-is-a-symlink-to-output", ("{ws}/link.jpg", "-o", "{ws}/photo.jpg"), 1, "is the input itself"),
    ("output-is-a-hard-link-to-input", ("{ws}/clip.avi", "-o", "{ws}/hard.avi"), 1, "is the input itself"),
    ("output-relative-input-absolute", ("{ws}/clip.avi", "-o", "clip.avi"), 1, "output clip.avi is the input"),
    ("output-is-a-frame-of-the-folder", ("{ws}/frames", "-o", "{ws}/frames/b.jpg"), 1, "is the input itself"),
    ("output-is-a-folder", ("{ws}/photo.jpg", "-o", "{ws}/a folder"), 1, "output is a folder, not a file"),
    ("output-below-a-file", ("{ws}/photo.jpg", "-o", "{ws}/notes.txt/r.npz"), 1,
     "cannot write the output {ws}/notes.txt/r.npz: a part of the path is a file, not a folder"),
    ("output-is-a-device", ("{ws}/photo.jpg", "-o", "/dev/null"), 1, "output exists and is not a regular file"),
]


@pytest.mark.parametrize("args, code, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_refused_before_any_work(workspace: Path, args: tuple, code: int, expected: str) -> None:
    before = snapshot(workspace)
    result = run_troupe("reconstruct", *(a.format(ws=workspace) for a in args), "--quiet", cwd=workspace,
                        timeout=60)
    assert result.returncode == code, result.stderr
    assert expected.format(ws=workspace) in the_error_line(result.stderr)
    assert_untouched(workspace, before)
    assert children_of(os.getpid()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_the_run(workspace: Path) -> None:
    locked = workspace / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_troupe("reconstruct", workspace / "photo.jpg", "-o", locked / "r.npz", timeout=60)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1
    assert f"cannot write the output {locked / 'r.npz'}: Permission denied" in the_error_line(result.stderr)
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_filesystem_that_takes_no_files_is_refused_before_the_run(workspace: Path) -> None:
    result = run_troupe("reconstruct", workspace / "photo.jpg", "-o", "/proc/troupe-result.npz", timeout=60)
    assert result.returncode == 1
    assert "cannot write the output /proc/troupe-result.npz" in the_error_line(result.stderr)


def test_an_unlabelled_picture_for_the_evaluation_is_refused_by_name(tmp_path: Path) -> None:
    """``eval-people --only`` with a name the labels do not have: one line naming it and the labelled ones."""
    result = run_troupe("eval-people", "--only", "nobody here.jpg", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    line = the_error_line(result.stderr)
    assert "no labels for nobody here.jpg" in line and "group7_walk.jpg" in line
