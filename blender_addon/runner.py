"""One piece of background work at a time, advanced on Blender's main thread by a ``bpy.app.timers`` callback.

The add-on has two kinds of work, a reconstruction (:class:`client.ReconstructionJob`) and a preference task
(:class:`tasks.CommandSequence`); both are a :class:`Work` and run through this one runner, so starting, polling,
waiting, cancelling and finishing exactly once are written once. In background mode timers never fire: scripts
and tests call :meth:`JobRunner.wait` or :meth:`JobRunner.poll` themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import bpy


class Work(Protocol):
    """What the runner drives: started once, stepped without blocking until finished, cancellable."""

    @property
    def finished(self) -> bool: ...

    def start(self) -> None: ...

    def step(self) -> object: ...

    def cancel(self) -> None: ...


W = TypeVar("W", bound=Work)


class JobRunner(Generic[W]):
    """Runs one :class:`Work` at a time. ``on_step`` mirrors progress into the UI after every poll;
    ``on_done`` runs once when the work has finished (import the result, record the error)."""

    def __init__(self, what: str, interval_s: float, on_step: Callable[[W], None],
                 on_done: Callable[[W], None]) -> None:
        self.what = what
        self.interval_s = interval_s
        self.on_step = on_step
        self.on_done = on_done
        self.work: W | None = None
        self.handled = False  # on_done ran for the current work
        self.poll = self._poll  # one bound method, so the timer registry recognises it

    def running(self) -> bool:
        return self.work is not None and not self.work.finished

    def outcome_ready(self) -> bool:
        """The last work ended and its outcome was dealt with."""
        return self.work is not None and self.handled

    def start(self, work: W) -> W:
        if self.running():
            raise RuntimeError(f"{self.what} is already running; cancel it first")
        self.work, self.handled = work, False
        work.start()
        self.on_step(work)
        return work

    def start_timer(self) -> None:
        if not bpy.app.timers.is_registered(self.poll):
            bpy.app.timers.register(self.poll, first_interval=self.interval_s, persistent=True)  # survives File > Open

    def stop_timer(self) -> None:
        if bpy.app.timers.is_registered(self.poll):
            bpy.app.timers.unregister(self.poll)

    def _poll(self) -> float | None:
        """Timer callback: advance the work, mirror it into the UI, finish it once; None stops the timer."""
        if self.work is None or self.handled:
            return None
        self.work.step()
        if self.work.finished:
            self.handled = True
            self.on_done(self.work)
        self.on_step(self.work)
        return None if self.handled else self.interval_s

    def wait(self, timeout: float | None = None) -> W:
        """Block until the work ends and is finished like the timer would (background scripts). Past
        ``timeout`` seconds it is cancelled, and still waited for."""
        if self.work is None:
            raise RuntimeError(f"no {self.what} was started")
        deadline = None if timeout is None else time.monotonic() + timeout
        cancelled = False
        while not self.handled:
            if deadline is not None and not cancelled and time.monotonic() > deadline:
                self.cancel()
                cancelled = True
            time.sleep(0.02)
            self.poll()
        return self.work

    def cancel(self) -> None:
        if self.running():
            self.work.cancel()
            self.poll()
