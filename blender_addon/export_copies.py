"""Temporary copies of people prepared for one engine (bone names, a root bone, Y-up rest), removed afterwards.

Exporters write what is in the scene, and engines want their own bone names; renaming the user's armatures would
change their scene (and every F-curve and vertex group naming those bones). So each person is copied (object,
armature, action; body meshes with their mesh data, re-parented to the copy), the copy is adapted and exported,
and everything made is deleted again. The copies take their originals' object names for the duration (the
originals step aside under a temporary name), so the engine sees the names the user gave.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import radians

import bpy
import numpy as np
from mathutils import Matrix

from . import bone_naming, keyframes

ASIDE_SUFFIX = " (troupe export)"


@dataclass
class ExportCopies:
    """What was made: the armature copies (same order as the people) and every object to hand to an exporter."""

    armatures: list[bpy.types.Object] = field(default_factory=list)
    objects: list[bpy.types.Object] = field(default_factory=list)
    actions: list[bpy.types.Action] = field(default_factory=list)
    renamed: list[tuple[bpy.types.ID, str]] = field(default_factory=list)  # (user's object, its real name)


@contextmanager
def export_copies(context: bpy.types.Context, people: list[bpy.types.Object], naming: str = "SMPL",
                  with_mesh: bool = True, y_up_rest: bool = False, root_bone: bool = True,
                  object_names: list[str] | None = None) -> Iterator[ExportCopies]:
    """Copies of ``people`` with the bones named by ``naming`` (see :mod:`bone_naming`), a root bone where that
    scheme has one (unless ``root_bone`` is False), the rest turned Y-up for formats with no axis setting (BVH),
    optionally without the body meshes; ``object_names`` overrides the copies' names (Unreal wants
    ``Armature``). Deleted on exit, whatever happens, and the user's objects get their names back."""
    made = ExportCopies()
    names = object_names or [person.name for person in people]
    try:
        for person, name in zip(people, names, strict=True):
            _copy_person(context, person, name, naming, with_mesh, y_up_rest, root_bone, made)
        yield made
    finally:
        _remove(made)


def _copy_person(context: bpy.types.Context, person: bpy.types.Object, name: str, naming: str, with_mesh: bool,
                 y_up_rest: bool, root_bone: bool, made: ExportCopies) -> None:
    collection = context.scene.collection
    arm = person.copy()
    arm.data = person.data.copy()
    made.armatures.append(arm)
    made.objects.append(arm)
    collection.objects.link(arm)
    _take_name(arm, name, made)
    action = person.animation_data.action if person.animation_data else None
    if action is not None:
        copied = action.copy()
        made.actions.append(copied)
        slot = person.animation_data.action_slot if hasattr(person.animation_data, "action_slot") else None
        arm.animation_data.action = copied
        if slot is not None and getattr(arm.animation_data, "action_slot", None) is None:
            arm.animation_data.action_slot = copied.slots[slot.identifier]
    _show(arm)
    if with_mesh:
        for child in (c for c in person.children if c.type == "MESH"):
            _copy_mesh(child, arm, made)
    # Meshes first: renaming a bone renames the vertex groups of the meshes its armature deforms.
    for joint, bone in bone_naming.bone_names(naming).items():
        if joint != bone:
            arm.data.bones[joint].name = bone
    root = bone_naming.ROOT_BONE.get(naming) if root_bone else None
    if root or y_up_rest:
        _edit_rest(context, arm, root, y_up_rest)
    if root:
        _move_travel_to_root(arm, bone_naming.bone_names(naming)["Pelvis"], root)


def _copy_mesh(child: bpy.types.Object, arm: bpy.types.Object, made: ExportCopies) -> None:
    mesh = child.copy()
    mesh.data = child.data.copy()  # vertex group names live on the mesh data (Blender 3.0+): rename a copy
    for collection in arm.users_collection:
        collection.objects.link(mesh)
    mesh.parent = arm
    mesh.matrix_parent_inverse = child.matrix_parent_inverse.copy()
    for modifier in mesh.modifiers:
        if modifier.type == "ARMATURE":
            modifier.object = arm
    if mesh.animation_data and mesh.animation_data.action:
        mesh.animation_data.action = None  # visibility keys only
    _show(mesh)
    made.objects.append(mesh)
    _take_name(mesh, child.name, made)


def _show(obj: bpy.types.Object) -> None:
    """Unhide a copy for good: people are keyed hidden outside their frames, and hidden objects can be neither
    edited nor exported."""
    from .export import fcurves  # export imports this module

    for curve in fcurves(obj):
        if curve.data_path in ("hide_viewport", "hide_render"):
            curve.mute = True
    obj.hide_viewport = obj.hide_render = False


def _take_name(obj: bpy.types.Object, wanted: str, made: ExportCopies) -> None:
    """Give ``obj`` exactly ``wanted``: whoever holds the name steps aside until the copies are removed."""
    holder = bpy.data.objects.get(wanted)
    if holder is not None and holder is not obj:
        made.renamed.append((holder, wanted))
        holder.name = wanted + ASIDE_SUFFIX
    obj.name = wanted


def _edit_rest(context: bpy.types.Context, arm: bpy.types.Object, root: str | None, y_up_rest: bool) -> None:
    """Add the scheme's root bone at the origin above the top bone, and/or turn the rest pose Y-up.

    Pose values are relative to each bone's rest, so a rigid turn of the whole rest turns the motion with it."""
    view_layer = context.view_layer
    active = view_layer.objects.active
    view_layer.objects.active = arm
    with context.temp_override(active_object=arm, object=arm, selected_objects=[arm]):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            bones = arm.data.edit_bones
            if root:
                tops = [b for b in bones if b.parent is None]
                bone = bones.new(root)
                bone.head, bone.tail = (0.0, 0.0, 0.0), (0.0, 0.0, 0.1)  # along +Z: the engine's up after export
                bone.use_deform = False
                for top in tops:
                    top.parent = bone
            if y_up_rest:
                turn = Matrix.Rotation(radians(-90.0), 4, "X")  # Blender (x, y, z) -> BVH's Y-up (x, z, -y)
                # From recorded matrices, parents first: a connected child's head follows its parent's tail.
                rest = {bone.name: (bone.matrix.copy(), bone.length) for bone in bones}
                for bone in sorted(bones, key=lambda b: len(b.parent_recursive)):
                    matrix, length = rest[bone.name]
                    bone.matrix = turn @ matrix
                    bone.length = length
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = active


def _move_travel_to_root(arm: bpy.types.Object, pelvis: str, root: str) -> None:
    """Engines with a root bone (Unreal) take root motion from it: the pelvis's travel over the floor (armature
    x, y) moves to the root, the pelvis keeps its height and its offset from the root. World poses are unchanged."""
    from .export import fcurves

    path = f'pose.bones["{pelvis}"].location'
    curves = sorted((c for c in fcurves(arm) if c.data_path == path), key=lambda c: c.array_index)
    if len(curves) != 3:
        return
    keys = []
    for curve in curves:
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float64)
        curve.keyframe_points.foreach_get("co", co)
        keys.append(co.reshape(-1, 2))
    frames = keys[0][:, 0]
    if any(len(k) != len(frames) or not np.allclose(k[:, 0], frames) for k in keys):
        return  # not keyed together: leave the travel on the pelvis
    location = np.stack([k[:, 1] for k in keys], axis=1)
    bone = arm.data.bones[pelvis]
    rest = np.array(bone.matrix_local.to_3x3())  # pose location is along the bone's rest axes
    travel = np.array(bone.head_local) + location @ rest.T
    travel[:, 2] = 0.0
    keyframes.set_keys(arm, path, frames, location - travel @ rest, group=pelvis)
    root_rest = np.array(arm.data.bones[root].matrix_local.to_3x3())
    keyframes.set_keys(arm, f'pose.bones["{root}"].location', frames, travel @ root_rest, group=root)


def _remove(made: ExportCopies) -> None:
    for obj in reversed(made.objects):
        data, kind = obj.data, obj.type
        bpy.data.objects.remove(obj)
        (bpy.data.armatures if kind == "ARMATURE" else bpy.data.meshes).remove(data)
    for action in made.actions:
        bpy.data.actions.remove(action)
    for holder, name in reversed(made.renamed):
        holder.name = name
