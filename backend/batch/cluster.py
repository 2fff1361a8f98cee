"""Getting a Ray cluster for a batch: a private one started in this process (the default: the machine's cores
and GPUs, bound to 127.0.0.1), or an existing cluster at ``--address``.

Ray's own files stay out of the user's home: the local cluster's session folder goes under Troupe's cache
(``<cache>/ray``) or, where that path is too long for Ray's Unix sockets, the system's temp folder; and where
the user has set up no Ray authentication, the local cluster gets a fresh random token through the environment
(inherited by its workers) instead of the ``~/.ray/auth_token`` file Ray would write.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from backend.errors import BatchError
from backend.runtime.paths import cache_dir

RAY_VERSION = "2.60.0"
INSTALL_HINT = f"batch runs on Ray, which is not installed here: pip install 'troupe[batch]' (or ray=={RAY_VERSION})"
_MAX_TEMP_DIR = 60  # Ray appends ~45 characters for its socket paths; Unix allows 107


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # "local" for the in-process cluster
    cpus: float
    gpus: float
    nodes: int


def check_ray_installed() -> None:
    """A one-line :class:`BatchError` saying how to install Ray where it is missing (Ray is not imported)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BatchError(INSTALL_HINT)


def require_ray():
    """The ``ray`` module, or a one-line :class:`BatchError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BatchError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[ClusterInfo]:
    """Connect to the cluster at ``address`` (None: start a local one) for the block, then disconnect (which
    stops a local cluster and its workers)."""
    if address is None:
        _private_auth_token()  # before Ray is imported: it reads its authentication settings then
    ray = require_ray()
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    try:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, _temp_dir=str(ray_temp_dir()),
                     _node_ip_address="127.0.0.1", **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise BatchError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    try:
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        yield ClusterInfo(address or "local", resources.get("CPU", 0.0), resources.get("GPU", 0.0), nodes)
    finally:
        ray.shutdown()
        if address is None:
            _prune_sessions(ray_temp_dir())


def ray_temp_dir() -> Path:
    """Where a local cluster keeps its session files: ``<Troupe cache>/ray`` when short enough for Ray's
    sockets, else ``<temp>/troupe-ray-<uid>``."""
    preferred = cache_dir() / "ray"
    if len(str(preferred)) <= _MAX_TEMP_DIR:
        return preferred
    return Path(tempfile.gettempdir()) / f"troupe-ray-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _prune_sessions(folder: Path, keep: int = 3) -> None:
    """Remove all but the ``keep`` newest session folders (logs) of local clusters."""
    sessions = sorted((p for p in folder.glob("session_2*") if p.is_dir() and not p.is_symlink()),
                      key=lambda p: p.stat().st_mtime)
    for old in sessions[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _private_auth_token() -> None:
    """A random token for the local cluster unless the user chose Ray's authentication (mode, token or token
    file in the environment, or the default token file)."""
    chosen = any(os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"))
    if chosen or (Path.home() / ".ray" / "auth_token").exists():
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if "ray" in sys.modules:  # imported earlier in this process: make it read the settings again
        try:
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError):
            pass


__all__ = ["INSTALL_HINT", "RAY_VERSION", "ClusterInfo", "check_ray_installed", "connected", "ray_temp_dir",
           "require_ray"]
