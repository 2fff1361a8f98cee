"""Adam and its cosine step-size schedule, written out: the fit and the coherence refinement take a few hundred
steps on tiny tensors, and constructing ``torch.optim.Adam`` imports ``torch._dynamo`` (about 1.5-3 s of a
command line's start on 2 CPU cores, measured with ``python -X importtime``), which none of this needs.

Same update as ``torch.optim.Adam`` with its defaults (no weight decay, no amsgrad) and the closed form of
``torch.optim.lr_scheduler.CosineAnnealingLR``; ``tests/test_adam.py`` checks them against torch's.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


class Adam:
    """Adam over parameter groups ``(tensors, learning rate)``; ``lr_scale`` scales every group's rate."""

    def __init__(self, groups: Sequence[tuple[Sequence[torch.Tensor], float]],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.groups = [(list(params), float(lr)) for params, lr in groups]
        self.rates = [lr for _, lr in self.groups]
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self._moments = [[(torch.zeros_like(p), torch.zeros_like(p)) for p in params] for params, _ in self.groups]

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        correction1 = 1.0 - self.beta1**self.steps
        correction2 = math.sqrt(1.0 - self.beta2**self.steps)
        for (params, _), rate, moments in zip(self.groups, self.rates, self._moments):
            for p, (m, v) in zip(params, moments):
                if p.grad is None:
                    continue
                m.lerp_(p.grad, 1.0 - self.beta1)
                v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1.0 - self.beta2)
                denominator = (v.sqrt() / correction2).add_(self.eps)
                p.addcdiv_(m, denominator, value=-rate / correction1)


def cosine_rates(optimizer: Adam, step: int, total: int, minimum: float) -> None:
    """Set each group's rate for ``step`` (0-based) of ``total``: from its base rate down to ``minimum`` along half
    a cosine (``CosineAnnealingLR(optimizer, total, eta_min=minimum)`` after ``step`` scheduler steps)."""
    weight = 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))
    optimizer.rates = [minimum + (base - minimum) * weight for _, base in optimizer.groups]
