"""The batch's parts that need no Ray: inputs to clips, chunk ranges, stitching chunk results, the manifest's
idea of complete, option checks, and the one line without Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.batch.chunks import check_chunking, chunk_ranges, shot_chunk_ranges
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


def test_long_clips_are_cut_at_shot_cuts_and_overlap_only_inside_long_shots() -> None:
    # shots 0-39, 40-59, 60-79 (short: packed whole, no shared frames) and 80-299 (long: overlapping chunks)
    ranges = shot_chunk_ranges(0, 300, [40, 60, 80], chunk_frames=50, overlap=16)
    assert ranges[:2] == [(0, 39), (40, 79)]  # 0-39 alone (with the next shot it would not fit); two packed
    inside = ranges[2:]
    assert inside[0][0] == 80 and inside[-1][1] == 299 and len(inside) == 6
    assert all(a_end - b_start + 1 == 16 for (_, a_end), (b_start, _) in zip(inside, inside[1:]))
    assert all(end - start + 1 <= 50 for start, end in ranges)
    assert shot_chunk_ranges(0, 300, [], 100, 16) == chunk_ranges(0, 300, 100, 16)  # no cuts: as before
    assert shot_chunk_ranges(0, 90, [40], 100, 16) == [(0, 89)]  # not longer than a chunk: one task
    assert shot_chunk_ranges(10, 150, [70], 100, 16) == [(10, 69), (70, 159)]  # absolute frames


def test_chunks_meeting_at_a_cut_are_not_matched_and_the_cut_is_kept() -> None:
    person = {0: (50.0, 100.0)}
    stitched = stitch_results([_chunk(0, 12, person, [0]), _chunk(12, 12, person, [0])])  # same place, no overlap
    validate(stitched)
    assert int(stitched["num_frames"]) == 24 and list(stitched["shot_cuts"]) == [12]
    assert len(stitched["track_id"]) == 2  # a new identity after the cut, as the pipeline's tracker does
    spans = [sorted(set(stitched["row_frame"][stitched["row_track"] == t].tolist())) for t in range(2)]
    assert spans == [list(range(12)), list(range(12, 24))]


def _rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


def _camera_keys(relative: np.ndarray, zoom: np.ndarray, world_from_ref: np.ndarray) -> dict:
    """A chunk's camera keys as the pipeline writes them: one segment, its own world."""
    frames = len(zoom)
    return {"camera_rotation": relative @ world_from_ref.T, "camera_focal": np.column_stack([zoom, zoom]) * 500.0,
            "camera_segment": np.zeros(frames, np.int64), "segment_static": np.zeros(1, bool)}


def test_chunks_camera_paths_chain_through_the_shared_frames() -> None:
    from backend.batch.camera_chain import chained_path, chunk_path

    truth = _rotation("y", 1.5 * np.arange(30)) @ _rotation("x", 0.3 * np.arange(30))  # a pan with some tilt
    zoom = 1.0 + 0.01 * np.arange(30)
    pieces = [(0, 14), (10, 24), (20, 30)]  # 4 shared frames at each border
    chunks = []
    for k, (a, b) in enumerate(pieces):  # each chunk: relative to its own first frame, in a world of its own
        relative = truth[a:b] @ truth[a].T
        chunks.append(_camera_keys(relative, zoom[a:b] / zoom[a], _rotation("z", [20.0 * k + 5])[0]))
    path = chained_path([chunk_path(chunk) for chunk in chunks], [0, 10, 20], [12, 22])
    assert path.num_frames == 30 and list(path.segment) == [0] * 30 and not path.static[0]
    assert np.allclose(path.rotations, truth, atol=1e-9) and np.allclose(path.zoom, zoom)


def test_chunks_meeting_at_a_cut_start_a_new_camera_segment() -> None:
    from backend.batch.camera_chain import chained_path, chunk_path

    first = _camera_keys(_rotation("y", np.arange(12.0)), np.ones(12), np.eye(3))
    second = _camera_keys(np.tile(np.eye(3), (12, 1, 1)), np.ones(12), _rotation("z", [40.0])[0])
    second["segment_static"][:] = True
    path = chained_path([chunk_path(first), chunk_path(second)], [0, 12], [12])
    assert list(path.segment) == [0] * 12 + [1] * 12 and list(path.static) == [False, True]
    assert np.allclose(path.rotations[12:], np.eye(3))


def _serve(lines: list[dict], prelude: str = "") -> list[dict]:
    """The events the real service answers ``lines`` with (stdin closed after them)."""
    import json

    code = f"import sys; {prelude}from backend.app.cli import main; sys.exit(main(['serve']))"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         input="".join(json.dumps(line) + "\n" for line in lines))
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_the_service_refuses_a_batch_it_cannot_run_before_any_work(tmp_path: Path) -> None:
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"x")
    request = {"type": "batch", "id": "b", "inputs": [str(tmp_path)], "output": str(tmp_path / "out")}
    no_ray, bad_inputs, bad_option, relative = _serve([
        request, {**request, "inputs": [str(tmp_path / "gone")]}, {**request, "fov": 500},
        {**request, "output": "out"}], prelude="sys.modules['ray'] = None; ")
    assert (no_ray["type"], no_ray["code"]) == ("error", "BATCH_ERROR")
    assert no_ray["message"] == "batch runs on Ray, which is not installed here: pip install 'troupe[batch]' " \
                                "(or ray==2.60.0)"
    assert (bad_inputs["code"], bad_option["code"], relative["code"]) == ("INPUT_ERROR", "INVALID_OPTION",
                                                                         "BAD_REQUEST")
    assert "input not found" in bad_inputs["message"] and "fov" in bad_option["message"]
    assert not (tmp_path / "out").exists()
