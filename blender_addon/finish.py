"""The animator's finish in the UI: retarget onto the user's rigs, plant feet, find the floor.

Thin operators over the working modules (``retarget``, ``cleanup``), their settings, the bone-map list and the
sidebar panel (a child of the Troupe panel). Every operator checks its input before changing anything and reports
one clear line on failure.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import cleanup, retarget
from .export import people_for_export
from .properties import SCOPES
from .rigmap import SCHEME_LABELS, MappingError
from .scene import PROP_TRACK


def _is_rig(_self: object, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE" and PROP_TRACK not in obj


class TroupeBoneMapItem(bpy.types.PropertyGroup):
    """One row of a target's bone map: an SMPL joint and the target bone that follows it."""

    joint: StringProperty(name="Joint", description="Troupe (SMPL) joint")
    bone: StringProperty(name="Bone", description="Bone of the target rig that follows this joint (empty: none)")


class TroupeFinishSettings(bpy.types.PropertyGroup):
    """Retarget and clean-up settings, saved with the scene."""

    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_rig,
                            description="Your rig: the people's motion is baked onto it")
    scope: EnumProperty(name="People", items=SCOPES, default="ALL")
    copies: BoolProperty(name="Copy per Person", default=True,
                         description="With several people and one target, retarget each onto a copy of the target")
    preset_name: StringProperty(name="Preset", description="Name of a saved bone map", default="")
    contact_height: FloatProperty(name="Contact Height", default=0.05, min=0.0, max=0.5, unit="LENGTH",
                                  description="A foot closer than this to the ground (plus its rest height) may "
                                  "be planted")
    contact_speed: FloatProperty(name="Contact Speed", default=0.35, min=0.0, max=5.0,
                                 description="A foot slower than this (metres per second) may be planted")
    blend_frames: IntProperty(name="Blend Frames", default=4, min=0, max=30,
                              description="Frames over which a plant fades in and out (no pop at the edges)")


def _target(context: bpy.types.Context, name: str) -> bpy.types.Object | None:
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise retarget.RetargetError(f"no object named '{name}'")
        return obj
    return context.scene.troupe_finish.target


def _report_error(operator: bpy.types.Operator, exc: Exception) -> set[str]:
    operator.report({"ERROR"}, f"Troupe: {exc}")
    return {"CANCELLED"}


class TROUPE_OT_retarget(bpy.types.Operator):
    """Bake the people's motion onto your rig (one target for all, copies per person, or each person's own)"""

    bl_idname = "troupe.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    target: StringProperty(name="Target", description="Target armature (empty: the panel's, else each person's)")
    scope: EnumProperty(name="People", items=SCOPES, default="ALL")
    copies: BoolProperty(name="Copy per Person", default=True)

    def execute(self, context: bpy.types.Context) -> set[str]:
        people = people_for_export(context, self.scope)
        if not people:
            self.report({"ERROR"}, "Troupe: no people to retarget (import or reconstruct first, or select some)")
            return {"CANCELLED"}
        created = None
        try:
            pairs, created = retarget.pairs_for(people, _target(context, self.target), self.copies)
            outcomes = retarget.retarget_people(pairs, created)
        except (retarget.RetargetError, MappingError) as exc:
            if created is not None:
                created.remove_all()
            return _report_error(self, exc)
        for outcome in outcomes:
            for note in outcome.notes:
                self.report({"INFO"}, f"Troupe: {note}")
        label = SCHEME_LABELS.get(outcomes[0].scheme, outcomes[0].scheme)
        self.report({"INFO"}, f"Troupe: retargeted {len(outcomes)} people ({label}), "
                    f"{sum(o.frames for o in outcomes)} frames in all")
        return {"FINISHED"}


class TROUPE_OT_detect_mapping(bpy.types.Operator):
    """Recognise the target rig (Mixamo, Unreal, Unity/VRM, Rigify) or map it by bone names, into its list"""

    bl_idname = "troupe.detect_mapping"
    bl_label = "Detect Bones"
    bl_options = {"REGISTER", "UNDO"}

    target: StringProperty(name="Target")

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            target = _target(context, self.target)
            found = retarget.detect(target)
        except retarget.RetargetError as exc:
            return _report_error(self, exc)
        retarget.store_mapping(target, found.bones, found.scheme)
        missing = found.missing_legs()
        if missing:
            self.report({"WARNING"}, f"Troupe: no recognisable legs: map {', '.join(missing)} by hand")
        else:
            self.report({"INFO"}, f"Troupe: {found.label}: {len(found.bones)} of 24 joints mapped")
        return {"FINISHED"}


class TROUPE_OT_save_mapping(bpy.types.Operator):
    """Save the target's bone map as a preset (a JSON file in Blender's user presets folder)"""

    bl_idname = "troupe.save_mapping"
    bl_label = "Save Bone Map"

    name: StringProperty(name="Name")
    target: StringProperty(name="Target")

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            path = retarget.save_preset(self.name or context.scene.troupe_finish.preset_name,
                                        _target(context, self.target))
        except (retarget.RetargetError, MappingError) as exc:
            return _report_error(self, exc)
        self.report({"INFO"}, f"Troupe: saved {path}")
        return {"FINISHED"}


class TROUPE_OT_load_mapping(bpy.types.Operator):
    """Put a saved bone map on the target (refused if it names bones the target does not have)"""

    bl_idname = "troupe.load_mapping"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name")
    target: StringProperty(name="Target")

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            retarget.load_preset(self.name or context.scene.troupe_finish.preset_name, _target(context, self.target))
        except retarget.RetargetError as exc:
            return _report_error(self, exc)
        return {"FINISHED"}


class TROUPE_OT_plant_feet(bpy.types.Operator):
    """Detect foot contacts and hold each planted foot still (root and legs share the correction, no pops)"""

    bl_idname = "troupe.plant_feet"
    bl_label = "Plant Feet"
    bl_options = {"REGISTER", "UNDO"}

    scope: EnumProperty(name="People", items=SCOPES, default="ALL")

    def execute(self, context: bpy.types.Context) -> set[str]:
        people = people_for_export(context, self.scope)
        if not people:
            self.report({"ERROR"}, "Troupe: no people to clean up (import or reconstruct first, or select some)")
            return {"CANCELLED"}
        settings = context.scene.troupe_finish
        try:
            reports = cleanup.plant_feet(context.scene, people, height=settings.contact_height,
                                         speed=settings.contact_speed, blend=settings.blend_frames)
        except (ValueError, retarget.RetargetError) as exc:
            return _report_error(self, exc)
        for r in reports:
            self.report({"INFO"}, f"Troupe: {r.person}: {r.contact_frames} contact frames, sliding "
                        f"{r.before_mm:.1f} -> {r.after_mm:.1f} mm/frame")
        return {"FINISHED"}


class TROUPE_OT_find_floor(bpy.types.Operator):
    """Find the ground from where feet stand, put it at z = 0 and move the camera with the people"""

    bl_idname = "troupe.find_floor"
    bl_label = "Find Floor"
    bl_options = {"REGISTER", "UNDO"}

    snap: BoolProperty(name="Snap People", default=True,
                       description="Slide each person along the camera ray until their feet meet the floor")

    def execute(self, context: bpy.types.Context) -> set[str]:
        people = people_for_export(context, "ALL")
        if not people:
            self.report({"ERROR"}, "Troupe: no people to stand on a floor (import or reconstruct first)")
            return {"CANCELLED"}
        camera = context.scene.camera
        if camera is not None and camera.animation_data is not None and camera.animation_data.action is not None:
            # moving the camera object would be undone by its keys on the next frame, leaving it off the people
            self.report({"ERROR"}, "Troupe: the camera moves with the footage: this result is already in a "
                                   "gravity-up world with the floor at z = 0; Find Floor is for fixed cameras")
            return {"CANCELLED"}
        try:
            floor = cleanup.find_floor(context.scene, people, context.scene.camera, snap=self.snap)
        except (ValueError, retarget.RetargetError) as exc:
            return _report_error(self, exc)
        tilt = float(np.degrees(np.arccos(np.clip(floor.normal[2], -1.0, 1.0))))
        self.report({"INFO"}, f"Troupe: floor found {tilt:.1f} degrees from level, {floor.offset:+.2f} m; "
                    "people and camera moved onto z = 0")
        return {"FINISHED"}


class TROUPE_UL_bone_map(bpy.types.UIList):
    """Joint on the left, the target bone (searchable) on the right."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname,  # noqa: ANN001
                  index=0) -> None:
        row = layout.row(align=True)
        row.label(text=item.joint)
        if data.type == "ARMATURE":
            row.prop_search(item, "bone", data.data, "bones", text="")
        else:
            row.prop(item, "bone", text="")


class VIEW3D_PT_troupe_retarget(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Troupe"
    bl_label = "Retarget"
    bl_parent_id = "VIEW3D_PT_troupe"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.troupe_finish
        layout = self.layout
        layout.prop(settings, "target")
        layout.prop(settings, "scope", expand=True)
        layout.prop(settings, "copies")
        target = settings.target
        if target is not None:
            row = layout.row(align=True)
            row.operator("troupe.detect_mapping", icon="VIEWZOOM")
            scheme = str(target.get(retarget.SCHEME_PROP, ""))
            if scheme:
                row.label(text=SCHEME_LABELS.get(scheme, scheme))
            layout.template_list("TROUPE_UL_bone_map", "", target, retarget.MAP_PROP, target,
                                 "troupe_bone_map_index", rows=6)
            row = layout.row(align=True)
            row.prop(settings, "preset_name", text="")
            row.operator("troupe.load_mapping", text="", icon="IMPORT")
            row.operator("troupe.save_mapping", text="", icon="EXPORT")
        col = layout.column()
        col.scale_y = 1.3
        col.operator("troupe.retarget", icon="ARMATURE_DATA").scope = settings.scope


class VIEW3D_PT_troupe_cleanup(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Troupe"
    bl_label = "Feet and Floor"
    bl_parent_id = "VIEW3D_PT_troupe"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.troupe_finish
        layout = self.layout
        layout.use_property_split = True
        layout.prop(settings, "contact_height")
        layout.prop(settings, "contact_speed")
        layout.prop(settings, "blend_frames")
        row = layout.row(align=True)
        row.operator("troupe.plant_feet", icon="SNAP_ON").scope = settings.scope
        row.operator("troupe.find_floor", icon="VIEW_PERSPECTIVE")


CLASSES = (TroupeBoneMapItem, TroupeFinishSettings, TROUPE_OT_retarget, TROUPE_OT_detect_mapping,
           TROUPE_OT_save_mapping, TROUPE_OT_load_mapping, TROUPE_OT_plant_feet, TROUPE_OT_find_floor,
           TROUPE_UL_bone_map, VIEW3D_PT_troupe_retarget, VIEW3D_PT_troupe_cleanup)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.troupe_finish = PointerProperty(type=TroupeFinishSettings)
    bpy.types.Object.troupe_bone_map = CollectionProperty(type=TroupeBoneMapItem)
    bpy.types.Object.troupe_bone_map_index = IntProperty(default=0)
    bpy.types.Object.troupe_retarget_target = PointerProperty(
        name="Retarget Target", type=bpy.types.Object, poll=_is_rig,
        description="This person's own target rig (used when no target is chosen in the panel)")


def unregister() -> None:
    del bpy.types.Object.troupe_retarget_target
    del bpy.types.Object.troupe_bone_map_index
    del bpy.types.Object.troupe_bone_map
    del bpy.types.Scene.troupe_finish
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
