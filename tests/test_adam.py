"""The hand-written Adam and cosine schedule (``backend.fitting.adam``) against torch's, step for step."""

from __future__ import annotations

import subprocess
import sys

import torch

from backend.fitting.adam import Adam, cosine_rates


def _energy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - 3.0) ** 4).sum() + (torch.sin(b) * a[:2]).sum() + (b**2).sum()


def test_same_steps_as_torch_adam_with_a_cosine_schedule() -> None:
    torch.manual_seed(0)
    start = (torch.randn(3), torch.randn(2))
    mine = [torch.nn.Parameter(x.clone()) for x in start]
    theirs = [torch.nn.Parameter(x.clone()) for x in start]
    opt = Adam([([mine[0]], 0.05), ([mine[1]], 0.01)])
    ref = torch.optim.Adam([{"params": [theirs[0]], "lr": 0.05}, {"params": [theirs[1]], "lr": 0.01}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(ref, 30, eta_min=0.005)
    for step in range(30):
        cosine_rates(opt, step, 30, 0.005)
        opt.zero_grad()
        _energy(*mine).backward()
        opt.step()
        ref.zero_grad()
        _energy(*theirs).backward()
        ref.step()
        schedule.step()
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(mine[0].detach(), start[0])  # it moved


def test_fitting_does_not_import_dynamo() -> None:
    """The point of writing Adam out: a fit must not pull in torch._dynamo (seconds of start-up)."""
    code = ("import sys, torch; from backend.fitting.adam import Adam; p = torch.nn.Parameter(torch.ones(2)); "
            "o = Adam([([p], 0.1)]); (p ** 2).sum().backward(); o.step(); print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
