"""Writing keyframes in bulk through the F-curve API.

``keyframe_insert`` per key costs a Python call, an RNA lookup and a curve re-sort each; a clip of several people
has hundreds of thousands of keys. Here each curve gets all its points with one ``keyframe_points.add`` and one
``foreach_set``. Blender 4.4+ (layered actions, the only API in 5.0) needs
``Action.fcurve_ensure_for_datablock`` so the curve lands in the slot that animates the object; 4.2/4.3 fall
back to ``Action.fcurves.new``.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np


def ensure_action(obj: bpy.types.ID, name: str) -> bpy.types.Action:
    """The object's action, created and assigned if it has none (assignment first: slots need it)."""
    anim = obj.animation_data or obj.animation_data_create()
    if anim.action is None:
        anim.action = bpy.data.actions.new(name)
    return anim.action


def _fcurve(action: bpy.types.Action, obj: bpy.types.ID, data_path: str, index: int, group: str) -> bpy.types.FCurve:
    if hasattr(action, "fcurve_ensure_for_datablock"):
        if bpy.app.version >= (5, 0, 0) and group:
            return action.fcurve_ensure_for_datablock(obj, data_path, index=index, group_name=group)
        return action.fcurve_ensure_for_datablock(obj, data_path, index=index)
    existing = action.fcurves.find(data_path, index=index)  # Blender < 4.4
    return existing or action.fcurves.new(data_path, index=index, action_group=group)


def _interpolation_value(name: str) -> int:
    return bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[name].value


def set_keys(
    obj: bpy.types.ID,
    data_path: str,
    frames: np.ndarray,
    values: np.ndarray,
    *,
    group: str = "",
    interpolation: str = "LINEAR",
) -> list[bpy.types.FCurve]:
    """Key ``values`` (n,) or (n, k) at ``frames`` (n,) on ``data_path`` (indices 0..k-1), replacing old keys."""
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32).reshape(len(frames), -1)
    action = ensure_action(obj, obj.name)
    interp = _interpolation_value(interpolation)
    curves = []
    for index in range(values.shape[1]):
        curve = _fcurve(action, obj, data_path, index, group)
        points = curve.keyframe_points
        if len(points):
            points.clear()
        points.add(len(frames))
        co = np.empty((len(frames), 2), dtype=np.float32)
        co[:, 0] = frames
        co[:, 1] = values[:, index]
        points.foreach_set("co", co.ravel())
        points.foreach_set("interpolation", np.full(len(frames), interp, dtype=np.int32))
        curve.update()
        curves.append(curve)
    return curves


def insert_keys_naive(
    obj: bpy.types.Object, data_paths: Sequence[tuple[str, str]], frames: np.ndarray, values: Sequence
) -> None:
    """Baseline for the benchmark: one ``keyframe_insert`` per pose bone property and frame (what most add-ons do).

    ``data_paths`` lists (bone name, property) pairs; ``values[f][p]`` is property ``p``'s value on frame ``f``.
    """
    bones = obj.pose.bones
    for f, frame in enumerate(frames):
        for p, (bone_name, prop) in enumerate(data_paths):
            bone = bones[bone_name]
            setattr(bone, prop, values[f][p])
            bone.keyframe_insert(prop, frame=float(frame), group=bone_name)
