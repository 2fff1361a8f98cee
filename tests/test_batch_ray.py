"""``troupe batch`` on a real Ray cluster started on 127.0.0.1 by the test (``ray start --head``, 2 CPUs), with
small real inputs cut from ../shared/data: results, a corrupt input that fails alone, resuming, a worker killed
mid-task, a long clip in two chunks; and the default local mode (Ray started inside the command)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.result import read_result
from tests.batch_fixtures import REPO_ROOT, cut_clip, joined_clip, run_batch_command, small_picture, start_cluster

pytestmark = pytest.mark.skipif(not os.path.exists(Path(sys.executable).with_name("ray")),
                                reason="ray is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def inputs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch-inputs")
    small_picture(shared_data / "football_player_a.jpg", folder / "player_a.jpg")
    small_picture(shared_data / "football_player_b.jpg", folder / "player_b.jpg")
    cut_clip(shared_data / "football_dribble.mp4", folder / "dribble.mp4", frames=6, width=480)
    (folder / "broken.mp4").write_bytes((shared_data / "football_dribble.mp4").read_bytes()[:4000])
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    running = start_cluster(tmp_path_factory.mktemp("ray"), num_cpus=2)
    try:
        yield running
    finally:
        running.stop()


def _manifest(out: Path) -> dict:
    return json.loads((out / "troupe-batch.json").read_text())


def _left_behind(out: Path) -> list[str]:
    """Temporary or chunk files anywhere under the output folder."""
    return [str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".part") or ".troupe-chunks" in
            p.parts]


def test_three_results_one_reported_failure_then_resume_skips_them(cluster, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_batch_command([str(inputs), "-o", str(out), "--address", cluster.address], cluster.env, quiet=False)
    assert first.returncode == 1, first.stderr  # one clip failed
    bar = first.stderr.replace("\r", "\n").splitlines()
    assert any("4/4" in line and "failed=1" in line and "frames=8," in line for line in bar)  # the batch's bar
    clips = _manifest(out)["clips"]
    assert {name: entry["status"] for name, entry in clips.items()} == {
        "player_a": "done", "player_b": "done", "dribble": "done", "broken": "failed"}
    assert clips["broken"]["error_code"] == "INPUT_ERROR" and "broken.mp4" in clips["broken"]["error"]
    assert "INPUT_ERROR" in first.stderr and "Traceback" not in first.stderr
    for name, frames in (("player_a", 1), ("player_b", 1), ("dribble", 6)):
        result = read_result(out / f"{name}.npz")
        assert int(result["num_frames"]) == frames == clips[name]["frames"]
        assert len(result["track_id"]) == clips[name]["people"] >= 1
    assert not (out / "broken.npz").exists() and _left_behind(out) == []

    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    second = run_batch_command([str(inputs), "-o", str(out), "--address", cluster.address], cluster.env)
    assert second.returncode == 1
    assert "0 done, 3 already complete, 1 failed" in second.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == stamps

    status = subprocess.run([sys.executable, "-m", "backend", "batch", "--status", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True, env=cluster.env)
    assert status.returncode == 0
    assert "3 done, 1 failed" in status.stdout and "video is corrupt" in status.stdout


def test_changed_options_redo_the_results(cluster, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    picture = str(inputs / "player_b.jpg")
    assert run_batch_command([picture, "-o", str(out), "--address", cluster.address], cluster.env).returncode == 0
    before = (out / "player_b.npz").stat().st_mtime_ns
    again = run_batch_command([picture, "-o", str(out), "--address", cluster.address, "--fov", "40"], cluster.env)
    assert again.returncode == 0 and "1 done, 0 already complete" in again.stderr
    assert (out / "player_b.npz").stat().st_mtime_ns != before


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried(cluster, shared_data: Path, tmp_path: Path) -> None:
    clip = cut_clip(shared_data / "football_dribble.mp4", tmp_path / "long.mp4", frames=16, width=480)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "backend", "batch", str(clip), "-o", str(out), "--address", cluster.address,
               "--quiet"]
    batch = subprocess.Popen(command, cwd=REPO_ROOT, env=cluster.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        killed = _kill_first_task(cluster, batch)
        stdout, stderr = batch.communicate(timeout=300)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == 0, stderr
    entry = _manifest(out)["clips"]["long"]
    assert entry["status"] == "done" and entry["frames"] == 16
    assert not entry["worker"].endswith(f":{killed}")  # the result came from another worker process
    assert int(read_result(out / "long.npz")["num_frames"]) == 16 and _left_behind(out) == []


def _kill_first_task(cluster, batch: subprocess.Popen) -> int:
    """SIGKILL the first worker process of this cluster seen running the clip task; returns its pid."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and batch.poll() is None:
        pids = cluster.worker_pids("ray::troupe-clip")
        if pids:
            time.sleep(1.0)  # well inside the task (imports, models), not at its first instruction
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.1)
    raise AssertionError("no worker ran the clip's task")


@pytest.mark.slow
def test_a_clip_split_in_two_chunks_keeps_one_identity(cluster, shared_data: Path, tmp_path: Path) -> None:
    clip = cut_clip(shared_data / "dancer_1080p.mp4", tmp_path / "dancer.mp4", frames=24, width=480)
    out = tmp_path / "out"
    run = run_batch_command([str(clip), "-o", str(out), "--address", cluster.address, "--chunk-frames", "14",
                             "--chunk-overlap", "4"], cluster.env)
    assert run.returncode == 0, run.stderr
    entry = _manifest(out)["clips"]["dancer"]
    assert entry["chunks"] == 2 and entry["frames"] == 24
    result = read_result(out / "dancer.npz")
    assert int(result["num_frames"]) == 24 and list(result["frame_indices"]) == list(range(24))
    # chunks 0-13 and 10-23, border at frame 12: the dancer is one track on both sides of it
    row_frame, row_track = np.asarray(result["row_frame"]), np.asarray(result["row_track"])
    spans = [row_frame[row_track == t] for t in range(len(result["track_id"]))]
    crossing = [frames for frames in spans if frames.min() < 12 <= frames.max()]
    assert len(crossing) == 1 and crossing[0].min() == 0 and crossing[0].max() == 23
    assert len(result["track_id"]) == 1  # no second track for the same dancer after the border
    assert _left_behind(out) == []
    # one camera path and world over the 24 stitched frames (chained through the shared frames), one segment
    assert all(len(result[key]) == 24 for key in ("camera_rotation", "camera_position", "camera_focal",
                                                  "camera_segment"))
    assert list(result["camera_segment"]) == [0] * 24 and len(result["segment_static"]) == 1
    assert len(result["world_transl"]) == len(result["row_frame"])
    pelvis = result["world_transl"] + result["rest_joints"][result["row_track"], 0]
    steps = np.linalg.norm(np.diff(pelvis[np.argsort(row_frame)], axis=0), axis=1)
    assert steps.max() < 0.5  # the dancer does not jump in the world at the border (metres between frames)


@pytest.mark.slow
def test_a_clip_with_a_shot_cut_is_chunked_at_the_cut(cluster, shared_data: Path, tmp_path: Path) -> None:
    clip = joined_clip([(shared_data / "football_dribble.mp4", 0, 12), (shared_data / "dancer_1080p.mp4", 0, 12)],
                       tmp_path / "two_shots.mp4", width=480)
    out = tmp_path / "out"
    run = run_batch_command([str(clip), "-o", str(out), "--address", cluster.address, "--chunk-frames", "14",
                             "--chunk-overlap", "4"], cluster.env)
    assert run.returncode == 0, run.stderr
    entry = _manifest(out)["clips"]["two_shots"]
    assert entry["chunks"] == 2 and entry["frames"] == 24  # 0-11 and 12-23: at the cut, not 0-13 and 10-23
    result = read_result(out / "two_shots.npz")  # validated by the contract
    assert int(result["num_frames"]) == 24 and list(result["shot_cuts"]) == [12]
    row_frame, row_track = np.asarray(result["row_frame"]), np.asarray(result["row_track"])
    for track in range(len(result["track_id"])):  # nobody is carried across the cut
        frames = row_frame[row_track == track]
        assert frames.max() < 12 or frames.min() >= 12
    assert (row_frame < 12).any() and (row_frame >= 12).any()  # people on both sides
    assert len(result["camera_rotation"]) == 24 and list(result["camera_segment"]) == [0] * 12 + [1] * 12
    assert len(result["segment_static"]) == 2 and len(result["world_orient"]) == len(row_frame)
    assert _left_behind(out) == []


def test_local_mode_starts_ray_in_the_command_and_writes_nothing_to_home(inputs: Path, tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    run = run_batch_command([str(inputs / "player_a.jpg"), "-o", str(out), "--num-cpus", "1"], env)
    assert run.returncode == 0, run.stderr
    assert _manifest(out)["clips"]["player_a"]["status"] == "done"
    assert read_result(out / "player_a.npz")["num_frames"] == 1
    # Ray wrote neither its token (~/.ray) nor its session files into the home folder; ~/.config/matplotlib is
    # the pipeline's own (``reconstruct`` alone writes it too), not the batch's
    assert not (home / ".ray").exists() and not any(home.rglob("session_*"))
    assert any((Path(env["TROUPE_CACHE_DIR"]) / "ray").glob("session_*"))
