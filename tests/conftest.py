"""Shared fixtures: the real footage in ../shared/data and an isolated cache and Blender user folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test's cache (and Blender's user folders) out of the home directory.

    One cache per session: assembling the MediaPipe task file and generating the open body are done once.
    """
    root = tmp_path_factory.getbasetemp() / "troupe-cache"
    monkeypatch.setenv("TROUPE_CACHE_DIR", str(root))
    blender_user = tmp_path_factory.getbasetemp() / "blender-user"
    for var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
        monkeypatch.setenv(var, str(blender_user / var.lower()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))  # Blender's thumbnails
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test footage; every test that needs it fails loudly if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test footage folder missing: {SHARED_DATA} (expected ../shared/data beside the repo)")
    return SHARED_DATA
