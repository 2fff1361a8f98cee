"""Export people to FBX (engine presets), BVH and AMASS-style npz.

Exports read what is in the scene (the keyed armatures), so edits made after the import are exported too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from . import bone_naming, rig
from .export_copies import export_copies
from .properties import FBX_PRESETS, SCOPES
from .scene import PROP_BETAS, PROP_BODY, PROP_FPS, PROP_TRACK, bone_rest_rotations

VISIBILITY_PATHS = ("hide_viewport", "hide_render")
FBX_COMMON = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "add_leaf_bones": False,
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_simplify_factor": 0.0,
    "use_armature_deform_only": False,
    "axis_forward": "-Z",
    "axis_up": "Y",
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
}
# Per engine: the file's units and axes (a 1.7 m person is 1.7 m in Unity, 170 cm in Unreal and in Mixamo's
# centimetre files: UnitScaleFactor 100 with metres, or 1 with centimetres), the bone names its humanoid tools
# map, and whether each person goes to a file of their own (Unreal and Mixamo import one skeleton per file).
FBX_PRESET_OPTIONS = {
    "UNITY": {"apply_scale_options": "FBX_SCALE_ALL", "apply_unit_scale": True, "bake_space_transform": True},
    "UNREAL": {"apply_scale_options": "FBX_SCALE_NONE", "apply_unit_scale": True, "mesh_smooth_type": "FACE"},
    "MIXAMO": {"apply_scale_options": "FBX_SCALE_NONE", "apply_unit_scale": True},
}
FBX_PRESET_NAMING = {"UNITY": "HUMANOID", "UNREAL": "UE5", "MIXAMO": "MIXAMO"}
FBX_FILE_PER_PERSON = {"UNREAL", "MIXAMO"}
UNREAL_ARMATURE_NAME = "Armature"  # Unreal's importer skips a root node so named instead of adding a bone
NAMING_CHOICES = [("PRESET", "Engine's", "The names the chosen engine expects"), *bone_naming.NAMINGS]


def troupe_people(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """Every armature built by Troupe in the scene, ordered by name."""
    return sorted((o for o in scene.objects if o.type == "ARMATURE" and PROP_TRACK in o), key=lambda o: o.name)


def people_for_export(context: bpy.types.Context, scope: str) -> list[bpy.types.Object]:
    """'ALL' people, or the 'SELECTED' ones (armature or its body mesh selected)."""
    people = troupe_people(context.scene)
    if scope == "ALL":
        return people
    return [p for p in people if p.select_get() or any(c.select_get() for c in p.children)]


class _Selection:
    """Select exactly ``objects`` for an exporter, visible whatever the frame; restore everything afterwards.

    People are hidden by keyed visibility outside their frames, and exporters skip hidden objects, so those keys
    are muted for the duration.
    """

    def __init__(self, context: bpy.types.Context, objects: Iterable[bpy.types.Object]) -> None:
        self.context = context
        self.view_layer = context.view_layer
        self.objects = list(objects)
        self.muted: list[bpy.types.FCurve] = []

    def __enter__(self) -> None:
        self.before = [o for o in self.view_layer.objects if o.select_get()]
        self.active = self.view_layer.objects.active
        for obj in self.before:
            obj.select_set(False)
        self.hidden = [(obj, obj.hide_viewport, obj.hide_render, obj.hide_get()) for obj in self.objects]
        for obj in self.objects:
            for curve in fcurves(obj):
                if curve.data_path in VISIBILITY_PATHS and not curve.mute:
                    curve.mute = True
                    self.muted.append(curve)
            obj.hide_viewport = obj.hide_render = False
            obj.hide_set(False)
            obj.select_set(True)
        self.view_layer.objects.active = self.objects[0]

    def __exit__(self, *exc: object) -> None:
        for obj in self.objects:
            obj.select_set(False)
        for obj, viewport, render, hidden in self.hidden:
            obj.hide_viewport, obj.hide_render = viewport, render
            obj.hide_set(hidden)
        for curve in self.muted:
            curve.mute = False
        for obj in self.before:
            obj.select_set(True)
        self.view_layer.objects.active = self.active
        scene = self.context.scene
        scene.frame_set(scene.frame_current)  # re-apply the visibility keys


def export_fbx(context: bpy.types.Context, people: list[bpy.types.Object], filepath: str | Path, preset: str,
               naming: str = "PRESET", animation_only: bool = False) -> list[Path]:
    """FBX for ``preset``'s engine, animation baked over the scene range, bones renamed on copies (the scene is
    left as it was). All people in one file, or one file per person (``filepath`` gets the person's name) for
    the engines that import one skeleton at a time. ``animation_only`` leaves the body meshes out."""
    if not people:
        raise ValueError("no Troupe people to export")
    naming = FBX_PRESET_NAMING[preset] if naming == "PRESET" else naming
    options = {**FBX_COMMON, **FBX_PRESET_OPTIONS[preset]}
    if animation_only:
        options["object_types"] = {"ARMATURE"}
    groups = [[p] for p in people] if preset in FBX_FILE_PER_PERSON else [people]
    written = []
    for group in groups:
        path = _person_path(str(filepath), group[0], len(groups) > 1, ".fbx")
        names = [UNREAL_ARMATURE_NAME] if preset == "UNREAL" else None
        with export_copies(context, group, naming, with_mesh=not animation_only, object_names=names) as copies:
            with _Selection(context, copies.objects):
                bpy.ops.export_scene.fbx(filepath=str(path), **options)
        written.append(path)
    return written


GLTF_OPTIONS = {
    "use_selection": True,
    "export_yup": True,  # glTF is Y-up; the importer turns it back
    "export_animations": True,
    "export_animation_mode": "ACTIONS",
    "export_force_sampling": True,  # every frame baked, as engines play it
    "export_optimize_animation_size": False,  # keep one key per frame (engines and the round trip expect them)
    "export_anim_slide_to_zero": False,
    "export_def_bones": False,
    "export_leaf_bone": False,
}


def export_gltf(context: bpy.types.Context, people: list[bpy.types.Object], filepath: str | Path,
                binary: bool = True, naming: str = "SMPL", animation_only: bool = False) -> Path:
    """glTF 2.0 (GLB by default) with the armatures, their body meshes and each person's action, sampled every
    frame: the format web engines, Godot and three.js read (Y up and metres by the format's definition)."""
    if not people:
        raise ValueError("no Troupe people to export")
    with export_copies(context, people, naming, with_mesh=not animation_only) as copies:
        with _Selection(context, copies.objects):
            bpy.ops.export_scene.gltf(filepath=str(filepath), export_format="GLB" if binary else "GLTF_SEPARATE",
                                      **GLTF_OPTIONS)
    return Path(filepath)


def export_bvh(context: bpy.types.Context, armature: bpy.types.Object, filepath: str | Path,
               naming: str = "SMPL") -> Path:
    """One person's motion as BVH over the frames they are keyed on, Y up and in metres (BVH has no axis field;
    Y up is what MotionBuilder, CMU files and Blender's own importer assume)."""
    frames = keyed_frames(armature)
    # No extra root bone: BVH moves only its root, so the pelvis must be it.
    with export_copies(context, [armature], naming, with_mesh=False, y_up_rest=True, root_bone=False) as copies:
        (copy,) = copies.armatures
        with _Selection(context, [copy]):
            with context.temp_override(active_object=copy, object=copy, selected_objects=[copy]):
                bpy.ops.export_anim.bvh(filepath=str(filepath), frame_start=int(frames[0]),
                                        frame_end=int(frames[-1]), rotate_mode="NATIVE", root_transform_only=True)
    return Path(filepath)


def export_amass(armature: bpy.types.Object, filepath: str | Path, fps: float | None = None) -> Path:
    """AMASS-style npz: ``poses`` (n, 72) axis-angle, ``trans`` (n, 3), ``betas``, ``mocap_framerate``, ``gender``.

    Frames are every scene frame from the person's first to last key (gaps interpolated). AMASS bodies live in a
    Z-up world, so the root is expressed in Blender's world, not the camera frame: the body stands as in the scene.
    """
    frames = np.arange(keyed_frames(armature)[0], keyed_frames(armature)[-1] + 1)
    quat, location = sample_pose_keys(armature, frames)
    rest = rest_joints_model(armature)
    poses, transl = rig.bone_keys_to_pose(quat, location, rest, bone_rest_rotations(armature))
    poses, transl = rig.to_world_frame(poses, transl, rest)
    body = str(armature.get(PROP_BODY, ""))
    gender = next((g for g in ("female", "male") if body.endswith(g)), "neutral")
    np.savez(
        filepath,
        poses=poses.reshape(len(frames), -1),
        trans=transl,
        betas=np.asarray(armature.get(PROP_BETAS, []), dtype=np.float64),
        mocap_framerate=np.float64(fps or armature.get(PROP_FPS, 0.0) or 30.0),
        gender=np.str_(gender),
        body_model=np.str_(body),
        frames=frames,
    )  # fmt: skip
    return Path(filepath)


def rest_joints_model(armature: bpy.types.Object) -> np.ndarray:
    """The rest joints J (24, 3) in the body model's frame, read back from the bone heads."""
    heads = np.array([list(armature.data.bones[name].head_local) for name in rig.JOINT_NAMES])
    return heads @ rig.MODEL_TO_ARMATURE  # inverse of M (orthogonal) in row-vector form


def fcurves(obj: bpy.types.Object) -> Iterator[bpy.types.FCurve]:
    """The F-curves animating ``obj``: layered actions (4.4+, only kind in 5.0) or legacy ones."""
    anim = obj.animation_data
    action = anim.action if anim is not None else None
    if action is None:
        return
    layers = getattr(action, "layers", None)
    if layers:
        slot = anim.action_slot
        for layer in layers:
            for strip in layer.strips:
                bag = strip.channelbag(slot) if slot is not None else None
                if bag is not None:
                    yield from bag.fcurves
        return
    yield from getattr(action, "fcurves", [])


def keyed_frames(armature: bpy.types.Object) -> np.ndarray:
    """Frames where the root location is keyed (the frames the person was observed on)."""
    root_path = f'pose.bones["{rig.JOINT_NAMES[0]}"].location'
    for curve in fcurves(armature):
        if curve.data_path == root_path and curve.array_index == 0:
            co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
            curve.keyframe_points.foreach_get("co", co)
            return np.round(co[0::2]).astype(np.int64)
    raise ValueError(f"{armature.name} has no root animation")


def sample_pose_keys(armature: bpy.types.Object, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the rotation and root-location curves at ``frames``: (n, 24, 4) and (n, 3)."""
    curves = {(c.data_path, c.array_index): c for c in fcurves(armature)}
    quat = np.zeros((len(frames), rig.NUM_JOINTS, 4))
    quat[..., 0] = 1.0
    location = np.zeros((len(frames), 3))
    for j, name in enumerate(rig.JOINT_NAMES):
        for k in range(4):
            curve = curves.get((f'pose.bones["{name}"].rotation_quaternion', k))
            if curve is not None:
                quat[:, j, k] = [curve.evaluate(float(f)) for f in frames]
    for k in range(3):
        curve = curves.get((f'pose.bones["{rig.JOINT_NAMES[0]}"].location', k))
        if curve is not None:
            location[:, k] = [curve.evaluate(float(f)) for f in frames]
    return quat, location


def _person_path(filepath: str, armature: bpy.types.Object, many: bool, suffix: str) -> Path:
    path = Path(filepath)
    if not many:
        return path.with_suffix(suffix)
    return path.with_name(f"{path.stem}_{bpy.path.clean_name(armature.name)}{suffix}")


def _last_line(exc: BaseException) -> str:
    """The telling line of an exporter's error: a nested operator's message ends with its traceback's last line,
    then where the call was made."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("Location:")]
    return lines[-1] if lines else type(exc).__name__


class _ExportBase:
    """Shared by the export operators: the people to export, and a failed write reported in one line (the scene
    is left as it was: exports work on copies that are removed whatever happens)."""

    scope: EnumProperty(name="People", items=SCOPES, default="ALL")

    def execute(self, context: bpy.types.Context) -> set[str]:
        people = people_for_export(context, self.scope)
        if not people:
            self.report({"ERROR"}, "Troupe: no people to export (import or reconstruct first, or select some)")
            return {"CANCELLED"}
        try:
            paths = self.export(context, people)
        except (OSError, RuntimeError) as exc:
            reason = _last_line(exc)
            self.report({"ERROR"}, f"Troupe: could not export to {self.filepath}: {reason}")
            return {"CANCELLED"}
        where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files beside {self.filepath}"
        self.report({"INFO"}, f"Troupe: exported {len(people)} people to {where}")
        return {"FINISHED"}

    def export(self, context: bpy.types.Context, people: list[bpy.types.Object]) -> list[Path]:
        raise NotImplementedError


class _BoneNames:
    naming: EnumProperty(name="Bone Names", items=bone_naming.NAMINGS, default="SMPL",
                         description="Bone names in the file (the scene keeps its own)")


class _AnimationOnly:
    animation_only: BoolProperty(name="Animation Only", default=False,
                                 description="Armatures and their motion without the body meshes")


class TROUPE_OT_export_fbx(_ExportBase, bpy.types.Operator, ExportHelper, _AnimationOnly):
    """Export people as FBX with the axes, units and bone names a game engine or Mixamo expects"""

    bl_idname = "troupe.export_fbx"
    bl_label = "Export FBX"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", items=FBX_PRESETS, default="UNITY")
    naming: EnumProperty(name="Bone Names", items=NAMING_CHOICES, default="PRESET",
                         description="Bone names in the file (the scene keeps its own)")

    def export(self, context: bpy.types.Context, people: list[bpy.types.Object]) -> list[Path]:
        return export_fbx(context, people, self.filepath, self.preset, self.naming, self.animation_only)


class TROUPE_OT_export_bvh(_ExportBase, bpy.types.Operator, ExportHelper, _BoneNames):
    """Export each person's motion as BVH (one file per person), Y up, in metres"""

    bl_idname = "troupe.export_bvh"
    bl_label = "Export BVH"
    filename_ext = ".bvh"
    filter_glob: StringProperty(default="*.bvh", options={"HIDDEN"})

    def export(self, context: bpy.types.Context, people: list[bpy.types.Object]) -> list[Path]:
        return [export_bvh(context, person, _person_path(self.filepath, person, len(people) > 1, ".bvh"),
                           self.naming) for person in people]


class TROUPE_OT_export_amass(_ExportBase, bpy.types.Operator, ExportHelper):
    """Export each person as an AMASS-style .npz (SMPL poses, translation, shape, frame rate)"""

    bl_idname = "troupe.export_amass"
    bl_label = "Export AMASS npz"
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def export(self, context: bpy.types.Context, people: list[bpy.types.Object]) -> list[Path]:
        fps = context.scene.render.fps / context.scene.render.fps_base
        return [export_amass(person, _person_path(self.filepath, person, len(people) > 1, ".npz"), fps)
                for person in people]


class TROUPE_OT_export_gltf(_ExportBase, bpy.types.Operator, ExportHelper, _BoneNames, _AnimationOnly):
    """Export people as glTF binary (.glb): armatures, body meshes and motion sampled every frame"""

    bl_idname = "troupe.export_gltf"
    bl_label = "Export glTF"
    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb", options={"HIDDEN"})

    def export(self, context: bpy.types.Context, people: list[bpy.types.Object]) -> list[Path]:
        return [export_gltf(context, people, self.filepath, naming=self.naming, animation_only=self.animation_only)]


CLASSES = (TROUPE_OT_export_fbx, TROUPE_OT_export_bvh, TROUPE_OT_export_amass, TROUPE_OT_export_gltf)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
