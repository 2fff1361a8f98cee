"""``bpy.ops.troupe.reconstruct`` and the preference operators inside real Blender, with real subprocesses.

Fake backends (scripted protocol servers standing in for the interpreter) cover success, failure and cancel;
the real backend covers doctor, SMPL install errors and, when its estimator is there, a whole reconstruction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_fixtures import (
    REPO_ROOT,
    enable_addon,
    fixture_result,
    isolate_blender,
    make_fake_backend,
    poll_until,
    torch_python,
)

isolate_blender()
bpy = pytest.importorskip("bpy")


@pytest.fixture()
def addon(tmp_path: Path):
    """Enabled add-on, empty scene, a source file and a results folder; no timers or backends left behind."""
    module = enable_addon("extension")
    bpy.ops.wm.read_homefile(use_empty=True)
    settings = bpy.context.scene.troupe
    settings.source_path = str(tmp_path / "clip.mp4")
    (tmp_path / "clip.mp4").write_bytes(b"the fake backends never read it")
    settings.output_dir = str(tmp_path / "results")
    prefs = module.jobs.preferences()
    saved = prefs.python_path
    yield module
    module.jobs.shutdown()
    prefs.python_path = saved


def _use_backend(addon, python: str) -> None:
    addon.jobs.preferences().python_path = python


def _snapshot() -> tuple:
    return tuple(sorted(o.name for o in bpy.data.objects)), tuple(sorted(c.name for c in bpy.data.collections))


def _poll_until_finished(addon) -> None:
    """What bpy.app.timers does in the UI (timers never fire in background mode)."""
    poll_until(addon, addon.jobs.reconstruction.outcome_ready)


def test_reconstruct_runs_in_the_background_and_imports_the_result(addon, tmp_path: Path) -> None:
    python, record = make_fake_backend(tmp_path / "fake", "ok", fixture_result())
    _use_backend(addon, python)
    assert bpy.ops.troupe.reconstruct() == {"FINISHED"}  # returns at once; the timer does the rest
    assert bpy.app.timers.is_registered(addon.jobs.reconstruction.poll)
    state = bpy.context.window_manager.troupe_job
    assert state.running and not addon.jobs.reconstruction.outcome_ready()
    _poll_until_finished(addon)
    assert state.state == "done" and not state.running and state.progress == 1.0
    assert state.people == 3 and "fake warning" in state.warnings and not state.last_error
    collection = addon.jobs.last_collection
    assert collection is not None and len(addon.scene.iter_people(collection)) == 3
    outputs = list((tmp_path / "results").glob("clip-*.npz"))
    assert len(outputs) == 1 and collection[addon.scene.PROP_RESULT] == str(outputs[0])


def test_reconstruct_wait_option_blocks_for_scripts(addon, tmp_path: Path) -> None:
    python, _ = make_fake_backend(tmp_path / "fake", "ok", fixture_result())
    _use_backend(addon, python)
    assert bpy.ops.troupe.reconstruct(wait=True) == {"FINISHED"}
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 3


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "cannot decode frame 17 of the video"),
        ("crash", "out of memory"),
        ("dead", "torch is not installed"),
    ],
)
def test_failing_backend_reports_an_error_and_leaves_the_scene_unchanged(addon, tmp_path: Path, mode: str,
                                                                         message: str) -> None:
    bpy.ops.mesh.primitive_cube_add()
    before = _snapshot()
    python, _ = make_fake_backend(tmp_path / "fake", mode)
    _use_backend(addon, python)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.troupe.reconstruct(wait=True)
    assert _snapshot() == before
    state = bpy.context.window_manager.troupe_job
    assert message in state.last_error and not state.running


def test_unusable_result_from_the_backend_is_an_error_not_a_half_scene(addon, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK but not really")
    python, _ = make_fake_backend(tmp_path / "fake", "ok", garbage)
    _use_backend(addon, python)
    before = _snapshot()
    with pytest.raises(RuntimeError, match="cannot import the result"):
        bpy.ops.troupe.reconstruct(wait=True)
    assert _snapshot() == before


def test_missing_interpreter_or_source_is_reported_at_once(addon, tmp_path: Path) -> None:
    _use_backend(addon, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(RuntimeError, match="backend interpreter not found"):
        bpy.ops.troupe.reconstruct()
    assert "not found" in bpy.context.window_manager.troupe_job.last_error
    bpy.context.scene.troupe.source_path = str(tmp_path / "missing.mp4")
    with pytest.raises(RuntimeError, match="source not found"):
        bpy.ops.troupe.reconstruct()


def test_cancel_stops_the_backend_and_imports_nothing(addon, tmp_path: Path) -> None:
    python, record = make_fake_backend(tmp_path / "fake", "slow")
    _use_backend(addon, python)
    before = _snapshot()
    assert bpy.ops.troupe.reconstruct() == {"FINISHED"}
    state = bpy.context.window_manager.troupe_job
    poll_until(addon, lambda: state.done > 0)
    assert state.running and state.total == 1000 and 0 < state.progress < 1
    assert not bpy.ops.troupe.reconstruct.poll(), "a second run must wait"
    assert bpy.ops.troupe.cancel() == {"FINISHED"}
    _poll_until_finished(addon)
    assert state.state == "cancelled" and not state.running
    assert addon.jobs.reconstruction.work.client.process.wait(timeout=10) == 0
    assert _snapshot() == before


# --- preferences --------------------------------------------------------------------------------------------


def test_check_backend_shows_the_doctor_report(addon) -> None:
    python = torch_python()
    if python is None:
        pytest.skip("no interpreter with the backend's requirements")
    _use_backend(addon, python)
    assert bpy.ops.troupe.check_backend() == {"FINISHED"}
    state = bpy.context.window_manager.troupe_job
    assert "torch" in state.task_output and "open-body" in state.task_output, state.task_output
    assert Path(state.task_log).is_file()


def test_smpl_install_failure_is_reported(addon, tmp_path: Path) -> None:
    python = torch_python()
    if python is None:
        pytest.skip("no interpreter with the backend's requirements")
    _use_backend(addon, python)
    bogus = tmp_path / "SMPL_NEUTRAL.pkl"
    bogus.write_bytes(b"not a pickle")
    addon.jobs.preferences().smpl_file = str(bogus)
    with pytest.raises(RuntimeError, match="Install SMPL|installing the SMPL file"):
        bpy.ops.troupe.install_smpl()
    assert "exit code" in bpy.context.window_manager.troupe_job.task_error


def test_create_environment_runs_its_steps_and_selects_the_new_interpreter(addon, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's plumbing with quick commands (a venv without pip, then a stand-in for pip install)."""
    env_dir = tmp_path / "backend-env"
    new_python = addon.backend_env.venv_python(env_dir)

    def quick_commands(base: str, target: Path, flavor: str, root: Path | None) -> list[tuple[str, list[str]]]:
        assert Path(target) == env_dir and flavor == "cpu" and root == addon.backend_env.backend_root()
        return [("venv", [base, "-m", "venv", "--without-pip", str(target)]),
                ("pip", [str(new_python), "-c", "print('installed requirements')"])]

    monkeypatch.setattr(addon.backend_env, "create_env_commands", quick_commands)
    prefs = addon.jobs.preferences()
    prefs.env_dir, prefs.torch_flavor = str(env_dir), "cpu"
    assert bpy.ops.troupe.create_backend_env(base_python=sys.executable) == {"FINISHED"}
    assert prefs.python_path == str(new_python) and new_python.is_file()
    assert "installed requirements" in addon.jobs.preference_task.work.output()


# --- the real backend, end to end ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_backend_reconstructs_footage_into_the_scene(addon, shared_data: Path) -> None:
    """Two frames of real footage through the real backend: people imported where the estimator saw them."""
    from bpy_extras.object_utils import world_to_camera_view

    python = torch_python()
    if python is None or not (REPO_ROOT / "backend" / "estimators" / "mediapipe_fit.py").is_file():
        pytest.skip("needs the backend interpreter and the mediapipe-fit estimator")
    _use_backend(addon, python)
    settings = bpy.context.scene.troupe
    settings.source_path = str(shared_data / "football_dribble.mp4")
    settings.use_frame_range, settings.frame_start, settings.frame_end = True, 10, 11
    assert bpy.ops.troupe.reconstruct(wait=True, timeout=240) == {"FINISHED"}
    collection = addon.jobs.last_collection
    people = addon.scene.iter_people(collection)
    with np.load(collection[addon.scene.PROP_RESULT]) as npz:
        result = {key: npz[key] for key in npz.files}
    assert people and len(people) == len(result["track_id"])
    assert list(result["frame_indices"]) == [10, 11]
    scene = bpy.context.scene
    assert scene.camera.data.background_images[0].clip.frame_start == 1 - 10
    width, height = scene.render.resolution_x, scene.render.resolution_y
    for arm in people:
        t = list(result["track_id"]).index(arm[addon.scene.PROP_TRACK])
        for row in np.nonzero(result["row_track"] == t)[0]:
            scene.frame_set(int(result["row_frame"][row]) + addon.scene.FRAME_OFFSET)
            heads = [world_to_camera_view(scene, scene.camera, arm.matrix_world @ b.head) for b in
                     (arm.pose.bones[name] for name in addon.rig.JOINT_NAMES)]
            pixels = np.array([(h.x * width, (1.0 - h.y) * height) for h in heads])
            assert np.abs(pixels - result["joints2d"][row]).max() < 1.0
