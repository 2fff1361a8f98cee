"""``bpy.ops.troupe.batch`` inside real Blender with the real backend (``serve``, which runs the batch on a local
Ray cluster it starts): a folder of two small real pictures and a corrupt one becomes two results and one
reported failure, with the progress in the job state the status bar draws; a cancelled batch ends as cancelled
and leaves no Ray process behind."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_addon_fixtures import REPO_ROOT, enable_addon, isolate_blender, torch_python

isolate_blender()
bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    torch_python() is None or not os.path.exists(Path(torch_python() or sys.executable).with_name("ray")),
    reason="needs the backend interpreter with torch and ray")]


@pytest.fixture()
def addon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Enabled add-on using the real backend, results under tmp_path; a marker in the backend's environment
    (inherited by the Ray processes it starts) to find them afterwards."""
    monkeypatch.setenv("TROUPE_TEST_BATCH", secrets.token_hex(8))
    module = enable_addon("extension")
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.troupe.output_dir = str(tmp_path / "results")
    prefs = module.jobs.preferences()
    saved = prefs.python_path
    prefs.python_path = torch_python()
    yield module
    module.jobs.shutdown()
    prefs.python_path = saved


@pytest.fixture()
def clips(shared_data: Path, tmp_path: Path) -> Path:
    """Two real pictures at 320 px, scaled by the backend's interpreter (Blender's Python has no OpenCV)."""
    folder = tmp_path / "shoot"
    folder.mkdir()
    code = ("import sys; from pathlib import Path; from tests.batch_fixtures import small_picture; "
            "[small_picture(Path(sys.argv[1]) / f'football_{n}.jpg', Path(sys.argv[2]) / f'{n}.jpg', 320) "
            "for n in ('player_a', 'player_b')]")
    subprocess.run([torch_python(), "-c", code, str(shared_data), str(folder)], cwd=REPO_ROOT, check=True,
                   timeout=60)
    (folder / "broken.jpg").write_bytes((shared_data / "football_player_a.jpg").read_bytes()[:300])
    return folder


def _drive(addon, until, timeout: float = 300.0) -> list[str]:
    """Poll the job as the timer does in the UI until ``until()``; the status-bar lines seen on the way."""
    state, seen = bpy.context.window_manager.troupe_job, []
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"gave up waiting; seen {seen}"
        addon.jobs.reconstruction.poll()
        if state.message and (not seen or seen[-1] != state.message):
            seen.append(state.message)
        time.sleep(0.05)
    return seen


def _ray_processes(marker: str) -> list[int]:
    """Live processes (Ray's GCS, raylet, workers) started by this test's backend."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"TROUPE_TEST_BATCH={marker}".encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _all_gone(marker: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while _ray_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not _ray_processes(marker)


def test_a_folder_of_clips_runs_as_one_batch_job_with_progress(addon, clips: Path, tmp_path: Path) -> None:
    assert bpy.ops.troupe.batch(directory=str(clips)) == {"FINISHED"}  # returns at once; the timer does the rest
    assert bpy.app.timers.is_registered(addon.jobs.reconstruction.poll)
    state = bpy.context.window_manager.troupe_job
    assert state.running
    seen = _drive(addon, addon.jobs.reconstruction.outcome_ready)
    assert "batch: 0/3 clips, 0 frames" in seen  # what the status bar showed while Ray started
    assert state.state == "done" and not state.running and state.progress == 1.0 and not state.last_error
    assert state.message == "batch done: 2 of 3 clips, 2 frames, 1 failed"
    assert state.warnings.startswith("broken: INPUT_ERROR: ")  # the corrupt picture failed alone
    out = tmp_path / "results" / "shoot-batch"
    assert sorted(p.name for p in out.glob("*.npz")) == ["player_a.npz", "player_b.npz"]
    manifest = json.loads((out / "troupe-batch.json").read_text())
    assert {name: entry["status"] for name, entry in manifest["clips"].items()} == {
        "broken": "failed", "player_a": "done", "player_b": "done"}
    assert state.people == sum(entry["people"] for entry in manifest["clips"].values()) > 0
    assert not [o for o in bpy.data.objects]  # a batch imports nothing: its results stay in the folder
    # the same folder again: resumed, nothing redone
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    assert bpy.ops.troupe.batch(directory=str(clips), wait=True, timeout=300) == {"FINISHED"}
    assert state.message == "batch done: 2 of 3 clips, 0 frames, 1 failed"  # the broken one tried again
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == stamps
    assert _all_gone(os.environ["TROUPE_TEST_BATCH"])


def test_cancel_stops_the_batch_and_its_ray_cluster(addon, clips: Path, tmp_path: Path) -> None:
    assert bpy.ops.troupe.batch(directory=str(clips)) == {"FINISHED"}
    marker = os.environ["TROUPE_TEST_BATCH"]
    _drive(addon, lambda: len(_ray_processes(marker)) > 2, timeout=120)  # the backend and its Ray are up
    time.sleep(3.0)  # the clips' tasks under way
    assert bpy.ops.troupe.cancel() == {"FINISHED"}
    _drive(addon, addon.jobs.reconstruction.outcome_ready, timeout=60)
    state = bpy.context.window_manager.troupe_job
    assert state.state == "cancelled" and not state.running
    # the backend confirmed the cancel and exited on its own (killed after the grace period it would be -9)
    assert addon.jobs.reconstruction.work.client.process.wait(timeout=15) == 0
    assert _all_gone(marker)
    out = tmp_path / "results" / "shoot-batch"
    assert not list(out.rglob("*.part"))


def test_disabling_the_addon_mid_batch_lets_the_backend_stop_its_ray_cluster(addon, clips: Path) -> None:
    assert bpy.ops.troupe.batch(directory=str(clips)) == {"FINISHED"}
    marker = os.environ["TROUPE_TEST_BATCH"]
    _drive(addon, lambda: len(_ray_processes(marker)) > 2, timeout=120)
    time.sleep(3.0)
    addon.jobs.shutdown()  # what disabling the add-on or quitting Blender does: end of input, no kill
    assert _all_gone(marker, timeout=60)
    # the add-on reaps the backend in a thread (its UI never waits): wait for that; killed after its grace
    # period, the backend would not have exited on its own (negative code)
    assert addon.jobs.reconstruction.work.client.process.wait(timeout=30) == 0
