"""Running small-tensor torch work on one thread."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block.

    The fit and the coherence refinement optimise many tiny tensors; on a 2-core machine intra-op threading made
    each fit step ~10x slower (measured: 4 ms vs 55 ms per step for 6 people). The thread count is process-wide, so
    the previous value is restored on exit.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
