"""Speed benchmarks shipped with the backend (``python -m backend bench``): ratios against a baseline in the same
run, because these machines are noisy."""

from __future__ import annotations

from typing import Sequence


def run_benchmark(estimator: str, argv: Sequence[str]) -> int:
    """Run the benchmark of ``estimator`` with its own command-line options ``argv``."""
    if estimator == "romp":
        from backend.bench.romp import main

        return main(list(argv))
    raise ValueError(f"no benchmark for estimator {estimator!r}")
