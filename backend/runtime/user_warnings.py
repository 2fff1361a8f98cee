"""The backend's own warnings during a run, kept for the run's summary.

A stage that can go on less well (a damaged optional model, a graph that could not be cut) says so with
``warnings.warn``. Printed to stderr, that reaches a command-line user but not the add-on, whose panel lists the
summary's warnings; collected here, it reaches both, once each. Other libraries' warnings keep Python's handling.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

_BACKEND_ROOT = Path(__file__).resolve().parents[1]


def _is_backend(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_BACKEND_ROOT)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def backend_warnings() -> Iterator[list[str]]:
    """Collect the messages of the backend's warnings raised inside (from any thread: the people are found ahead
    on a worker), each once, instead of printing them. Not for two overlapping runs in one process (Python's
    warning state is global); the service runs one job at a time."""
    collected: list[str] = []
    show = warnings.showwarning

    def keep(message, category, filename, lineno, file=None, line=None) -> None:
        if not _is_backend(filename):
            show(message, category, filename, lineno, file, line)
        elif str(message) not in collected:
            collected.append(str(message))

    with warnings.catch_warnings():
        warnings.showwarning = keep
        yield collected
