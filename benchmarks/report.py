"""The GPU check's report: one JSON and one Markdown file, rewritten after every case so that a run killed at
its time limit still leaves everything measured so far, and a case runner that turns any failure into a
recorded error and skips what the time budget cannot hold.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

FORMAT = "troupe-gpu-check/1"
STATUSES = ("ok", "mismatch", "error", "skipped")


@dataclass
class Case:
    """One case's outcome. ``status``: ok (ran, every comparison within tolerance), mismatch (ran, a row with
    ``ok`` false: a comparison outside its tolerance, or one measurement that failed and says why), error
    (raised: ``error`` says what), skipped (``notes`` say why)."""

    name: str
    title: str
    status: str = "skipped"
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)  # measurements or comparisons, one dict per table row
    targets: list[dict] = field(default_factory=list)  # {what, target, measured, unit, met}
    profile: list[dict] = field(default_factory=list)  # top kernels where a target was missed
    notes: list[str] = field(default_factory=list)
    error: str | None = None


class Budget:
    """Seconds left of the run's hard budget (``--budget-s``), counted from its creation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, estimate_s: float) -> bool:
        return self.left() >= estimate_s


class CaseTimeout(Exception):
    """A case ran past the seconds the budget had left (raised by SIGALRM in the main thread)."""


class Report:
    """Cases in run order plus the run's context; :meth:`save` writes ``gpu_check.json`` and ``gpu_check.md``."""

    def __init__(self, out_dir: Path, context: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.context = context
        self.cases: list[Case] = []
        self.notes: list[str] = []
        self.finished = False

    @property
    def json_path(self) -> Path:
        return self.out_dir / "gpu_check.json"

    @property
    def markdown_path(self) -> Path:
        return self.out_dir / "gpu_check.md"

    def run(self, name: str, title: str, fn: Callable[[Case], None], budget: Budget, estimate_s: float) -> Case:
        """Run ``fn(case)`` unless the budget cannot hold ``estimate_s``; any exception becomes the case's error,
        and the case is cut off (SIGALRM) when it outlives the budget. The report is saved afterwards."""
        case = Case(name, title)
        self.cases.append(case)
        if not budget.allows(estimate_s):
            case.notes.append(f"skipped: about {estimate_s:.0f} s needed, {max(budget.left(), 0):.0f} s of the "
                              "budget left")
            self.save()
            return case
        start = time.perf_counter()
        try:
            with _alarm(budget.left()):
                fn(case)
            if not case.rows:  # the case decided not to run here (its note says why)
                case.status = "skipped"
            else:
                case.status = "mismatch" if any(r.get("ok") is False for r in case.rows) else "ok"
        except Exception as exc:  # noqa: BLE001 - one case's failure is recorded, the rest still run
            case.status = "error"
            case.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            case.notes.append("traceback (last lines): " + " | ".join(
                line.strip() for line in traceback.format_exc().strip().splitlines()[-6:]))
        case.seconds = time.perf_counter() - start
        self.save()
        return case

    def save(self) -> None:
        """Write both files atomically (temporary file, then rename)."""
        data = {"format": FORMAT, "finished": self.finished, "context": self.context, "notes": self.notes,
                "cases": [asdict(c) for c in self.cases]}
        _write(self.json_path, json.dumps(_finite(data), indent=1))
        _write(self.markdown_path, markdown(data))


def markdown(data: dict) -> str:
    """The report as Markdown: context, the targets, then every case with its rows, notes and profile."""
    ctx = data["context"]
    lines = [f"# Troupe GPU check ({'complete' if data['finished'] else 'partial: the run did not finish'})", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in ctx.items() if not isinstance(v, (dict, list))]
    lines += [f"- note: {n}" for n in data["notes"]]
    targets = [(c["title"], t) for c in data["cases"] for t in c["targets"]]
    if targets:
        lines += ["", "## Targets", "", "| case | what | measured | target | met |", "|---|---|---|---|---|"]
        for title, t in targets:
            lines.append(f"| {title} | {t['what']} | {_fmt(t['measured'])} {t['unit']} | >= {_fmt(t['target'])} "
                         f"{t['unit']} | {_fmt(t['met'])} |")
    for c in data["cases"]:
        lines += ["", f"## {c['title']} — {c['status']} ({c['seconds']:.1f} s)", ""]
        if c["error"]:
            lines += [f"**error:** `{c['error']}`", ""]
        lines += _table(c["rows"])
        lines += [f"- {n}" for n in c["notes"]]
        if c["profile"]:
            lines += ["", "Profile: top kernels by device time (CPU time on the CPU); rows named host: are Python "
                      "functions by own time (cProfile)", ""] + _table(c["profile"])
    return "\n".join(lines) + "\n"


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(_fmt(row.get(k, "")) for k in keys) + " |" for row in rows]
    return out + [""]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "**no**", None: "-"}[value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value).replace("|", "/")


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: they become the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _alarm:
    """SIGALRM after ``seconds`` raises :class:`CaseTimeout` (main thread on POSIX only; else a no-op)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(1, int(math.ceil(seconds)))
        self.active = hasattr(signal, "SIGALRM")
        self.previous: Any = None

    def __enter__(self) -> None:
        if self.active:
            try:
                self.previous = signal.signal(signal.SIGALRM, self._fire)
                signal.alarm(self.seconds)
            except ValueError:  # not the main thread
                self.active = False

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, self.previous)

    def _fire(self, signum: int, frame: Any) -> None:
        raise CaseTimeout(f"cut off after {self.seconds} s: the run's budget was spent")
