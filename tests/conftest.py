"""Shared fixtures: the real footage in ../shared/data, and a cache and Blender user folders kept out of $HOME.

The environment is set when pytest loads this file, before any fixture of any scope runs, so nothing a test or a
module-scoped fixture does can write to the user's home directory. One cache per session: assembling the
MediaPipe task file happens once; the generated bodies are shared by the sessions of one checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="troupe-tests-"))
os.environ["TROUPE_CACHE_DIR"] = str(_SESSION_DIR / "troupe-cache")
os.environ["XDG_CACHE_HOME"] = str(_SESSION_DIR / "xdg-cache")  # Blender writes thumbnails there
for _var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS"):
    os.environ.setdefault(_var, str(_SESSION_DIR / "blender-user" / _var.lower()))


def _shared_bodies() -> Path:
    """Where the test sessions of this checkout share the generated bodies (the main suite and each Blender
    version's add-on run would otherwise each generate the Anny body, about a minute): under pytest's own cache
    folder, keyed by the body code, so a change to it generates them afresh."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "backend" / "body").glob("*.py")):
        digest.update(path.read_bytes())
    return REPO_ROOT / ".pytest_cache" / "troupe-bodies" / digest.hexdigest()[:16]


_SESSION_BODIES = _SESSION_DIR / "troupe-cache" / "body"
_SESSION_BODIES.mkdir(parents=True)
for _cached in _shared_bodies().glob("*.npz"):
    shutil.copy2(_cached, _SESSION_BODIES / _cached.name)


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's folders; then, where Blender was loaded as a module, end the process at once with
    pytest's status. Blender's static destructors can deadlock at interpreter exit once its GPU worker threads
    ran (seen here after the whole suite: the results printed, then the process waited forever in
    ``GlobalState::~GlobalState``), and a test run must end."""
    _keep_bodies()
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
    if "bpy" in sys.modules and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])


def _keep_bodies() -> None:
    """Hand the bodies this session generated to the next session (written whole, then renamed); only a file of
    the generator version its name says (a test may have left a stale one behind)."""
    shared = _shared_bodies()
    for body in _SESSION_BODIES.glob("*-v*.npz"):
        if not (shared / body.name).is_file() and _current(body):
            shared.mkdir(parents=True, exist_ok=True)
            partial = shared / f".{body.name}.{os.getpid()}.part"
            shutil.copy2(body, partial)
            os.replace(partial, shared / body.name)


def _current(body: Path) -> bool:
    try:
        with np.load(body, allow_pickle=False) as data:
            return int(data["generator_version"]) == int(body.stem.rsplit("-v", 1)[1])
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture
def isolated_cache() -> Path:
    """The session's cache directory (already in $TROUPE_CACHE_DIR)."""
    return Path(os.environ["TROUPE_CACHE_DIR"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test footage; every test that needs it fails loudly if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test footage folder missing: {SHARED_DATA} (expected ../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture()
def addon():
    """The enabled add-on package (extension install) in an empty scene; its timers and backends stopped
    afterwards. Test files that need more set-up define their own."""
    import bpy

    from tests.test_addon_fixtures import enable_addon

    module = enable_addon("extension")
    bpy.ops.wm.read_homefile(use_empty=True)
    yield module
    module.jobs.shutdown()


@pytest.fixture(scope="session")
def clip_body():
    """The built-in open body model (torch), loaded once for the tests that render or check synthetic clips."""
    from backend.body import load_body_model

    return load_body_model("open-body")


@pytest.fixture(scope="session")
def clip_photo(shared_data: Path) -> np.ndarray:
    """The background the synthetic camera clips pan over (``backend.evaluation.camera_clip``)."""
    from backend.evaluation.camera_clip import load_photo

    return load_photo(shared_data / "soccer_crowd.jpg")
