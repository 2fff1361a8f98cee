"""File > Import and File > Export entries: the same operators as the sidebar, where Blender users look first."""

from __future__ import annotations

import bpy

IMPORT_ENTRIES = (("troupe.import_result", "Troupe Result (.npz)"),)
# One entry per engine preset: (operator, label, the operator's settings for that engine).
EXPORT_ENTRIES = (
    ("troupe.export_fbx", "Troupe People for Unity (.fbx)", {"preset": "UNITY"}),
    ("troupe.export_fbx", "Troupe People for Unreal (.fbx)", {"preset": "UNREAL"}),
    ("troupe.export_fbx", "Troupe People for Mixamo (.fbx)", {"preset": "MIXAMO"}),
    ("troupe.export_bvh", "Troupe People (.bvh)", {}),
    ("troupe.export_gltf", "Troupe People (.glb)", {}),
    ("troupe.export_amass", "Troupe People, AMASS (.npz)", {}),
)


def draw_import(menu: bpy.types.Menu, _context: bpy.types.Context) -> None:
    for idname, text in IMPORT_ENTRIES:
        menu.layout.operator(idname, text=text)


def draw_export(menu: bpy.types.Menu, _context: bpy.types.Context) -> None:
    for idname, text, settings in EXPORT_ENTRIES:
        operator = menu.layout.operator(idname, text=text)
        for name, value in settings.items():
            setattr(operator, name, value)


def register() -> None:
    bpy.types.TOPBAR_MT_file_import.append(draw_import)
    bpy.types.TOPBAR_MT_file_export.append(draw_export)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(draw_import)
    bpy.types.TOPBAR_MT_file_export.remove(draw_export)
