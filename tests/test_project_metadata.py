"""One licence, the same everywhere it is stated, with its full text in LICENSE."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_licence_everywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    manifest = tomllib.loads((ROOT / "blender_addon" / "blender_manifest.toml").read_text())["license"]
    assert project == "GPL-3.0-or-later" and manifest == [f"SPDX:{project}"]
    text = (ROOT / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3" in text
