"""An Anny result inside real Blender: the Anny mesh is built, skinned to the armature, and follows it.

The result is made by a torch-capable subprocess through the real Anny body (``tests.test_addon_fixtures
--body anny``), so it needs the anny package in that interpreter; this process never imports torch.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_blender import _import, _people, _rows
from tests.test_addon_fixtures import expected_path, generate_fixture, session_dir, torch_python

bpy = pytest.importorskip("bpy")
from blender_addon import rig  # noqa: E402


def _anny_in(python: str | None) -> bool:
    if python is None:
        return False
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('anny') is None)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _anny_in(torch_python()) and importlib.util.find_spec("anny") is None,
                                reason="the anny package is not installed (an optional requirement)")


@pytest.fixture(scope="module")
def anny_result() -> Path:
    return generate_fixture(session_dir() / "anny.npz", num_people=2, num_frames=4, body="anny")


def test_anny_mesh_imports_skinned_and_follows_the_armature(addon, anny_result: Path) -> None:
    with np.load(anny_result) as npz:
        data = {key: npz[key] for key in npz.files}
    assert str(data["body_model"]) == "anny" and data["phenotype"].shape == (2, 6)
    expected = np.load(expected_path(anny_result))["vertices"]
    people = _people(addon, _import(anny_result))
    scene = bpy.context.scene
    for index, track_id in enumerate(int(t) for t in data["track_id"]):
        arm = people[track_id]
        (body,) = [c for c in arm.children if c.type == "MESH"]
        assert len(body.data.vertices) == data["skin_weights"].shape[0] > 10_000
        assert len(body.data.polygons) == len(data["faces"])
        assert body.modifiers["Armature"].object == arm and len(body.vertex_groups) == 24
        scene.frame_set(int(data["row_frame"][_rows(data, track_id)[0]]) + addon.scene.FRAME_OFFSET)
        evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = evaluated.to_mesh()
        co = np.empty(3 * len(mesh.vertices))
        mesh.vertices.foreach_get("co", co)
        evaluated.to_mesh_clear()
        world = co.reshape(-1, 3) @ np.array(body.matrix_world)[:3, :3].T + np.array(body.matrix_world)[:3, 3]
        assert np.abs(world - expected[index] @ rig.CAM_TO_WORLD.T).max() < 1e-3


def test_annys_own_rig_drives_the_mesh_as_the_24_joint_armature_does(addon, anny_result: Path) -> None:
    """The import option that keeps Anny's own rig: Anny's bones (names, hierarchy, skin weights), keyed from the
    fitted motion, put the mesh exactly where the 24-joint armature puts it on every frame, and the bone each
    SMPL joint sits on has its head on that joint."""
    from backend.body.anny_skeleton import JOINT_BONE
    from backend.body.skeleton import JOINT_NAMES

    with np.load(anny_result) as npz:
        data = {key: npz[key] for key in npz.files}
    names = [str(n) for n in data["rig_bone_names"]]
    smpl = _people(addon, addon.scene.build_scene(anny_result))
    own = _people(addon, addon.scene.build_scene(anny_result, anny_rig=True))
    scene = bpy.context.scene
    for track_id, arm in own.items():
        assert arm["troupe_rig"] == "anny" and [b.name for b in arm.data.bones] == names and len(names) > 100
        for b, bone in enumerate(arm.data.bones):
            parent = int(data["rig_bone_parents"][b])
            assert (bone.parent.name if bone.parent else None) == (names[parent] if parent >= 0 else None)
        (body,) = [c for c in arm.children if c.type == "MESH"]
        assert {g.name for g in body.vertex_groups} == set(names)
        (reference,) = [c for c in smpl[track_id].children if c.type == "MESH"]
        for frame in data["row_frame"][_rows(data, track_id)]:
            scene.frame_set(int(frame) + addon.scene.FRAME_OFFSET)
            assert np.abs(_world_vertices(body) - _world_vertices(reference)).max() < 1e-4
            for j, joint in enumerate(JOINT_NAMES):
                if len(JOINT_BONE[joint]) == 1:  # the joints placed on one Anny bone's head
                    head = arm.matrix_world @ arm.pose.bones[JOINT_BONE[joint][0]].head
                    want = smpl[track_id].matrix_world @ smpl[track_id].pose.bones[rig.JOINT_NAMES[j]].head
                    assert (head - want).length < 1e-3, (joint, frame)  # bone ends linear in betas: < 1 mm


def _world_vertices(body) -> np.ndarray:
    evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.empty(3 * len(mesh.vertices))
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    matrix = np.array(body.matrix_world)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


@pytest.mark.slow
@pytest.mark.skipif(bpy.app.version[:2] != (4, 5), reason="the reconstruction does not depend on Blender; the import "
                    "of an Anny result is checked on every Blender by the test above")
def test_reconstruction_of_a_real_photo_with_anny_imports_with_bodies_on_the_people(addon, tmp_path: Path,
                                                                                     shared_data: Path) -> None:
    """`reconstruct --body-model anny` on a real group photo (a real subprocess), imported into Blender: each
    person's skinned Anny mesh, as Blender deforms it, covers that person's 2D joints in the picture."""
    import os

    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from tests.test_addon_fixtures import REPO_ROOT

    output = tmp_path / "group7.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([torch_python(), "-m", "backend", "reconstruct", str(shared_data / "group7_walk.jpg"),
                           "-o", str(output), "--body-model", "anny"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(output) as npz:
        data = {key: npz[key] for key in npz.files}
    assert str(data["body_model"]) == "anny" and len(data["track_id"]) >= 5
    assert data["phenotype"].shape == (len(data["track_id"]), 6)
    people = _people(addon, _import(output))
    scene = bpy.context.scene
    scene.frame_set(int(data["row_frame"][0]) + addon.scene.FRAME_OFFSET)
    width, height = scene.render.resolution_x, scene.render.resolution_y
    for t, track_id in enumerate(int(t) for t in data["track_id"]):
        (body,) = [c for c in people[track_id].children if c.type == "MESH"]
        world = _world_vertices(body)[::4]
        views = [world_to_camera_view(scene, scene.camera, Vector(p)) for p in world]
        pixels = np.array([(c.x * width, (1.0 - c.y) * height) for c in views])
        joints = data["joints2d"][_rows(data, track_id)[0]]
        lo, hi = pixels.min(0), pixels.max(0)
        margin = 0.05 * (hi - lo)
        inside = ((joints >= lo - margin) & (joints <= hi + margin)).all(1)
        assert inside.all(), f"track {track_id}: joints {np.flatnonzero(~inside)} {joints[~inside]} off {lo}-{hi}"
