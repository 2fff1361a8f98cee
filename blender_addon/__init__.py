"""Troupe for Blender: footage of several people -> rigged, animated SMPL armatures.

Installs as an extension (Blender 4.2+, ``blender_manifest.toml``) or as a legacy add-on (``bl_info``); both
come from the same zip written by ``build_addon.py``. bpy is imported only in :func:`register` and the modules it
loads, so the numpy-only parts (``rig``, ``client``, ``backend_env``, ``tasks``) import anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bpy

bl_info = {
    "name": "Troupe",
    "author": "Troupe developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D View > Sidebar > Troupe",
    "description": "Reconstruct several people from images or video as rigged, animated SMPL armatures",
    "doc_url": "",
    "category": "Animation",
}

_MODULE_NAMES = ("properties", "preferences", "operators", "export", "panels", "finish", "menus")


def _modules() -> list:
    import importlib

    return [importlib.import_module(f"{__name__}.{name}") for name in _MODULE_NAMES]


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    from . import jobs

    jobs.shutdown()
    for module in reversed(_modules()):
        module.unregister()


def build_scene(result_path: str, **kwargs: object) -> bpy.types.Collection:
    """Script entry point: import a result file into the current scene; returns the new collection."""
    from .scene import build_scene as _build

    return _build(result_path, **kwargs)
