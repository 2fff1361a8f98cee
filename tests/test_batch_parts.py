"""The batch's parts that need no Ray: inputs to clips, chunk ranges, stitching chunk results, the manifest's
idea of complete, option checks, and the one line without Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.batch.chunks import check_chunking, chunk_ranges
from backend.batch.inputs import expand_inputs, input_fingerprint
from backend.batch.manifest import DONE, ClipEntry, Manifest, options_hash
from backend.batch.stitch import stitch_results
from backend.errors import BatchError, OptionError, SourceError
from backend.result.contract import validate

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_inputs_from_files_folders_and_lists(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    (shoot / "take_frames").mkdir(parents=True)
    for name in ("a.mp4", "b.jpg", "notes.md", "take_frames/0001.png"):
        (shoot / name).write_bytes(b"x")
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.mp4").write_bytes(b"y")
    listing = tmp_path / "list.txt"
    listing.write_text("# the second camera\nother/a.mp4\n\nshoot/b.jpg\n")
    clips = expand_inputs([shoot, listing])
    sources = [clip.source for clip in clips]
    assert sources == [(shoot / "a.mp4").resolve(), (shoot / "b.jpg").resolve(), (shoot / "take_frames").resolve(),
                       (other / "a.mp4").resolve()]  # notes.md skipped, b.jpg once, the image folder one clip
    names = [clip.name for clip in clips]
    assert names[1:3] == ["b", "take_frames"] and len(set(names)) == 4
    assert names[0].startswith("a-") and names[3].startswith("a-")  # same stem: told apart by the path's hash
    assert expand_inputs([shoot, listing])[0].name == names[0]  # stable from run to run


def test_missing_inputs_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="input not found"):
        expand_inputs([tmp_path / "nope.mp4"])
    listing = tmp_path / "list.txt"
    listing.write_text("gone.mp4\n")
    with pytest.raises(SourceError, match=r"list.txt, line 1: input not found"):
        expand_inputs([listing])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images or videos"):
        expand_inputs([tmp_path / "empty"])


def test_chunk_ranges_cover_the_clip_with_the_overlap() -> None:
    assert chunk_ranges(0, 10, 100, 16) == [(0, 9)]
    assert chunk_ranges(0, 10, 0, 16) == [(0, 9)]
    ranges = chunk_ranges(5, 257, 100, 16)
    assert ranges[0][0] == 5 and ranges[-1][1] == 261
    assert all(end - start + 1 <= 100 for start, end in ranges)
    assert all(a_end - b_start + 1 == 16 for (_, a_end), (b_start, _) in zip(ranges, ranges[1:]))
    with pytest.raises(OptionError, match="more than twice"):
        check_chunking(20, 10)


def _chunk(first: int, frames: int, people: dict[int, tuple[float, float]], order: list[int]) -> dict:
    """A chunk result: person ``p`` walks right from ``people[p]`` (x at frame 0, y), 5 px a frame; tracks in
    ``order`` (so the same person has another track index in another chunk); each with its own rest pelvis."""
    rows = [(order.index(p), f) for p in order for f in range(frames)]
    joints = np.zeros((len(rows), 24, 2), np.float32)
    for i, (track, f) in enumerate(rows):
        x0, y = people[order[track]]
        joints[i] = [x0 + 5 * (first + f), y] + np.linspace([0, -80], [10, 80], 24)  # 160 px tall
    tracks = len(order)
    rest = np.zeros((tracks, 24, 3), np.float32)
    rest[:, 0, 1] = [0.1 * (first + 1) + t for t in range(tracks)]  # a different rest pelvis per chunk
    return {
        "format": np.str_("troupe-result/1"), "fps": np.float64(30), "image_size": np.array([640, 360]),
        "focal_length": np.array([500.0, 500.0]), "principal_point": np.array([320.0, 180.0]),
        "num_frames": np.int64(frames), "body_model": np.str_("open-body"), "estimator": np.str_("test"),
        "frame_indices": np.arange(first, first + frames), "shot_cuts": np.zeros(0, np.int64),
        "track_id": np.arange(tracks), "betas": np.zeros((tracks, 10), np.float32), "rest_joints": rest,
        "row_track": np.array([t for t, _ in rows]), "row_frame": np.array([f for _, f in rows]),
        "poses": np.zeros((len(rows), 24, 3), np.float32),
        "transl": np.array([[first + f, 0, 5] for _, f in rows], np.float32) - rest[[t for t, _ in rows], 0],
        "joints2d": joints, "confidence": np.ones(len(rows), np.float32), "observed": np.ones(len(rows), bool),
    }


def test_stitching_keeps_each_person_one_track_across_borders() -> None:
    people = {0: (50.0, 100.0), 1: (60.0, 260.0), 2: (300.0, 180.0)}
    chunks = [_chunk(0, 14, {0: people[0], 1: people[1]}, [0, 1]),
              _chunk(10, 14, people, [2, 1, 0]),  # swapped order and a newcomer
              _chunk(20, 10, {1: people[1], 0: people[0]}, [1, 0])]
    stitched = stitch_results(chunks)
    validate(stitched)
    assert int(stitched["num_frames"]) == 30 and list(stitched["frame_indices"]) == list(range(30))
    assert len(stitched["track_id"]) == 3
    for track in range(3):
        rows = np.flatnonzero(stitched["row_track"] == track)
        frames = stitched["row_frame"][rows]
        assert len(frames) == len(set(frames.tolist()))  # every frame once: the overlap is not doubled
        x0 = stitched["joints2d"][rows, 0, 0] - 5 * frames  # a person's own x0 whichever chunk a row came from
        assert np.ptp(x0) == pytest.approx(0, abs=1e-3)
        # the pelvis (transl + the track's rest pelvis) is where each chunk put it: x = the frame number
        pelvis = stitched["transl"][rows] + stitched["rest_joints"][track, 0]
        assert np.allclose(pelvis[:, 0], frames, atol=1e-4) and np.allclose(pelvis[:, 1], 0, atol=1e-4)
    spans = sorted((int(stitched["row_frame"][stitched["row_track"] == t].min()),
                    int(stitched["row_frame"][stitched["row_track"] == t].max())) for t in range(3))
    assert spans == [(0, 29), (0, 29), (12, 21)]  # the newcomer from the middle chunk's border on


def test_far_apart_tracks_are_not_joined() -> None:
    chunks = [_chunk(0, 14, {0: (50.0, 100.0)}, [0]), _chunk(10, 14, {1: (400.0, 100.0)}, [1])]
    stitched = stitch_results(chunks)
    assert len(stitched["track_id"]) == 2


def test_a_result_is_complete_only_for_the_same_options_and_input(tmp_path: Path) -> None:
    source = tmp_path / "clip.jpg"
    source.write_bytes(b"x")
    manifest = Manifest(tmp_path)
    digest = options_hash({"fov": 50.0, "coherence": True})
    assert digest == options_hash({"coherence": True, "fov": 50.0}) != options_hash({"fov": 40.0, "coherence": True})
    fingerprint = input_fingerprint(source)
    manifest.clips["clip"] = ClipEntry(str(source), "clip.npz", digest, fingerprint, status=DONE)
    assert not manifest.is_complete("clip", digest, fingerprint)  # no result file
    (tmp_path / "clip.npz").write_bytes(b"r")
    manifest.save()
    loaded = Manifest.load(tmp_path)
    assert loaded.is_complete("clip", digest, fingerprint)
    assert not loaded.is_complete("clip", options_hash({"fov": 40.0}), fingerprint)
    source.write_bytes(b"changed")
    assert not loaded.is_complete("clip", digest, input_fingerprint(source))
    (tmp_path / "troupe-batch.json").write_text("{not json")
    with pytest.raises(BatchError, match="unreadable"):
        Manifest.load(tmp_path)


def _batch(args: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; {prelude}from backend.app.cli import main; sys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_without_ray_batch_says_how_to_install_it(tmp_path: Path) -> None:
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"x")
    run = _batch(["batch", str(picture), "-o", str(tmp_path / "out")], prelude="sys.modules['ray'] = None; ")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "troupe: error: batch runs on Ray, which is not installed here: pip install 'troupe[batch]' (or ray==2.60.0)"]


@pytest.mark.parametrize("args, message", [
    (["--fov", "200"], "--fov must be between 1 and 179 degrees"),
    (["--chunk-frames", "10", "--chunk-overlap", "8"], "--chunk-frames (10) must be more than twice"),
    (["--gpu-fraction", "0"], "--gpu-fraction must be in (0, 1]"),
])
def test_bad_options_fail_in_one_line_before_ray(tmp_path: Path, args: list[str], message: str) -> None:
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"x")
    run = _batch(["batch", str(picture), "-o", str(tmp_path / "out"), *args])
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1 and message in run.stderr
    assert not (tmp_path / "out").exists()
