"""Benchmarks shipped with the backend (``python -m backend bench NAME``): ``romp``, ROMP's throughput as ratios
against a naive loop in the same run (these machines are noisy), and ``gpu``, the one-command GPU check
(CUDA correctness and speed of every estimator, a Markdown and a JSON report; see benchmarks/gpu.py)."""

from __future__ import annotations

from typing import Sequence

BENCHMARKS = ("romp", "gpu")


def run_benchmark(name: str, argv: Sequence[str]) -> int:
    """Run the benchmark ``name`` with its own command-line options ``argv``."""
    if name == "romp":
        from benchmarks.romp import main

        return main(list(argv))
    if name == "gpu":
        from benchmarks.gpu import main as gpu_main

        return gpu_main(list(argv))
    from backend.errors import OptionError

    raise OptionError(f"no benchmark named {name!r}; choose one of {', '.join(BENCHMARKS)}")
