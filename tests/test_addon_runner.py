"""The add-on's one job runner (``blender_addon/runner.py``) over real subprocesses: the outcome is dealt with
exactly once, a second start is refused while one runs, waiting past a timeout cancels, and the timer it
registers is the one it removes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.test_addon_fixtures import enable_addon, isolate_blender

isolate_blender()
bpy = pytest.importorskip("bpy")


@pytest.fixture()
def addon():
    module = enable_addon("extension")
    yield module
    module.jobs.shutdown()


def _sequence(addon, tmp_path: Path, name: str, code: str):
    step = addon.tasks.Step(name, [sys.executable, "-c", code])
    return addon.tasks.CommandSequence(name, [step], tmp_path / f"{name}.log")


def test_outcome_once_second_start_refused_and_timeout_cancels(addon, tmp_path: Path) -> None:
    steps, outcomes = [], []
    runner = addon.runner.JobRunner("a test", 0.05, steps.append, outcomes.append)
    slow = runner.start(_sequence(addon, tmp_path, "slow", "import time; time.sleep(30)"))
    with pytest.raises(RuntimeError, match="a test is already running"):
        runner.start(_sequence(addon, tmp_path, "other", "pass"))
    runner.wait(timeout=0.5)
    assert slow.state == "cancelled" and outcomes == [slow] and runner.outcome_ready()
    assert runner.poll() is None and outcomes == [slow]  # polled again: the outcome is not dealt with twice
    quick = runner.start(_sequence(addon, tmp_path, "quick", "print('done')"))
    runner.wait()
    assert quick.state == "done" and outcomes == [slow, quick] and steps[-1] is quick


def test_the_timer_registered_is_the_one_removed(addon, tmp_path: Path) -> None:
    runner = addon.runner.JobRunner("a test", 0.05, lambda work: None, lambda work: None)
    runner.start(_sequence(addon, tmp_path, "slow", "import time; time.sleep(30)"))
    runner.start_timer()
    assert bpy.app.timers.is_registered(runner.poll)
    runner.stop_timer()
    assert not bpy.app.timers.is_registered(runner.poll)
    runner.cancel()
    assert not runner.running()
