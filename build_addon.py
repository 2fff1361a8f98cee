"""Write the installable add-on zip: ``dist/troupe-<version>.zip``.

The zip holds one top-level folder ``troupe/`` (the add-on package from ``blender_addon/``, with its
``blender_manifest.toml`` and ``bl_info``), so the same file installs as an extension (Blender 4.2+: Get
Extensions > Install from Disk) and as a legacy add-on (Preferences > Add-ons > Install). The backend source is
bundled as ``troupe/bundled/backend/``; the add-on runs it with its own Python environment, never inside Blender.

Usage: ``python build_addon.py [--dist DIR]``; prints the path of the zip.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = "troupe"
BUNDLED = "bundled"
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".venv", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".npz", ".blend1"}
FIXED_DATE = (2024, 1, 1, 0, 0, 0)  # reproducible zips: same sources, same bytes


def version() -> str:
    """``__version__`` from backend/__init__.py, read as text (building needs no backend dependencies)."""
    text = (ROOT / "backend" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if not match:
        raise SystemExit("build_addon: no __version__ in backend/__init__.py")
    return match.group(1)


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not EXCLUDED_DIRS.intersection(path.relative_to(folder).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    )


def _stamp(text: str, name: str, ver: str) -> str:
    """Put the release version into the manifest and bl_info."""
    if name == "blender_manifest.toml":
        return re.sub(r'^version = ".*"$', f'version = "{ver}"', text, count=1, flags=re.MULTILINE)
    if name == "__init__.py":
        numbers = ", ".join(str(int(p)) for p in re.findall(r"\d+", ver)[:3])
        return re.sub(r'"version": \([^)]*\)', f'"version": ({numbers})', text, count=1)
    return text


def _write(archive: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def build(dist: Path) -> Path:
    """Write the zip and return its path."""
    ver = version()
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / f"{PACKAGE}-{ver}.zip"
    addon = ROOT / "blender_addon"
    with zipfile.ZipFile(target, "w") as archive:
        for path in _files(addon):
            rel = path.relative_to(addon).as_posix()
            data = path.read_bytes()
            if path.parent == addon and path.name in ("blender_manifest.toml", "__init__.py"):
                data = _stamp(data.decode("utf-8"), path.name, ver).encode("utf-8")
            _write(archive, f"{PACKAGE}/{rel}", data)
        for path in _files(ROOT / "backend"):
            _write(archive, f"{PACKAGE}/{BUNDLED}/backend/{path.relative_to(ROOT / 'backend').as_posix()}",
                   path.read_bytes())
        for extra in ("pyproject.toml", "LICENSE", "README.md"):
            if (ROOT / extra).is_file():
                _write(archive, f"{PACKAGE}/{BUNDLED}/{extra}", (ROOT / extra).read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    print(build(args.dist))
    return 0


if __name__ == "__main__":
    sys.exit(main())
