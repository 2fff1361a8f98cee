"""Retargeting onto users' rigs, in real Blender: Mixamo-, UE5- and VRM-named armatures built here in T-pose and
A-pose (different bone rolls, facing, object scale, proportions), Blender's bundled Rigify (metarig and generated
rig), presets and bad input.

Tolerance: a target built as a uniformly scaled copy of the person's skeleton (renamed, extra bones, A-pose,
rolled bones) must put every mapped joint where the person's joint is, scaled by the leg-length ratio about the
root's rest, within 1 mm per metre of scale (keys are float32).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_fixtures import enable_addon, fixture_result, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")

from blender_addon import rig  # noqa: E402  (numpy only)

MIXAMO = {
    "Pelvis": "Hips", "Spine1": "Spine", "Spine2": "Spine1", "Spine3": "Spine2", "Neck": "Neck", "Head": "Head",
    **{f"{s}_{j}": f"{side}{b}" for s, side in (("L", "Left"), ("R", "Right")) for j, b in (
        ("Hip", "UpLeg"), ("Knee", "Leg"), ("Ankle", "Foot"), ("Foot", "ToeBase"), ("Collar", "Shoulder"),
        ("Shoulder", "Arm"), ("Elbow", "ForeArm"), ("Wrist", "Hand"))},
}  # fmt: skip
UE5 = {
    "Pelvis": "pelvis", "Spine1": "spine_01", "Spine2": "spine_03", "Spine3": "spine_05", "Neck": "neck_01",
    "Head": "head",
    **{f"{s}_{j}": f"{b}_{s.lower()}" for s in ("L", "R") for j, b in (
        ("Hip", "thigh"), ("Knee", "calf"), ("Ankle", "foot"), ("Foot", "ball"), ("Collar", "clavicle"),
        ("Shoulder", "upperarm"), ("Elbow", "lowerarm"), ("Wrist", "hand"))},
}  # fmt: skip
VRM = {
    "Pelvis": "Hips", "Spine1": "Spine", "Spine2": "Chest", "Spine3": "UpperChest", "Neck": "Neck", "Head": "Head",
    **{f"{s}_{j}": f"{side}{b}" for s, side in (("L", "Left"), ("R", "Right")) for j, b in (
        ("Hip", "UpperLeg"), ("Knee", "LowerLeg"), ("Ankle", "Foot"), ("Foot", "Toes"), ("Collar", "Shoulder"),
        ("Shoulder", "UpperArm"), ("Elbow", "LowerArm"), ("Wrist", "Hand"))},
}  # fmt: skip
ARM_JOINTS = {"L": (16, 18, 20, 22), "R": (17, 19, 21, 23)}


@pytest.fixture()
def people(addon) -> dict[int, bpy.types.Object]:
    collection = addon.scene.build_scene(fixture_result(), with_mesh=False, with_background=False)
    return {int(arm["troupe_track_id"]): arm for arm in addon.scene.iter_people(collection)}


def _rotation(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i = "XYZ".index(axis)
    m = np.eye(3)
    j, k = (i + 1) % 3, (i + 2) % 3
    m[j, j], m[j, k], m[k, j], m[k, k] = c, -s, s, c
    return m


def build_rig(name: str, person: bpy.types.Object, names: dict[str, str], *, scale: float = 1.0,
              a_pose: bool = False, facing_deg: float = 0.0, cm_object: bool = False,
              extra_spine: bool = False, leg_stretch: float = 1.0) -> bpy.types.Object:
    """A rig with the person's proportions times ``scale`` (legs times ``leg_stretch`` more), its own names,
    rolled bones, optionally in A-pose, turned by ``facing_deg`` about Z, or stored in centimetres under an
    object turned and scaled like a Mixamo FBX import. UE5-style extra spine/neck bones and a root with
    ``extra_spine``; twist helpers always (they must not be mapped)."""
    heads = np.array([list(person.data.bones[j].head_local) for j in rig.JOINT_NAMES]) * scale
    legs = [1, 2, 4, 5, 7, 8, 10, 11]
    hip_height = heads[[1, 2], 2].mean()
    heads[legs, 2] = hip_height + (heads[legs, 2] - hip_height) * leg_stretch
    if a_pose:
        for side, sign in (("L", 1.0), ("R", -1.0)):
            pivot = heads[ARM_JOINTS[side][0]]
            turn = _rotation("Y", 45.0 * sign)
            for j in ARM_JOINTS[side]:
                heads[j] = pivot + turn @ (heads[j] - pivot)
    heads = heads @ _rotation("Z", facing_deg).T
    object_matrix = np.eye(4)
    if cm_object:  # Mixamo via FBX: bones in cm in a Y-up space, object rotated 90 degrees about X and scaled 0.01
        heads = (heads @ _rotation("X", -90.0).T) * 100.0
        object_matrix[:3, :3] = _rotation("X", 90.0) * 0.01
    arm_data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm_data)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = [list(row) for row in object_matrix]
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = arm_data.edit_bones
    made: dict[int, bpy.types.EditBone] = {}
    for j, joint in enumerate(rig.JOINT_NAMES):
        if joint not in names:
            continue
        bone = bones.new(names[joint])
        child = rig.PRIMARY_CHILD.get(j)
        while child is not None and rig.JOINT_NAMES[child] not in names:
            child = rig.PRIMARY_CHILD.get(child)
        tail = heads[child] if child is not None else heads[j] + (heads[j] - heads[rig.PARENTS[j]])
        bone.head, bone.tail = heads[j], tail
        bone.roll = 0.4 * j - 2.0  # every bone rolled differently
        made[j] = bone
    for j, bone in made.items():
        p = rig.PARENTS[j]
        while p >= 0 and p not in made:
            p = rig.PARENTS[p]
        if p >= 0:
            bone.parent = made[p]
    if extra_spine:  # UE5: spine_02/04 between the mapped ones, neck_02, a root at the origin
        root = bones.new("root")
        root.head, root.tail = (0, 0, 0), (0, -0.2 * scale * (100 if cm_object else 1), 0)
        made[0].parent = root
        for new, low, high in (("spine_02", 3, 6), ("spine_04", 6, 9), ("neck_02", 12, 15)):
            bone = bones.new(new)
            bone.head = (heads[low] + heads[high]) / 2
            bone.tail = heads[high]
            bone.parent = made[low]
            made[low].tail = bone.head
            for j, child in made.items():
                if rig.PARENTS[j] == low and child.name not in ("spine_02", "spine_04", "neck_02"):
                    child.parent = bone
    for j in (1, 2, 16, 17):
        if j in made:
            twist = bones.new(made[j].name + "_twist_01" if not extra_spine else f"twist_01_{made[j].name}")
            twist.head, twist.tail, twist.parent = made[j].head, (made[j].head + made[j].tail) / 2, made[j]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _heads(obj: bpy.types.Object, bone_names: list[str]) -> np.ndarray:
    return np.array([list(obj.matrix_world @ obj.pose.bones[name].head) for name in bone_names])


def _follow_error(person, target, names: dict[str, str], scale: float) -> float:
    """Largest distance (m) over the person's visible frames between a mapped target joint and where the person's
    joint puts it: the target's root rest plus the scaled displacement from the person's root rest."""
    scene = bpy.context.scene
    joints = [j for j in rig.JOINT_NAMES if j in names]
    person_root = np.array(person.matrix_world @ person.data.bones["Pelvis"].head_local)
    target_root = np.array(target.matrix_world @ target.data.bones[names["Pelvis"]].head_local)
    worst = 0.0
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        if person.hide_viewport:
            continue
        expected = target_root + scale * (_heads(person, joints) - person_root)
        worst = max(worst, float(np.abs(_heads(target, [names[j] for j in joints]) - expected).max()))
    return worst


@pytest.mark.parametrize(("names", "options"), [
    (MIXAMO, {"cm_object": True}),
    (MIXAMO, {"a_pose": True, "scale": 1.2}),
    (UE5, {"extra_spine": True, "a_pose": True, "scale": 0.9}),
    (VRM, {"facing_deg": 180.0}),
    (VRM, {"a_pose": True, "facing_deg": 90.0, "scale": 1.1}),
], ids=["mixamo-fbx-cm", "mixamo-apose", "ue5-apose", "vrm-facing-y", "vrm-apose-turned"])
def test_mapped_joints_follow_the_person(addon, people, names: dict[str, str], options: dict) -> None:
    person = people[min(people)]
    target = build_rig("Target", person, names, **options)
    found = addon.retarget.detect(target)
    assert found.bones == {j: b for j, b in names.items()}, found.bones  # recognised by name, twists ignored
    with pytest.raises(RuntimeError, match="one target for 3 people"):  # without copies, one person per target
        bpy.ops.troupe.retarget(target=target.name, scope="ALL", copies=False)
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj == person)
    assert bpy.ops.troupe.retarget(target=target.name, scope="SELECTED") == {"FINISHED"}
    scale = options.get("scale", 1.0)
    assert _follow_error(person, target, names, scale) < 1e-3 * scale
    assert target.animation_data.action.name.endswith(person.name)
    assert [item.bone for item in target.troupe_bone_map if item.joint == "L_Knee"] == [names["L_Knee"]]


def test_all_people_in_one_go_onto_copies(addon, people) -> None:
    first = people[min(people)]
    build_rig("Hero", first, MIXAMO, a_pose=True)
    assert bpy.ops.troupe.retarget(target="Hero", scope="ALL", copies=True) == {"FINISHED"}
    rigs = [o for o in bpy.data.objects if o.name.startswith("Hero")]
    assert len(rigs) == len(people)
    for person in people.values():
        (copy,) = [r for r in rigs if r.animation_data and r.animation_data.action.name.endswith(person.name)]
        if person == first:
            assert _follow_error(person, copy, MIXAMO, 1.0) < 1e-3
        else:  # other people have other proportions: the rig's bones point where theirs do
            assert max(_segment_angles(person, copy, MIXAMO)) < 0.5
            assert [c.data_path for c in addon.export.fcurves(copy) if c.data_path.startswith("hide")]  # hidden too


def test_different_proportions_keep_every_bone_direction(addon, people) -> None:
    """Longer legs: positions cannot match, but each mapped bone points where the person's does, and the root
    travels the person's distance times the leg-length ratio."""
    person = people[min(people)]
    target = build_rig("Long", person, UE5, extra_spine=True, leg_stretch=1.3)
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj == person)
    assert bpy.ops.troupe.retarget(target="Long", scope="SELECTED") == {"FINISHED"}
    scene = bpy.context.scene
    segments = [("L_Hip", "L_Knee"), ("L_Knee", "L_Ankle"), ("R_Hip", "R_Knee"), ("L_Shoulder", "L_Elbow"),
                ("R_Elbow", "R_Wrist"), ("Spine1", "Spine2"), ("Neck", "Head")]
    roots = []
    for frame in (scene.frame_start, scene.frame_start + 5, scene.frame_end):
        scene.frame_set(frame)
        for a, b in segments:
            src = np.subtract(*_heads(person, [b, a]))
            dst = np.subtract(*_heads(target, [UE5[b], UE5[a]]))
            cos = np.dot(src, dst) / np.linalg.norm(src) / np.linalg.norm(dst)
            assert np.degrees(np.arccos(min(1.0, cos))) < 0.5, (frame, a, b)
        roots.append((_heads(person, ["Pelvis"])[0], _heads(target, ["pelvis"])[0]))
    ratio = (np.linalg.norm(roots[-1][1] - roots[0][1]) / np.linalg.norm(roots[-1][0] - roots[0][0]))
    assert ratio == pytest.approx(1.3, rel=0.05)  # legs 1.3x longer, the rest of the body unchanged


def test_heuristics_map_an_unknown_naming(addon) -> None:
    names = ["Bip01 Pelvis", "Bip01 Spine", "Bip01 Spine1", "Bip01 Neck", "Bip01 Head", "Bip01 L Thigh",
             "Bip01 L Calf", "Bip01 L Foot", "Bip01 L Toe0", "Bip01 R Thigh", "Bip01 R Calf", "Bip01 R Foot",
             "Bip01 L Clavicle", "Bip01 L UpperArm", "Bip01 L Forearm", "Bip01 L Hand", "Bip01 L Finger0",
             "Bip01 L ForeTwist"]
    parents = {"Bip01 Pelvis": None, "Bip01 Spine": "Bip01 Pelvis", "Bip01 Spine1": "Bip01 Spine",
               "Bip01 Neck": "Bip01 Spine1", "Bip01 Head": "Bip01 Neck", "Bip01 L Thigh": "Bip01 Pelvis",
               "Bip01 L Calf": "Bip01 L Thigh", "Bip01 L Foot": "Bip01 L Calf", "Bip01 L Toe0": "Bip01 L Foot",
               "Bip01 R Thigh": "Bip01 Pelvis", "Bip01 R Calf": "Bip01 R Thigh", "Bip01 R Foot": "Bip01 R Calf",
               "Bip01 L Clavicle": "Bip01 Neck", "Bip01 L UpperArm": "Bip01 L Clavicle",
               "Bip01 L Forearm": "Bip01 L UpperArm", "Bip01 L Hand": "Bip01 L Forearm",
               "Bip01 L Finger0": "Bip01 L Hand", "Bip01 L ForeTwist": "Bip01 L Forearm"}
    found = addon.rigmap.recognise(names, parents)
    assert found.scheme == "heuristic" and not found.missing_legs()
    assert found.bones["L_Knee"] == "Bip01 L Calf" and found.bones["R_Ankle"] == "Bip01 R Foot"
    assert found.bones["L_Collar"] == "Bip01 L Clavicle" and found.bones["L_Elbow"] == "Bip01 L Forearm"
    assert found.bones["Spine1"] == "Bip01 Spine" and found.bones["Spine3"] == "Bip01 Spine1"
    assert "Bip01 L ForeTwist" not in found.bones.values() and "Bip01 L Finger0" not in found.bones.values()


def test_presets_save_load_and_refuse_missing_bones(addon, people, tmp_path: Path) -> None:
    person = people[min(people)]
    target = build_rig("Char", person, MIXAMO)
    assert bpy.ops.troupe.detect_mapping(target="Char") == {"FINISHED"}
    knee = next(item for item in target.troupe_bone_map if item.joint == "L_Knee")
    knee.bone = "LeftLeg"  # an edit the user makes in the list survives the preset round trip
    assert bpy.ops.troupe.save_mapping(name="my mixamo", target="Char") == {"FINISHED"}
    path = addon.retarget.preset_dir() / "my mixamo.json"
    assert path.is_file() and Path(bpy.utils.user_resource("SCRIPTS")) in path.parents
    assert json.loads(path.read_text())["bones"]["L_Knee"] == "LeftLeg"
    other = build_rig("Other", person, MIXAMO)
    assert bpy.ops.troupe.load_mapping(name="my mixamo", target="Other") == {"FINISHED"}
    assert {i.joint: i.bone for i in other.troupe_bone_map if i.bone} == addon.retarget.stored_mapping(target)
    # a preset naming bones a rig lacks: refused with the names, the rig's list untouched
    ue = build_rig("Unreal", person, UE5, extra_spine=True)
    assert bpy.ops.troupe.detect_mapping(target="Unreal") == {"FINISHED"}
    before = addon.retarget.stored_mapping(ue)
    with pytest.raises(RuntimeError, match="does not fit 'Unreal'.*bones the rig does not have: .*LeftArm"):
        bpy.ops.troupe.load_mapping(name="my mixamo", target="Unreal")
    assert addon.retarget.stored_mapping(ue) == before


def _snapshot() -> tuple:
    return (tuple(sorted(o.name for o in bpy.data.objects)), len(bpy.data.actions),
            tuple(sorted((o.name, o.animation_data.action.name if o.animation_data and o.animation_data.action
                          else "") for o in bpy.data.objects)))


def test_bad_targets_are_refused_and_the_scene_is_unchanged(addon, people) -> None:
    person = people[min(people)]
    mesh = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    bpy.context.scene.collection.objects.link(mesh)
    build_rig("Torso", person, {j: b for j, b in MIXAMO.items() if "Knee" not in j and "Ankle" not in j})
    broken = build_rig("Broken", person, MIXAMO)
    addon.retarget.store_mapping(broken, {**MIXAMO, "L_Knee": "NoSuchBone"}, "custom")
    before = _snapshot()
    with pytest.raises(RuntimeError, match="'Cube' is not an armature"):
        bpy.ops.troupe.retarget(target="Cube")
    with pytest.raises(RuntimeError, match="no recognisable legs: no bone for L_Knee"):
        bpy.ops.troupe.retarget(target="Torso")
    with pytest.raises(RuntimeError, match="bones the rig does not have: NoSuchBone"):
        bpy.ops.troupe.retarget(target="Broken")
    with pytest.raises(RuntimeError, match="is a Troupe person"):
        bpy.ops.troupe.retarget(target=person.name)
    assert _snapshot() == before


RIGIFY_DEF = {"L_Hip": "DEF-thigh.L", "L_Knee": "DEF-shin.L", "L_Ankle": "DEF-foot.L", "R_Hip": "DEF-thigh.R",
              "R_Knee": "DEF-shin.R", "R_Ankle": "DEF-foot.R", "L_Shoulder": "DEF-upper_arm.L",
              "L_Elbow": "DEF-forearm.L", "L_Wrist": "DEF-hand.L", "R_Shoulder": "DEF-upper_arm.R",
              "R_Elbow": "DEF-forearm.R", "R_Wrist": "DEF-hand.R"}
RIGIFY_META = {joint: bone[4:] for joint, bone in RIGIFY_DEF.items()}


def test_rigify_metarig_and_generated_rig(tmp_path: Path) -> None:
    """Blender's bundled Rigify: its basic human metarig and the rig generated from it (FK controls keyed, limbs
    switched to FK). Each rig's limb segments, deforming bones for the generated one, must point where the
    person's do. In a subprocess: this Blender never exits after Rigify has generated a rig, so the child ends
    itself once it has printed its figures."""
    import subprocess
    import sys

    from tests.test_addon_fixtures import REPO_ROOT, blender_env

    code = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from tests.test_addon_retarget import rigify_main; "\
           f"rigify_main({str(fixture_result())!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**blender_env(), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=180)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RIGIFY ")), None)
    if line is None:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    report = json.loads(line[len("RIGIFY "):])
    if report.get("skip"):
        pytest.skip(report["skip"])
    assert report["meta_scheme"] == "rigify_metarig" and report["rig_scheme"] == "rigify", report
    assert report["ik_fk"] and all(v == 1.0 for v in report["ik_fk"])
    assert report["metarig_deg"] < 1.0 and report["rig_deg"] < 1.0, report


def rigify_main(result: str) -> None:
    """The subprocess side of the Rigify test: prints one ``RIGIFY {json}`` line, then exits at once."""
    import os

    try:
        print("RIGIFY " + json.dumps(_rigify_report(result)), flush=True)
    finally:
        sys_stdout_flush()
        os._exit(0)


def sys_stdout_flush() -> None:
    import sys

    sys.stdout.flush()
    sys.stderr.flush()


def _rigify_report(result: str) -> dict:
    import addon_utils

    addon = enable_addon("extension")
    if addon_utils.enable("rigify", default_set=True) is None:
        return {"skip": "Rigify is not bundled with this bpy"}
    bpy.ops.wm.read_homefile(use_empty=True)
    collection = addon.scene.build_scene(result, with_mesh=False, with_background=False)
    person = min(addon.scene.iter_people(collection), key=lambda p: int(p["troupe_track_id"]))
    bpy.ops.object.armature_basic_human_metarig_add()
    metarig = bpy.context.active_object
    meta_scheme = addon.retarget.detect(metarig).scheme
    bpy.ops.pose.rigify_generate()
    generated = bpy.context.active_object
    rig_scheme = addon.retarget.detect(generated).scheme
    for target in (metarig, generated):
        for obj in bpy.context.view_layer.objects:
            obj.select_set(obj == person)
        bpy.ops.troupe.retarget(target=target.name, scope="SELECTED")
    return {
        "meta_scheme": meta_scheme, "rig_scheme": rig_scheme,
        "ik_fk": [float(pb["IK_FK"]) for pb in generated.pose.bones if "IK_FK" in pb.keys()],
        "metarig_deg": max(_segment_angles(person, metarig, RIGIFY_META)),
        "rig_deg": max(_segment_angles(person, generated, RIGIFY_DEF)),
    }


def _leg_length(obj, hip: str, knee: str, ankle: str) -> float:
    heads = [np.array(obj.matrix_world @ obj.data.bones[n].head_local) for n in (hip, knee, ankle)]
    return float(np.linalg.norm(heads[1] - heads[0]) + np.linalg.norm(heads[2] - heads[1]))


def _segment_angles(person, target, names: dict[str, str]) -> list[float]:
    """Angles (degrees) between the person's limb segments and the target's, over the visible frames."""
    scene = bpy.context.scene
    segments = [(a, b) for a, b in (("L_Hip", "L_Knee"), ("L_Knee", "L_Ankle"), ("R_Hip", "R_Knee"),
                                     ("R_Knee", "R_Ankle"), ("L_Shoulder", "L_Elbow"), ("L_Elbow", "L_Wrist"),
                                     ("R_Shoulder", "R_Elbow"), ("R_Elbow", "R_Wrist")) if a in names and b in names]
    out = []
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        if person.hide_viewport:  # hidden people are not evaluated
            continue
        for a, b in segments:
            src = np.subtract(*_heads(person, [b, a]))
            dst = np.subtract(*_heads(target, [names[b], names[a]]))
            out.append(float(np.degrees(np.arccos(min(1.0, np.dot(src, dst) / np.linalg.norm(src)
                                                       / np.linalg.norm(dst))))))
    return out


def test_panels_draw_the_retarget_list_and_cleanup(addon, people) -> None:
    """The Retarget and Feet and Floor panels name only properties and operators that exist."""
    from tests.test_addon_ui import RecordingLayout, _draw

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kwargs) -> None:
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self.log.setdefault("lists", []).append(prop)

    RecordingLayout.template_list = template_list
    target = build_rig("Char", people[min(people)], MIXAMO)
    bpy.context.scene.troupe_finish.target = target
    bpy.ops.troupe.detect_mapping()
    log = _draw(addon.finish.VIEW3D_PT_troupe_retarget, bpy.context)
    assert {"troupe.retarget", "troupe.detect_mapping", "troupe.save_mapping", "troupe.load_mapping"} <= set(
        log["operators"])
    assert log["lists"] == ["troupe_bone_map"] and {"target", "scope", "copies", "preset_name"} <= set(log["props"])
    log = _draw(addon.finish.VIEW3D_PT_troupe_cleanup, bpy.context)
    assert {"troupe.plant_feet", "troupe.find_floor"} <= set(log["operators"])


def test_headless_script_plants_finds_floor_and_retargets(addon, people, tmp_path: Path) -> None:
    """``scripts/retarget_result.py`` in its own process: a result and a rig .blend in, a finished .blend out."""
    import subprocess
    import sys

    from tests.test_addon_fixtures import REPO_ROOT, blender_env, built_zip

    rig_obj = build_rig("Hero", people[min(people)], MIXAMO, a_pose=True)
    rig_blend = tmp_path / "hero.blend"
    bpy.data.libraries.write(str(rig_blend), {rig_obj})
    out = tmp_path / "finished.blend"
    script = [sys.executable, str(REPO_ROOT / "scripts" / "retarget_result.py"), str(fixture_result()), str(out),
              "--rig", str(rig_blend), "--plant-feet", "--find-floor", "--no-mesh", "--zip", str(built_zip())]
    env = {**blender_env(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(script, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 rigs retargeted" in proc.stdout and out.is_file()
    proc = subprocess.run(script[:4] + ["--rig", str(tmp_path / "missing.fbx"), "--zip", str(built_zip())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1 and "retarget_result: error:" in proc.stderr
