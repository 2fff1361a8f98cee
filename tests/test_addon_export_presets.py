"""Engine export presets that round-trip through Blender's own importers (the FBX presets, BVH and AMASS are
covered in test_addon_blender.py): glTF binary, imported back with the same bone names, frame count and joint
trajectories (within 1 mm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_fixtures import enable_addon, fixture_result, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")

from blender_addon import rig  # noqa: E402


@pytest.fixture()
def addon():
    module = enable_addon("extension")
    bpy.ops.wm.read_homefile(use_empty=True)
    yield module
    module.jobs.shutdown()


def _heads(arm) -> dict[str, np.ndarray]:
    return {name: np.array(arm.matrix_world @ arm.pose.bones[name].head) for name in rig.JOINT_NAMES}


def test_glb_round_trip_keeps_bones_frames_and_motion(addon, tmp_path: Path) -> None:
    collection = addon.scene.build_scene(fixture_result())
    people = {arm.name: arm for arm in addon.scene.iter_people(collection)}
    scene = bpy.context.scene
    fps, frames = scene.render.fps, range(scene.frame_start, scene.frame_end + 1)
    first = min(people)  # seen on every frame
    original = {}
    for frame in frames:
        scene.frame_set(frame)
        original[frame] = _heads(people[first])
    path = tmp_path / "people.glb"
    assert bpy.ops.troupe.export_gltf(filepath=str(path), scope="ALL") == {"FINISHED"}
    names = sorted(people)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = fps  # glTF stores seconds
    bpy.ops.import_scene.gltf(filepath=str(path))
    armatures = {o.name: o for o in bpy.data.objects if o.type == "ARMATURE"}
    assert sorted(armatures) == names
    for arm in armatures.values():
        assert sorted(b.name for b in arm.data.bones) == sorted(rig.JOINT_NAMES)  # no leaf bones
    imported = armatures[first]
    start, end = imported.animation_data.action.frame_range
    assert (round(start), round(end)) == (frames[0], frames[-1])
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        heads = _heads(imported)
        assert max(np.abs(heads[n] - original[frame][n]).max() for n in rig.JOINT_NAMES) < 1e-3, frame


def test_glb_export_needs_people(addon, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no people to export"):
        bpy.ops.troupe.export_gltf(filepath=str(tmp_path / "none.glb"), scope="ALL")
