"""Keeping native libraries' informational logging off the user's terminal.

MediaPipe's C++ side prints absl/glog lines straight to file descriptor 2 when a graph starts ("GPU support is not
available", "Feedback manager requires ..."); no environment variable turns them off before absl is initialised,
and they tear through the command line's progress bar. Python-level errors are unaffected: exceptions carry their
own messages.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at the null device inside the block (set ``TROUPE_NATIVE_LOGS=1`` to keep it)."""
    if os.environ.get("TROUPE_NATIVE_LOGS") == "1":
        yield
        return
    with _LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
