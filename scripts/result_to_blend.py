"""Turn a Troupe result file into a .blend (and optionally a PNG of its first frame), headless.

    python scripts/result_to_blend.py RESULT.npz OUT.blend [--png OUT.png] [--engine workbench|cycles]

Runs with any Python that has the ``bpy`` module (e.g. ``.venv/bin/python``). It installs the add-on exactly as
a user would (the zip from ``build_addon.py``, or ``--zip``) into a temporary Blender user folder, imports the
result with ``troupe.import_result``, saves the .blend and renders the chosen frame. Nothing is written to the
home directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDON_MODULE = "bl_ext.user_default.troupe"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("result", type=Path, help="result file (.npz) from `python -m backend reconstruct`")
    parser.add_argument("blend", type=Path, help=".blend file to write")
    parser.add_argument("--png", type=Path, help="also render a frame to this PNG")
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench")
    parser.add_argument("--frame", type=int, help="scene frame to render (default: the first)")
    parser.add_argument("--percent", type=int, default=100, help="render size in percent of the footage size")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples")
    parser.add_argument("--zip", type=Path, help="add-on zip to install (default: build one from this checkout)")
    parser.add_argument("--no-mesh", action="store_true", help="armatures only, no body meshes")
    parser.add_argument("--no-footage", action="store_true", help="render the people without the footage behind")
    return parser.parse_args(argv)


def _isolate_blender(folder: Path) -> None:
    """Blender's user folders and thumbnail cache in ``folder`` (must happen before ``import bpy``)."""
    os.environ.setdefault("XDG_CACHE_HOME", str(folder / "cache"))
    for var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
        os.environ[var] = str(folder / var.lower())


def _install_addon(zip_path: Path | None, folder: Path):
    import importlib

    import bpy

    if zip_path is None:
        sys.path.insert(0, str(REPO_ROOT))
        import build_addon

        zip_path = build_addon.build(folder / "dist")
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    if ADDON_MODULE not in bpy.context.preferences.addons:
        raise SystemExit(f"result_to_blend: could not enable the add-on from {zip_path}")
    return importlib.import_module(ADDON_MODULE)


def _setup_render(scene, engine: str, percent: int, samples: int) -> None:
    import bpy

    scene.render.resolution_percentage = max(1, min(100, percent))
    scene.render.image_settings.file_format = "PNG"
    scene.view_settings.view_transform = "Standard"  # footage colours as filmed (AgX/Filmic would grey them)
    if engine == "cycles":
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        world = bpy.data.worlds.new("Troupe World")
        world.color = (0.6, 0.6, 0.65)
        if world.node_tree is not None and "Background" in world.node_tree.nodes:  # 5.0: worlds use nodes
            world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.6, 0.65, 1.0)
        scene.world = world
        sun = bpy.data.objects.new("Troupe Sun", bpy.data.lights.new("Troupe Sun", "SUN"))
        sun.rotation_euler = (0.9, 0.0, 0.6)
        scene.collection.objects.link(sun)
    else:
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "TEXTURE"  # people in their material colour, footage plane textured


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if not args.result.is_file():
        print(f"result_to_blend: error: no such result file: {args.result}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="troupe-blend-") as tmp:
        _isolate_blender(Path(tmp))
        import bpy

        addon = _install_addon(args.zip, Path(tmp))
        bpy.ops.wm.read_homefile(use_empty=True)
        warnings: list[str] = []
        try:
            collection = addon.build_scene(str(args.result.resolve()), with_mesh=not args.no_mesh,
                                           with_footage_plane=not args.no_footage, warnings=warnings)
        except ValueError as exc:
            print(f"result_to_blend: error: {exc}", file=sys.stderr)
            return 1
        for warning in warnings:
            print(f"result_to_blend: warning: {warning}", file=sys.stderr)
        scene = bpy.context.scene
        _setup_render(scene, args.engine, args.percent, args.samples)
        scene.frame_set(args.frame if args.frame is not None else scene.frame_start)
        args.blend.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()), check_existing=False)
        if args.png:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            scene.render.filepath = str(args.png.resolve())
            bpy.ops.render.render(write_still=True)
        people = len(addon.scene.iter_people(collection))
        print(f"wrote {args.blend}" + (f" and {args.png}" if args.png else "") + f": {people} people, "
              f"frames {scene.frame_start}-{scene.frame_end}")
        bpy.ops.preferences.addon_disable(module=ADDON_MODULE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
