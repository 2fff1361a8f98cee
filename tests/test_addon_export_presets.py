"""Engine export presets, round-tripped through Blender's own importers (FBX, glTF, BVH).

Blender's importers read a file's declared axes and units as engines do (FBX: UpAxis and UnitScaleFactor, the
centimetres per file unit; glTF: Y up, metres; BVH: Y up by convention), so a person re-imported where they were,
in metres, is a person the engine sees upright and at their real size. Each preset is checked for: bone names
(the engine's, on the file only: the scene keeps its own), up axis and units, joint positions on every frame within
1 mm, one key per frame, and the scene unchanged afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_fixtures import REPO_ROOT, blender_env, built_zip, fixture_result, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")

from blender_addon import rig, rigmap  # noqa: E402  (numpy-only modules, also inside the zip)

# Written out here, independently of the add-on's tables: what each engine's tools look for.
ENGINE_BONES = {
    "HUMANOID": {"Pelvis": "Hips", "L_Hip": "LeftUpperLeg", "R_Knee": "RightLowerLeg", "L_Ankle": "LeftFoot",
                 "Spine3": "UpperChest", "R_Shoulder": "RightUpperArm", "L_Wrist": "LeftHand", "Head": "Head"},
    "UE5": {"Pelvis": "pelvis", "L_Hip": "thigh_l", "R_Knee": "calf_r", "L_Ankle": "foot_l", "Spine1": "spine_01",
            "R_Shoulder": "upperarm_r", "L_Wrist": "hand_l", "Neck": "neck_01"},
    "MIXAMO": {"Pelvis": "mixamorig:Hips", "L_Hip": "mixamorig:LeftUpLeg", "R_Knee": "mixamorig:RightLeg",
               "L_Ankle": "mixamorig:LeftFoot", "Spine1": "mixamorig:Spine", "R_Shoulder": "mixamorig:RightArm",
               "L_Wrist": "mixamorig:LeftHand", "L_Foot": "mixamorig:LeftToeBase"},
    "SMPL": {joint: joint for joint in rig.JOINT_NAMES},
}  # fmt: skip
RIGMAP_SCHEME = {"HUMANOID": "humanoid", "UE5": "ue5", "MIXAMO": "mixamo"}
# preset -> (bone names, FBX UnitScaleFactor: centimetres per file unit, one file per person)
FBX_PRESETS = {"UNITY": ("HUMANOID", 100.0, False), "UNREAL": ("UE5", 1.0, True), "MIXAMO": ("MIXAMO", 1.0, True)}


@pytest.fixture()
def people(addon) -> dict[str, bpy.types.Object]:
    """The fixture's three people in a fresh scene, plus a user object already called ``Armature``."""
    collection = addon.scene.build_scene(fixture_result())
    bpy.context.scene.collection.objects.link(bpy.data.objects.new("Armature", None))
    return {arm.name: arm for arm in addon.scene.iter_people(collection)}


def _heads(arm, names: list[str]) -> np.ndarray:
    return np.array([list(arm.matrix_world @ arm.pose.bones[name].head) for name in names])


def _motion(arm) -> dict[int, np.ndarray]:
    scene = bpy.context.scene
    motion = {}
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        motion[frame] = _heads(arm, rig.JOINT_NAMES)
    return motion


def _scene_state() -> dict:
    """Everything an export could leave changed: objects, names, parents, visibility, selection, bone names, the
    F-curves and vertex groups naming them, data-block counts, active object and frame."""
    from blender_addon.export import fcurves

    objects = {}
    for obj in bpy.data.objects:
        objects[obj.name] = (
            obj.type, obj.parent.name if obj.parent else None, obj.hide_viewport, obj.hide_get(), obj.select_get(),
            tuple(b.name for b in obj.data.bones) if obj.type == "ARMATURE" else (),
            tuple(sorted((c.data_path, c.array_index, c.mute) for c in fcurves(obj))),
            tuple(g.name for g in obj.vertex_groups) if obj.type == "MESH" else (),
            tuple(obj.matrix_world.translation),
        )  # fmt: skip
    counts = tuple(len(getattr(bpy.data, kind)) for kind in ("objects", "armatures", "actions", "meshes"))
    active = bpy.context.view_layer.objects.active
    return {"objects": objects, "counts": counts, "active": active.name if active else None,
            "frame": bpy.context.scene.frame_current}


def _assert_unchanged(before: dict) -> None:
    after = _scene_state()
    changed = {name: (state, after["objects"].get(name)) for name, state in before["objects"].items()
               if after["objects"].get(name) != state}
    added = set(after["objects"]) - set(before["objects"])
    assert not changed and not added, (changed, added)
    assert after == before


def _fbx_global_settings(path: Path) -> dict[str, object]:
    """The FBX file's GlobalSettings properties (UpAxis, UnitScaleFactor, ...), read with Blender's FBX parser."""
    from io_scene_fbx import parse_fbx

    root, _version = parse_fbx.parse(str(path))
    settings = next(e for e in root.elems if e.id == b"GlobalSettings")
    props = next(e for e in settings.elems if e.id == b"Properties70")
    return {p.props[0].decode(): p.props[4] for p in props.elems if len(p.props) > 4}


def _reimported(path: Path, fps: int = 25) -> list[bpy.types.Object]:
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = fps  # glTF stores seconds: frames come back at the scene's rate
    suffix = path.suffix.lower()
    if suffix == ".fbx":
        # The file's own axes and units, as an engine reads them; key times as written (frame k at k / fps: the
        # importer's default Animation Offset would add a frame).
        bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    elif suffix == ".glb":
        bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        bpy.ops.import_anim.bvh(filepath=str(path), frame_start=1)  # the importer's defaults: Y up, metres
    return sorted((o for o in bpy.data.objects if o.type == "ARMATURE"), key=lambda o: o.name)


def _key_counts(arm) -> set[int]:
    from blender_addon.export import fcurves

    return {len(c.keyframe_points) for c in fcurves(arm) if c.data_path.startswith("pose.bones")}


def _check_motion(imported, original: dict[int, np.ndarray], scheme: str) -> None:
    """Every frame's joints where they were (metres, Z up), on the same frame."""
    names = [_all_names(scheme)[joint] for joint in rig.JOINT_NAMES]
    for frame, heads in original.items():
        bpy.context.scene.frame_set(frame)
        error = np.abs(_heads(imported, names) - heads).max()
        assert error < 1e-3, (scheme, frame, error)


def _all_names(scheme: str) -> dict[str, str]:
    from blender_addon import bone_naming

    return bone_naming.bone_names(scheme)


def _check_bone_names(arm, scheme: str, root: bool = False) -> None:
    names = {b.name for b in arm.data.bones}
    assert set(ENGINE_BONES[scheme].values()) <= names, sorted(names)
    assert len(names) == len(rig.JOINT_NAMES) + root  # no leaf bones, nothing else
    if root:
        assert arm.data.bones[ENGINE_BONES[scheme]["Pelvis"]].parent.name == "root"
    if scheme in RIGMAP_SCHEME:  # the retarget side recognises the exported rig as that engine's
        parents = {b.name: b.parent.name if b.parent else None for b in arm.data.bones}
        mapping = rigmap.recognise(list(names), parents)
        assert mapping.scheme == RIGMAP_SCHEME[scheme] and not mapping.missing_legs()


# --- FBX per engine -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(FBX_PRESETS))
def test_fbx_preset_has_engine_names_axes_units_and_motion(people, tmp_path: Path, preset: str) -> None:
    scheme, unit_scale, per_person = FBX_PRESETS[preset]
    first = min(people)  # seen on every frame
    original = _motion(people[first])
    before = _scene_state()
    path = tmp_path / "take.fbx"
    assert bpy.ops.troupe.export_fbx(filepath=str(path), preset=preset, scope="ALL") == {"FINISHED"}
    _assert_unchanged(before)
    files = {name: tmp_path / f"take_{bpy.path.clean_name(name)}.fbx" for name in people} if per_person \
        else {name: path for name in people}
    assert sorted(tmp_path.iterdir()) == sorted(set(files.values()))
    settings = _fbx_global_settings(files[first])
    assert (settings["UpAxis"], settings["UpAxisSign"]) == (1, 1)  # Y up
    assert settings["UnitScaleFactor"] == pytest.approx(unit_scale)
    armatures = _reimported(files[first])
    if per_person:
        (imported,) = armatures
        assert imported.name == ("Armature" if preset == "UNREAL" else first)
    else:
        assert [a.name for a in armatures] == sorted(people)
        imported = next(a for a in armatures if a.name == first)
    _check_bone_names(imported, scheme, root=preset == "UNREAL")
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == (1 if per_person else len(people))
    bones = {b.name for b in imported.data.bones}
    for mesh in meshes:  # skinned to the renamed bones
        assert {g.name for g in mesh.vertex_groups} <= {b.name for a in armatures for b in a.data.bones}
    assert {g.name for g in meshes[0].vertex_groups} & bones
    frames = len(original)
    assert _key_counts(imported) == {frames}
    _check_motion(imported, original, scheme)
    if preset == "UNREAL":  # root motion: the root travels under the pelvis, on the floor
        travel = []
        for frame in sorted(original):
            bpy.context.scene.frame_set(frame)
            root, pelvis = _heads(imported, ["root", "pelvis"])
            assert np.abs(root[:2] - pelvis[:2]).max() < 1e-3 and abs(root[2]) < 1e-3, frame
            travel.append(root[:2])
        assert np.ptp(np.array(travel), axis=0).max() > 0.05  # the fixture's person does move
    height = max(h[:, 2].max() - h[:, 2].min() for h in original.values())
    assert 0.5 < height < 2.5  # the fixture's people are people-sized: the check above is in metres


def test_fbx_animation_only_and_naming_override(people, tmp_path: Path) -> None:
    path = tmp_path / "anim.fbx"
    assert bpy.ops.troupe.export_fbx(filepath=str(path), preset="UNITY", naming="MIXAMO", animation_only=True,
                                     scope="ALL") == {"FINISHED"}
    armatures = _reimported(path)
    assert len(armatures) == len(people) and not [o for o in bpy.data.objects if o.type == "MESH"]
    _check_bone_names(armatures[0], "MIXAMO")


# --- BVH, glTF ----------------------------------------------------------------------------------------------


def test_bvh_is_y_up_metres_with_chosen_names(people, tmp_path: Path) -> None:
    first = min(people)
    original = _motion(people[first])
    before = _scene_state()
    assert bpy.ops.troupe.export_bvh(filepath=str(tmp_path / "take.bvh"), naming="UE5", scope="ALL") == {"FINISHED"}
    _assert_unchanged(before)
    text = (tmp_path / f"take_{bpy.path.clean_name(first)}.bvh").read_text()
    assert "ROOT pelvis" in text and "JOINT thigh_l" in text
    (imported,) = _reimported(tmp_path / f"take_{bpy.path.clean_name(first)}.bvh")
    assert _key_counts(imported) == {len(original)}
    _check_motion(imported, original, "UE5")


@pytest.mark.parametrize("naming", ["SMPL", "HUMANOID"])
def test_glb_round_trip_keeps_names_frames_and_motion(people, tmp_path: Path, naming: str) -> None:
    first = min(people)
    original = _motion(people[first])
    fps = bpy.context.scene.render.fps
    before = _scene_state()
    path = tmp_path / "people.glb"
    assert bpy.ops.troupe.export_gltf(filepath=str(path), scope="ALL", naming=naming) == {"FINISHED"}
    _assert_unchanged(before)
    armatures = _reimported(path, fps)
    assert [a.name for a in armatures] == sorted(people)
    imported = armatures[0]
    _check_bone_names(imported, naming)
    start, end = imported.animation_data.action.frame_range
    assert (round(start), round(end)) == (min(original), max(original))
    assert _key_counts(imported) == {len(original)}
    _check_motion(imported, original, naming)


# --- every File > Export entry ------------------------------------------------------------------------------


def test_every_export_menu_entry_writes_and_leaves_the_scene_as_it_was(addon, people, tmp_path: Path) -> None:
    """Each preset as the menu offers it, on the selected person only: files written, nothing in the scene
    changed (names, selection, visibility, bones, curves), even with a user object named ``Armature``."""
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    chosen = people[max(people)]
    chosen.select_set(True)
    bpy.context.scene.frame_set(3)
    before = _scene_state()
    for number, (idname, _label, settings) in enumerate(addon.menus.EXPORT_ENTRIES):
        operator = getattr(bpy.ops.troupe, idname.split(".")[1])
        folder = tmp_path / str(number)
        folder.mkdir()
        suffix = {"troupe.export_bvh": ".bvh", "troupe.export_gltf": ".glb", "troupe.export_amass": ".npz"}
        path = folder / f"take{suffix.get(idname, '.fbx')}"
        assert operator(filepath=str(path), scope="SELECTED", **settings) == {"FINISHED"}
        assert [p.name for p in folder.iterdir()] == [path.name], idname
        _assert_unchanged(before)


def test_glb_export_needs_people(addon, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no people to export"):
        bpy.ops.troupe.export_gltf(filepath=str(tmp_path / "none.glb"), scope="ALL")


# --- headless ------------------------------------------------------------------------------------------------


def _script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**blender_env(), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "export_result.py"), *args, "--zip",
                           str(built_zip())], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_script_exports_a_result_for_unreal(tmp_path: Path) -> None:
    proc = _script(str(fixture_result()), str(tmp_path / "out" / "take.fbx"), "--preset", "unreal",
                   "--animation-only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["take_Person_7.fbx", "take_Person_8.fbx", "take_Person_9.fbx"]
    (imported,) = _reimported(files[0])
    assert imported.name == "Armature" and not [o for o in bpy.data.objects if o.type == "MESH"]
    _check_bone_names(imported, "UE5", root=True)


def test_script_refuses_a_missing_input_in_one_line(tmp_path: Path) -> None:
    proc = _script(str(tmp_path / "nothing.npz"), str(tmp_path / "take.glb"), "--preset", "glb", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"export_result: error: no result (.npz) or .blend file at "
                                                f"{tmp_path / 'nothing.npz'}"]
    assert not (tmp_path / "take.glb").exists()


@pytest.mark.parametrize("preset", ["UNITY", "UNREAL"])
def test_failed_export_leaves_the_scene_as_it_was(people, tmp_path: Path, preset: str) -> None:
    """The exporter fails part-way (its folder does not exist): one line, the copies gone, the originals' names
    back."""
    before = _scene_state()
    with pytest.raises(RuntimeError, match=r"Troupe: could not export to .*missing.*take\.fbx: .*No such file"):
        bpy.ops.troupe.export_fbx(filepath=str(tmp_path / "missing" / "take.fbx"), preset=preset, scope="ALL")
    _assert_unchanged(before)


def test_script_exports_people_from_a_blend(people, tmp_path: Path) -> None:
    """A saved scene (here with a person renamed by the user) exports as it is, without being saved over."""
    people[min(people)].name = "Dancer"
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
    saved = blend.stat().st_mtime_ns
    proc = _script(str(blend), str(tmp_path / "out" / "take.bvh"), "--preset", "bvh", "--naming", "mixamo",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"take_{bpy.path.clean_name(name)}.bvh" for name in ["Dancer", *sorted(people)[1:]])
    assert "ROOT mixamorig:Hips" in (tmp_path / "out" / "take_Dancer.bvh").read_text()
    assert blend.stat().st_mtime_ns == saved
