"""Headless engine export of Troupe people: a result file or a .blend in, the engine's files out.

    python scripts/export_result.py INPUT OUT --preset unity|unreal|mixamo|bvh|glb|amass
        [--naming smpl|humanoid|ue5|mixamo] [--animation-only] [--plant-feet] [--find-floor] [--zip ADDON.zip]

INPUT is a result (.npz, imported as the panel does) or a .blend with Troupe people in it (opened; the file is
not saved). OUT is the file to write; where the preset writes one file per person (Unreal, Mixamo, BVH, AMASS
with several people) each gets the person's name after OUT's stem. Runs with any Python that has the ``bpy``
module; the add-on is installed into a temporary Blender user folder, as ``scripts/result_to_blend.py`` does.
Exits 1 with one line on stderr when something cannot be done.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from result_to_blend import _install_addon, _isolate_blender  # noqa: E402

FBX_PRESETS = ("unity", "unreal", "mixamo")
PRESETS = (*FBX_PRESETS, "bvh", "glb", "amass")
NAMINGS = ("smpl", "humanoid", "ue5", "mixamo")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("input", type=Path, help="result file (.npz) or .blend with Troupe people")
    parser.add_argument("output", type=Path, help="file to write (.fbx, .bvh, .glb or .npz)")
    parser.add_argument("--preset", choices=PRESETS, required=True, help="the engine or format")
    parser.add_argument("--naming", choices=NAMINGS, help="bone names in the file (default: the preset's own)")
    parser.add_argument("--animation-only", action="store_true", help="armatures and motion, no body meshes")
    parser.add_argument("--plant-feet", action="store_true", help="remove foot sliding first")
    parser.add_argument("--find-floor", action="store_true", help="put everyone on the found floor (z = 0) first")
    parser.add_argument("--zip", type=Path, help="add-on zip to install (default: build one from this checkout)")
    return parser.parse_args(argv)


def _export(args: argparse.Namespace) -> None:
    import bpy

    ops, path = bpy.ops.troupe, str(args.output.resolve())
    naming = {"naming": args.naming.upper()} if args.naming else {}
    if args.preset in FBX_PRESETS:
        ops.export_fbx(filepath=path, preset=args.preset.upper(), scope="ALL", animation_only=args.animation_only,
                       **naming)
    elif args.preset == "bvh":
        ops.export_bvh(filepath=path, scope="ALL", **naming)
    elif args.preset == "glb":
        ops.export_gltf(filepath=path, scope="ALL", animation_only=args.animation_only, **naming)
    else:
        ops.export_amass(filepath=path, scope="ALL")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if not args.input.is_file() or args.input.suffix.lower() not in (".npz", ".blend"):
        print(f"export_result: error: no result (.npz) or .blend file at {args.input}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="troupe-export-") as tmp:
        _isolate_blender(Path(tmp))
        import bpy

        addon = _install_addon(args.zip, Path(tmp))
        try:
            if args.input.suffix.lower() == ".blend":
                bpy.ops.wm.open_mainfile(filepath=str(args.input.resolve()))
            else:
                bpy.ops.wm.read_homefile(use_empty=True)
                addon.build_scene(str(args.input.resolve()))
            if args.plant_feet:
                bpy.ops.troupe.plant_feet(scope="ALL")
            if args.find_floor:
                bpy.ops.troupe.find_floor()
            args.output.parent.mkdir(parents=True, exist_ok=True)
            _export(args)
        except (ValueError, RuntimeError) as exc:
            print(f"export_result: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        written = sorted(p.name for p in args.output.parent.glob(f"{args.output.stem}*") if p.is_file())
        print(f"wrote {', '.join(written)}")
        bpy.ops.preferences.addon_disable(module="bl_ext.user_default.troupe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
