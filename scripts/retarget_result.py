"""Headless finish of a Troupe result: plant feet, find the floor, retarget everyone onto a rig, save a .blend.

    python scripts/retarget_result.py RESULT.npz OUT.blend [--rig RIG.fbx|RIG.blend] [--rig-object NAME]
        [--preset NAME] [--plant-feet] [--find-floor] [--no-mesh]

Runs with any Python that has the ``bpy`` module (e.g. ``.venv/bin/python``). The add-on is installed as a user
would (``scripts/result_to_blend.py`` does the same) into a temporary Blender user folder; the result is imported,
then ``troupe.plant_feet``, ``troupe.find_floor`` and ``troupe.retarget`` run as in the panel. ``--rig`` brings
in the target: an FBX is imported, a .blend's armature (``--rig-object``, else the first) is appended with its
child meshes. Every person gets a copy of it. Exits 1 with one line on stderr when something cannot be done.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from result_to_blend import _install_addon, _isolate_blender  # noqa: E402


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("result", type=Path, help="result file (.npz)")
    parser.add_argument("blend", type=Path, help=".blend file to write")
    parser.add_argument("--rig", type=Path, help="target rig: .fbx or .blend")
    parser.add_argument("--rig-object", help="name of the armature in a .blend (default: the first)")
    parser.add_argument("--preset", help="bone-map preset to use instead of recognising the rig")
    parser.add_argument("--plant-feet", action="store_true", help="remove foot sliding first")
    parser.add_argument("--find-floor", action="store_true", help="put everyone on the found floor (z = 0) first")
    parser.add_argument("--no-mesh", action="store_true", help="armatures only, no body meshes")
    parser.add_argument("--zip", type=Path, help="add-on zip to install (default: build one from this checkout)")
    return parser.parse_args(argv)


def _bring_rig(path: Path, object_name: str | None):
    """Import or append the target armature; returns it."""
    import bpy

    before = set(bpy.data.objects)
    if path.suffix.lower() == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    elif path.suffix.lower() == ".blend":
        with bpy.data.libraries.load(str(path)) as (source, target):
            target.objects = list(source.objects)
        armatures = [o for o in target.objects if o is not None and o.type == "ARMATURE"]
        chosen = next((o for o in armatures if o.name == object_name), None) if object_name else \
            (armatures[0] if armatures else None)
        for obj in target.objects:
            if obj is not None and (obj == chosen or (obj.parent == chosen and chosen is not None)):
                bpy.context.scene.collection.objects.link(obj)
    else:
        raise ValueError(f"unsupported rig file: {path.suffix} (use .fbx or .blend)")
    new = [o for o in bpy.data.objects if o not in before and o.type == "ARMATURE" and o.users_collection]
    if object_name:
        new = [o for o in new if o.name == object_name]
    if not new:
        raise ValueError(f"no armature{' ' + object_name if object_name else ''} in {path}")
    return new[0]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if not args.result.is_file():
        print(f"retarget_result: error: no such result file: {args.result}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="troupe-finish-") as tmp:
        _isolate_blender(Path(tmp))
        import bpy

        addon = _install_addon(args.zip, Path(tmp))
        bpy.ops.wm.read_homefile(use_empty=True)
        try:
            addon.build_scene(str(args.result.resolve()), with_mesh=not args.no_mesh)
            if args.plant_feet:
                bpy.ops.troupe.plant_feet(scope="ALL")
            if args.find_floor:
                bpy.ops.troupe.find_floor()
            if args.rig:
                rig = _bring_rig(args.rig, args.rig_object)
                if args.preset:
                    bpy.ops.troupe.load_mapping(name=args.preset, target=rig.name)
                bpy.ops.troupe.retarget(target=rig.name, scope="ALL", copies=True)
        except (ValueError, RuntimeError) as exc:
            print(f"retarget_result: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        args.blend.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()), check_existing=False)
        retargeted = [o.name for o in bpy.data.objects if o.type == "ARMATURE" and "troupe_track_id" not in o
                      and o.animation_data and o.animation_data.action]
        print(f"wrote {args.blend}: {len(retargeted)} rigs retargeted")
        bpy.ops.preferences.addon_disable(module="bl_ext.user_default.troupe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
