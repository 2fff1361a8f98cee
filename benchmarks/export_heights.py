"""Does a person keep their size through each engine export? Body heights before and after, on a real result.

    python benchmarks/export_heights.py RESULT.npz [--frame N]

Exports the result with ``scripts/export_result.py`` for Unity, Unreal, Mixamo (FBX) and glTF, re-imports each
file with Blender's importers (which read the file's declared axes and UnitScaleFactor as engines do) and prints,
per person, the posed body mesh's height (z extent, metres) on ``frame`` in the scene and in each file, with the
file's unit scale. Runs with the bpy module (``.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"unity": "take.fbx", "unreal": "take.fbx", "mixamo": "take.fbx", "glb": "take.glb"}


def _mesh_heights(frame: int) -> dict[str, float]:
    """Posed height of every skinned mesh (one with an armature modifier) on ``frame``, by object name."""
    import bpy
    import numpy as np

    bpy.context.scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    heights = {}
    for obj in bpy.data.objects:
        if obj.type != "MESH" or not any(m.type == "ARMATURE" for m in obj.modifiers):
            continue
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        co = np.empty(3 * len(mesh.vertices))
        mesh.vertices.foreach_get("co", co)
        evaluated.to_mesh_clear()
        z = (co.reshape(-1, 3) @ np.array(obj.matrix_world.to_3x3()).T)[:, 2]
        heights[obj.name] = float(z.max() - z.min())
    return heights


def _unit_scale(path: Path) -> str:
    if path.suffix != ".fbx":
        return "metres (glTF)"
    from io_scene_fbx import parse_fbx

    root, _ = parse_fbx.parse(str(path))
    settings = next(e for e in root.elems if e.id == b"GlobalSettings")
    props = next(e for e in settings.elems if e.id == b"Properties70")
    scale = next(p.props[4] for p in props.elems if p.props[0] == b"UnitScaleFactor")
    return f"UnitScaleFactor {scale:g} ({'cm' if scale == 1 else 'm' if scale == 100 else '?'} per unit)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--frame", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="troupe-heights-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(folder / "cache")
        for preset, name in PRESETS.items():
            out = folder / preset / name
            subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "export_result.py"), str(args.result),
                            str(out), "--preset", preset], check=True, capture_output=True)
        sys.path.insert(0, str(REPO_ROOT / "scripts"))
        from result_to_blend import _install_addon, _isolate_blender

        _isolate_blender(folder)
        import bpy

        addon = _install_addon(None, folder)
        bpy.ops.wm.read_homefile(use_empty=True)
        addon.build_scene(str(args.result.resolve()))
        fps = bpy.context.scene.render.fps
        print(f"scene: { {k: round(v, 3) for k, v in _mesh_heights(args.frame).items()} } m")
        for preset in PRESETS:
            for path in sorted((folder / preset).iterdir()):
                bpy.ops.wm.read_homefile(use_empty=True)
                bpy.context.scene.render.fps = fps  # glTF keeps seconds
                if path.suffix == ".fbx":
                    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)  # key times as written
                else:
                    bpy.ops.import_scene.gltf(filepath=str(path))
                heights = {k: round(v, 3) for k, v in _mesh_heights(args.frame).items()}
                print(f"{preset} {path.name}: {heights} m; {_unit_scale(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
