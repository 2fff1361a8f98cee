"""``scripts/result_to_blend.py``: result file -> .blend + PNG, as the demo runs it (a separate process)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_addon_fixtures import REPO_ROOT, blender_env, built_zip, fixture_result, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**blender_env(), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "result_to_blend.py"), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=180)


def test_script_writes_blend_and_png(tmp_path: Path) -> None:
    blend, png = tmp_path / "out" / "scene.blend", tmp_path / "out" / "frame.png"
    proc = _run(str(fixture_result()), str(blend), "--png", str(png), "--percent", "50", "--zip", str(built_zip()),
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 people" in proc.stdout
    assert _png_size(png) == (160, 120)
    with bpy.data.libraries.load(str(blend)) as (source, _target):
        objects = set(source.objects)
    assert {"Person 7", "Person 8", "Person 9", "Person 7 Body", "Troupe Camera"} <= objects


NO_TORCH_CHECK = """
import sys
sys.path.insert(0, {repo!r})
from tests.test_addon_fixtures import enable_addon, isolate_blender
isolate_blender()
import bpy
addon = enable_addon("extension")
addon.build_scene({result!r})
bpy.ops.troupe.export_amass(filepath={out!r}, scope="ALL")
loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
print("torch modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_addon_never_imports_torch(tmp_path: Path) -> None:
    """In a fresh process (the test process may hold torch from other tests): enable, import, export."""
    code = NO_TORCH_CHECK.format(repo=str(REPO_ROOT), result=str(fixture_result()), out=str(tmp_path / "a.npz"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**blender_env(), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert "torch modules: []" in proc.stdout


def test_script_fails_clearly_on_a_bad_result(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    proc = _run(str(bad), str(tmp_path / "x.blend"), "--zip", str(built_zip()), cwd=tmp_path)
    assert proc.returncode == 1
    assert "result_to_blend: error: not a readable result file" in proc.stderr
    assert not (tmp_path / "x.blend").exists()
