"""Regression tests of the bad-input audit (issue 15) that need a whole run, a killed writer or a large picture:
a write that fails at the end is one RESULT_ERROR line and the good file survives, partial results keep every
decoded frame and never replace a result with an empty one, results get the umask's mode, a killed writer's
temporary file is removed by the next write, large pictures are found at a bounded size and reported in their
own pixels, and pure noise gives nobody."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.result.contract import read_result, write_result
from tests.bad_input import REPO_ROOT, run_troupe, snapshot, the_error_line
from tests.test_result import minimal_result


@pytest.fixture(scope="module")
def picture(tmp_path_factory, shared_data: Path) -> Path:
    """A small real photo of one player, and the caches warmed by one whole run (later runs write no cache)."""
    folder = tmp_path_factory.mktemp("picture")
    image = cv2.imread(str(shared_data / "football_player_b.jpg"))
    scale = 320 / max(image.shape[:2])
    path = folder / "player.jpg"
    cv2.imwrite(str(path), cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    warm = run_troupe("reconstruct", path, "-o", folder / "warm.npz", "--quiet", timeout=300)
    assert warm.returncode == 0, warm.stderr
    return path


def _full_disk() -> None:
    """In the child: every regular file may hold 1 byte at most (a full disk's ENOSPC, as EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))


def test_a_full_disk_is_one_result_error_and_the_good_file_survives(tmp_path: Path) -> None:
    """The writer in a real process whose files may hold one byte: one line, no traceback (the zip object numpy
    left open used to fail again when collected: 'ValueError: seek of closed file'), the old file intact."""
    good = write_result(tmp_path / "result.npz", minimal_result())
    before = snapshot(tmp_path)
    code = ("import sys; from backend.result.contract import write_result, ResultFileError\n"
            "from tests.test_result import minimal_result\n"
            "try:\n    write_result(sys.argv[1], minimal_result(people=3))\n"
            "except ResultFileError as exc:\n    print(exc, file=sys.stderr); sys.exit(1)\n")
    result = subprocess.run([sys.executable, "-c", code, str(good)], cwd=REPO_ROOT, capture_output=True, text=True,
                            preexec_fn=_full_disk, timeout=60)
    assert result.returncode == 1
    assert result.stderr == f"cannot write the result file {good}: File too large\n"
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_write_failing_at_the_end_of_a_run_is_one_result_error_and_the_good_file_survives(picture: Path,
                                                                                           tmp_path: Path) -> None:
    good = write_result(tmp_path / "result.npz", minimal_result())
    before = snapshot(tmp_path)
    result = run_troupe("reconstruct", picture, "-o", good, "--quiet", preexec_fn=_full_disk, timeout=300)
    assert result.returncode == 1, result.stderr
    assert the_error_line(result.stderr) == f"troupe: error: cannot write the result file {good}: File too large"
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_results_get_the_mode_the_umask_gives(picture: Path, tmp_path: Path) -> None:
    output = tmp_path / "result.npz"
    result = run_troupe("reconstruct", picture, "-o", output, "--quiet", preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    assert output.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("umask, existing, expected", [(0o022, None, 0o644), (0o077, None, 0o600),
                                                       (0o002, None, 0o664), (0o077, 0o640, 0o640)])
def test_write_result_respects_the_umask_or_the_replaced_file(tmp_path: Path, umask: int, existing: int | None,
                                                              expected: int) -> None:
    path = tmp_path / "r.npz"
    if existing is not None:
        path.write_bytes(b"old")
        path.chmod(existing)
    previous = os.umask(umask)
    try:
        write_result(path, minimal_result())
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == expected


@pytest.mark.slow
def test_keep_partial_keeps_the_frames_before_a_corrupt_image_and_never_writes_an_empty_result(
        picture: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(picture, folder / "a.jpg")
    (folder / "b.jpg").write_bytes(picture.read_bytes()[:200])  # truncated: the header reads, the pixels do not
    good = write_result(tmp_path / "result.npz", minimal_result(frames=3))
    kept = run_troupe("reconstruct", folder, "-o", good, "--quiet", "--keep-partial", timeout=300)
    assert kept.returncode == 0, kept.stderr
    assert "partial result" in kept.stderr and "b.jpg" in kept.stderr
    data = read_result(good)
    assert int(data["num_frames"]) == 1 and len(data["track_id"]) >= 1  # before: 0 frames, 0 people


def test_keep_partial_with_no_frame_decoded_leaves_the_old_result(tmp_path: Path, monkeypatch) -> None:
    """A source that fails on its first frame: nothing to keep, so the error stands and the old file stays."""
    from backend import pipeline
    from backend.sources.frames import Source, SourceError, SourceInfo

    class Broken(Source):
        def frames(self):
            raise SourceError("frame 0 of clip.mp4 cannot be decoded")
            yield  # noqa: unreachable - a generator

    class NoPeople:  # the estimator never gets a frame here; a stand-in spares loading the real one
        name = "mediapipe-fit"

        def estimate(self, frames, camera, found=None):
            return [[] for _ in frames]

        def close(self) -> None:
            pass

    monkeypatch.setattr(pipeline, "open_source", lambda *a: Broken(SourceInfo(Path("clip.mp4"), "video", 64, 48,
                                                                               25.0, 5, 0)))
    monkeypatch.setattr(pipeline, "create_estimator", lambda *a, **k: NoPeople())
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"stand-in")
    good = write_result(tmp_path / "result.npz", minimal_result())
    before = good.read_bytes()
    with pytest.raises(SourceError, match="frame 0"):
        pipeline.reconstruct(source, good, pipeline.ReconstructOptions(keep_partial=True))
    assert good.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "result.npz"]


def test_chunks_yield_every_frame_read_before_a_damaged_one(tmp_path: Path) -> None:
    """9 decodable frames of a truncated clip in chunks of 8: all 9 come out before the error."""
    from backend.sources.frames import SourceError, open_source

    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(20)]
    for frame in frames:
        writer.write(frame)
    writer.release()
    data = clip.read_bytes()
    decodable = 0
    for cut in range(len(data), 0, -97):  # the longest prefix holding exactly 9 decodable frames
        clip.write_bytes(data[:cut])
        capture = cv2.VideoCapture(str(clip))
        decodable = 0
        while capture.read()[0]:
            decodable += 1
        capture.release()
        if decodable == 9:
            break
    assert decodable == 9
    seen = []
    with pytest.raises(SourceError, match="cannot be decoded"):
        for chunk in open_source(clip).chunks(8):
            seen.extend(index for index, _ in chunk)
    assert seen == list(range(9))


def test_a_killed_writers_part_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "result.npz"
    code = ("import sys, time; from backend.runtime.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half'); print(tmp, flush=True); time.sleep(60)\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    parts = [Path(writer.stdout.readline().strip()) for writer in writers]
    try:
        assert all(part.name.endswith(f".{writer.pid}.part") for part, writer in zip(parts, writers))
        writers[0].kill()
        writers[0].wait(timeout=10)
        write_result(target, minimal_result())
        assert not parts[0].exists(), "the killed writer's part is still there"
        assert parts[1].exists(), "a running writer's part was removed"
    finally:
        writers[1].kill()
        writers[1].wait(timeout=10)
    write_result(target, minimal_result())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.npz"]


# --- large pictures -------------------------------------------------------------------------------------------


def _jpeg_with_size(path: Path, width: int, height: int) -> Path:
    """A real 16 x 16 JPEG whose frame header is edited to claim ``width`` x ``height`` (nothing is decoded)."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def _png_with_size(path: Path, width: int, height: int) -> Path:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + body)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("make, width, height, expected", [
    (_png_with_size, 8000, 6000, "image is too large: 8000 x 6000 pixels (48 MP; at most 40 MP for non-JPEG"),
    (_jpeg_with_size, 16000, 10000, "image is too large: 16000 x 10000 pixels (160 MP; at most 150 MP for JPEG"),
    (_jpeg_with_size, 60000, 60000, "image is too large (over 150 MP)"),
], ids=["png-48-MP", "jpeg-160-MP", "jpeg-3600-MP"])
def test_pictures_over_the_limit_are_refused_from_their_header(tmp_path: Path, make, width: int, height: int,
                                                               expected: str) -> None:
    from backend.sources.frames import SourceError, open_source

    path = make(tmp_path / ("big.png" if make is _png_with_size else "big.jpg"), width, height)
    with pytest.raises(SourceError) as refused:
        open_source(path)
    assert expected in str(refused.value) and path.name in str(refused.value)


def test_large_jpeg_is_decoded_at_a_bounded_size_and_reported_in_its_own_pixels(tmp_path: Path) -> None:
    from backend.geometry.camera import Camera
    from backend.pipeline import ReconstructOptions, _camera_for
    from backend.result.assembly import _in_full_size_pixels
    from backend.sources.frames import MAX_SIDE, open_source

    image = np.zeros((4000, 9000, 3), np.uint8)
    cv2.circle(image, (4500, 2000), 900, (255, 255, 255), -1)
    path = tmp_path / "wide.jpg"
    cv2.imwrite(str(path), image)
    source = open_source(path)
    info = source.info
    assert (info.width, info.height, info.full_width, info.full_height) == (MAX_SIDE, 1707, 9000, 4000)
    (_, frame), = source.frames()
    assert frame.shape == (1707, MAX_SIDE, 3) and frame[853, 1920].min() > 200  # the disc, scaled down

    camera = _camera_for(info, ReconstructOptions(focal=9000.0))  # the user's focal, in the picture's pixels
    assert camera.fx == pytest.approx(9000.0 * info.scale)
    arrays = {"image_size": np.array([info.width, info.height]), "focal_length": np.array([camera.fx, camera.fy]),
              "principal_point": np.array([camera.cx, camera.cy]),
              "joints2d": camera.project(np.array([[[0.5, -0.2, 4.0]]])).astype(np.float32)}
    full = _in_full_size_pixels(arrays, info)
    assert full["image_size"].tolist() == [9000, 4000]
    assert full["focal_length"] == pytest.approx([9000.0, 9000.0])
    same_lens = Camera(9000, 4000, *full["focal_length"], *full["principal_point"])
    assert full["joints2d"][0, 0] == pytest.approx(same_lens.project(np.array([0.5, -0.2, 4.0])), abs=1e-2)


@pytest.mark.slow
def test_pure_noise_gives_nobody(tmp_path: Path) -> None:
    """30 frames of uniform noise: no person may be invented (issue 15, item 12; this did not reproduce on the
    code of the issue's revision either, the test keeps it so)."""
    rng = np.random.default_rng(12)
    clip = tmp_path / "noise.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(30):
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    started = time.perf_counter()
    result = run_troupe("reconstruct", clip, "-o", tmp_path / "noise.npz", "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "no people found in 30 frame(s)" in result.stderr, time.perf_counter() - started
    data = read_result(tmp_path / "noise.npz")
    assert len(data["track_id"]) == 0 and int(data["num_frames"]) == 30
