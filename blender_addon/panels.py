"""The "Troupe" tab in the 3D View sidebar and the progress shown in the status bar."""

from __future__ import annotations

from pathlib import Path

import bpy

from . import estimator_options, jobs
from .preferences import draw_task
from .properties import WEIGHT_LICENCE_NOTES
from .scene import VIDEO_SUFFIXES


def _source_kind(path: str) -> str:
    if not path:
        return ""
    real = Path(bpy.path.abspath(path))
    if real.is_dir():
        return "image folder"
    if not real.exists():
        return "not found"
    return "video" if real.suffix.lower() in VIDEO_SUFFIXES else "image"


class _TroupePanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Troupe"


class VIEW3D_PT_troupe(_TroupePanel, bpy.types.Panel):
    bl_label = "Troupe"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.troupe
        state = context.window_manager.troupe_job
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "source_path")
        kind = _source_kind(settings.source_path)
        if kind:
            layout.label(text=kind.capitalize(), icon="ERROR" if kind == "not found" else "FILE_MOVIE"
                         if kind == "video" else "IMAGE_DATA")
        row = layout.row(heading="Frames")
        row.prop(settings, "use_frame_range", text="")
        sub = row.row(align=True)
        sub.active = settings.use_frame_range
        sub.prop(settings, "frame_start", text="")
        sub.prop(settings, "frame_end", text="")
        layout.prop(settings, "estimator")
        note = WEIGHT_LICENCE_NOTES.get(settings.estimator)
        if note:
            layout.label(text=note, icon="INFO")
        estimator_options.draw(layout, settings.estimator_options, settings.estimator)
        layout.prop(settings, "body_model")
        row = layout.row(heading="Field of View")
        row.prop(settings, "use_fov", text="")
        sub = row.row()
        sub.active = settings.use_fov
        sub.prop(settings, "fov", text="")
        layout.prop(settings, "smoothing", slider=True)
        layout.prop(settings, "coherence")
        layout.prop(settings, "camera")
        layout.prop(settings, "output_dir")
        self._draw_run(layout, state)

    def _draw_run(self, layout: bpy.types.UILayout, state: bpy.types.PropertyGroup) -> None:
        col = layout.column()
        col.use_property_split = False
        if state.running:
            col.progress(factor=state.progress, type="BAR", text=state.message or state.state)
            col.operator("troupe.cancel", icon="CANCEL", text="Cancel (Esc)")
        else:
            col.scale_y = 1.4
            col.operator("troupe.reconstruct", icon="PLAY")
            col.operator("troupe.batch", icon="FILE_FOLDER")
            if state.message:
                col.label(text=state.message)
        if state.last_error:
            box = layout.box()
            box.alert = True
            for line in _wrap(state.last_error, 48)[:6]:
                box.label(text=line, icon="ERROR")
        for warning in state.warnings.splitlines()[:4]:
            layout.label(text=warning, icon="INFO")
        layout.operator("troupe.import_result", icon="IMPORT")


class VIEW3D_PT_troupe_export(_TroupePanel, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "VIEW3D_PT_troupe"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.troupe
        layout = self.layout
        layout.prop(settings, "export_scope", expand=True)
        row = layout.row(align=True)
        row.prop(settings, "fbx_preset", text="")
        op = row.operator("troupe.export_fbx", text="FBX", icon="EXPORT")
        op.preset, op.scope = settings.fbx_preset, settings.export_scope
        row = layout.row(align=True)
        row.operator("troupe.export_bvh", text="BVH").scope = settings.export_scope
        row.operator("troupe.export_amass", text="AMASS npz").scope = settings.export_scope
        row.operator("troupe.export_gltf", text="glTF").scope = settings.export_scope


class VIEW3D_PT_troupe_backend(_TroupePanel, bpy.types.Panel):
    bl_label = "Backend"
    bl_parent_id = "VIEW3D_PT_troupe"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        python = jobs.backend_python()
        layout.label(text=python or "No backend interpreter", icon="CHECKMARK" if python else "ERROR")
        layout.operator("troupe.check_backend", icon="CHECKMARK")
        draw_task(layout, context.window_manager.troupe_job)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [text]


def draw_status(self: bpy.types.Header, context: bpy.types.Context) -> None:
    """Status bar: progress of a running reconstruction, wherever the user is working."""
    state = context.window_manager.troupe_job
    if state.running:
        self.layout.progress(factor=state.progress, type="BAR", text=f"Troupe: {state.message or state.state}")


CLASSES = (VIEW3D_PT_troupe, VIEW3D_PT_troupe_export, VIEW3D_PT_troupe_backend)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
