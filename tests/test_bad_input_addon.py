"""Bad result files imported into real Blender (the bpy module) through the installed add-on's operator: each is
refused with one ``Troupe: ...`` line, before Blender builds anything (a focal length of 0 used to raise
ZeroDivisionError in the camera set-up), and the scene is left exactly as it was."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.test_addon_fixtures import isolate_blender
from tests.test_bad_input_result import CASES as READER_CASES, _bytes, changed

isolate_blender()
bpy = pytest.importorskip("bpy")

READER = {case[0]: case[1:] for case in READER_CASES}
CASES = [
    (name, *READER[name]) for name in (
        "focal-zero", "focal-negative", "image-size-negative", "num-frames-billion", "translation-1e30",
        "faces-negative", "faces-beyond-vertices", "parents-out-of-tree", "joints2d-nan", "pickled-objects",
        "not-a-zip", "forged-array-header", "inflates-to-1-GiB", "newer-format",
    )
] + [
    ("principal-point-nan", changed(principal_point=[np.nan, 240.0]), "'principal_point' contains NaN"),
    ("fps-absurd", changed(fps=1e9), "'fps' has a value 1e+09 above its maximum 1000"),
    ("empty-file", _bytes(b""), "not a readable result file"),
]


def _scene() -> tuple:
    data = bpy.data
    return (sorted(o.name for o in data.objects), sorted(c.name for c in data.collections), len(data.actions),
            len(data.meshes), len(data.armatures), len(data.cameras), len(data.images), bpy.context.scene.frame_end)


@pytest.mark.parametrize("make, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_result_is_refused_and_the_scene_is_unchanged(addon, tmp_path: Path, make, expected: str) -> None:
    path = tmp_path / "bad.npz"
    make(path)
    before = _scene()
    with pytest.raises(RuntimeError) as refused:  # the operator's ERROR report, as Blender raises it in scripts
        bpy.ops.troupe.import_result(filepath=str(path))
    message = str(refused.value).strip()
    assert message.startswith("Error: Troupe: ") and expected in message, message
    assert "\n" not in message and "Traceback" not in message
    assert _scene() == before


def test_missing_file_is_refused(addon, tmp_path: Path) -> None:
    before = _scene()
    with pytest.raises(RuntimeError, match="result file not found"):
        bpy.ops.troupe.import_result(filepath=str(tmp_path / "gone.npz"))
    assert _scene() == before


def test_requests_carry_absolute_paths(addon, tmp_path: Path, monkeypatch) -> None:
    """The service refuses relative paths (they would resolve against its own working folder): the add-on
    sends the source and the output as absolute paths, also for a relative output folder."""
    monkeypatch.chdir(tmp_path)
    settings = bpy.context.scene.troupe
    settings.output_dir = "results"
    options = addon.operators._options(settings, "clip.mp4")
    assert os.path.isabs(options.input) and os.path.isabs(options.output)
    assert Path(options.output).parent == tmp_path / "results"
