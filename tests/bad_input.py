"""Shared checks of the bad-input suites (``tests/test_bad_input_*.py``): what a refused input must leave behind.

Every case asserts the exact outcome: the exit code, one specific line, no traceback, the files already there
byte for byte as they were, no new file (temporary parts included) and no process left running.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_troupe(*args: object, cwd: Path = REPO_ROOT, timeout: float = 120, env: dict | None = None,
               **kwargs) -> subprocess.CompletedProcess:
    """``python -m backend ARGS`` as a real process (the repository on its path wherever it runs; ``env``:
    variables to add)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


def the_error_line(stderr: str) -> str:
    """The one ``troupe...: error:`` line of a refused command; fails on a traceback or on several lines."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error:" in line and line.startswith("troupe")]
    assert len(lines) == 1, stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` (hidden ones included): its content's digest and its mode."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(folder))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
        elif path.is_symlink() or path.is_dir():
            out[str(path.relative_to(folder))] = ("link" if path.is_symlink() else "dir", 0)
    return out


def assert_untouched(folder: Path, before: dict[str, tuple[str, int]]) -> None:
    """Nothing changed under ``folder``: no file written, removed or left over (``.part`` files included)."""
    after = snapshot(folder)
    assert after == before, f"changed: {sorted(set(after.items()) ^ set(before.items()))}"


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found
