"""Long commands (pip installs, ``backend doctor``, ``backend body install``) run without freezing Blender.

A :class:`CommandSequence` runs its commands one after the other, each writing stdout and stderr into one log
file; the UI polls :meth:`CommandSequence.step` from a timer and shows the step, the last log line and the
outcome. No threads and no bpy: the child writes straight into the file.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .backend_env import NO_WINDOW


@dataclass
class Step:
    """One command and how to describe it in the UI."""

    label: str
    argv: list[str]


class CommandSequence:
    """Runs ``steps`` in order; stops at the first failure. Output of all steps goes to ``log_path``."""

    def __init__(self, title: str, steps: Sequence[Step], log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.title = title
        self.steps = list(steps)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.index = -1
        self.process: subprocess.Popen | None = None
        self.state = "pending"  # pending, running, done, error, cancelled
        self.error = ""
        self._log = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled")

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return max(0, self.index) / max(1, len(self.steps))

    @property
    def current_label(self) -> str:
        return self.steps[self.index].label if 0 <= self.index < len(self.steps) else ""

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.state = "running"
        self._next()

    def _next(self) -> None:
        self.index += 1
        if self.index >= len(self.steps):
            self._finish("done")
            return
        step = self.steps[self.index]
        self._log.write(f"$ {' '.join(step.argv)}\n")
        self._log.flush()
        try:
            self.process = subprocess.Popen(step.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env,
                                            creationflags=NO_WINDOW)
        except OSError as exc:
            self._fail(f"{step.label}: cannot run {step.argv[0]}: {exc}")

    def step(self) -> str:
        """Advance if the current command ended; returns the state."""
        if self.state != "running" or self.process is None:
            return self.state
        code = self.process.poll()
        if code is None:
            return self.state
        if code != 0:
            self._fail(f"{self.current_label} failed (exit code {code}): {self.last_line() or 'see the log'}")
        else:
            self._next()
        return self.state

    def run(self, poll_interval: float = 0.05) -> str:
        """Block until every step ran (background scripts and tests)."""
        if self.state == "pending":
            self.start()
        while not self.finished:
            self.step()
            time.sleep(poll_interval)
        return self.state

    def cancel(self) -> None:
        if self.finished:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._finish("cancelled")

    def output(self) -> str:
        """The whole log so far (shown by "Check backend")."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def last_line(self) -> str:
        lines = [line for line in self.output().splitlines() if line.strip() and not line.startswith(("$ ", "# "))]
        return lines[-1].strip() if lines else ""

    def _fail(self, message: str) -> None:
        self.error = message
        self._finish("error")

    def _finish(self, state: str) -> None:
        self.state = state
        if self._log is not None:
            self._log.write(f"# {self.title}: {state}{': ' + self.error if self.error else ''}\n")
            self._log.close()
            self._log = None
