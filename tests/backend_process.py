"""A test client for ``python -m backend serve``: the real subprocess, read through a thread with timeouts."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class BackendProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.raw_lines: list[str] = []
        self._events: "queue.Queue[dict | None]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw_lines.append(line)
            self._events.put(json.loads(line))  # a non-JSON line on stdout fails the test here
        self._events.put(None)

    def send(self, message: dict | str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float = 60) -> dict:
        event = self._events.get(timeout=timeout)
        if event is None:
            raise EOFError(f"backend closed stdout; stderr:\n{self.stderr_text()}")
        return event

    def wait_for(self, *types: str, timeout: float = 120) -> dict:
        """Skip events until one of ``types`` arrives (progress events in between are expected)."""
        while True:
            event = self.next_event(timeout)
            if event["type"] in types:
                return event

    def close(self, timeout: float = 30) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def stderr_text(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""
