"""Timing tools shared by the benchmarks: frames/s of a callable with warm-up and a minimum measuring time,
peak GPU memory per case, a top-kernels profile, FLOPs of one forward, the GPU's bf16 peak by name, and a CUDA
graph around a network's forward pass (fixed batch shape; other shapes fall back to the eager module).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s, no sparsity). The H200 SXM has the H100
# SXM's arithmetic; a 8192^3 bf16 matmul measured about 790 TFLOP/s on this project's H200s.
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 SXM", 989.0), ("H100 80GB HBM3", 989.0), ("H100 PCIe", 756.0),
                    ("H100 NVL", 835.0), ("A100", 312.0), ("L40S", 362.0), ("A10G", 70.0))
PEAK_SOURCE = "NVIDIA datasheets, dense bf16 tensor-core peak (H200/H100 SXM 989, A100 312 TFLOP/s)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_second(step: Callable[[], Any], frames_per_step: int, device: torch.device, repeats: int,
                      warmup: int = 1, min_seconds: float = 0.0) -> tuple[float, int]:
    """Frames/s of ``step`` (which must finish its work before returning, or be followed by a sync): ``warmup``
    untimed calls (cudnn autotuning, allocator, pinned buffers), then at least ``repeats`` timed calls and at
    least ``min_seconds``. Returns (frames/s, timed calls)."""
    for _ in range(warmup):
        step()
    sync(device)
    calls, start = 0, time.perf_counter()
    while calls < repeats or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    sync(device)
    return calls * frames_per_step / (time.perf_counter() - start), calls


@contextmanager
def peak_memory(device: torch.device, into: dict) -> Iterator[None]:
    """``into['peak_mib']``: torch.cuda.max_memory_allocated over the block (reset at its start); None on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        into["peak_mib"] = (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None


def top_kernels(step: Callable[[], Any], device: torch.device, count: int = 15) -> list[dict]:
    """torch.profiler over two calls of ``step`` (after one untimed call): on CUDA the ``count`` kernels with
    the most device time, on the CPU the ``count`` operators with the most own CPU time, as report rows
    (``share``: of all kernels' device time, or of all operators' CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step()
    sync(device)
    with profile(activities=activities) as prof:
        for _ in range(2):
            step()
        sync(device)
    events = list(prof.key_averages())
    if device.type == "cuda":
        kernels = [e for e in events if _is_kernel(e)]
        events = kernels or events  # older profilers do not mark device events: then the operators' totals
        time_of = (lambda e: _attr(e, "self_device_time_total", "self_cuda_time_total")) if kernels else (
            lambda e: _attr(e, "device_time_total", "cuda_time_total"))
    else:
        time_of = lambda e: _attr(e, "self_cpu_time_total")  # noqa: E731
    ranked = sorted((e for e in events if time_of(e) > 0), key=time_of, reverse=True)
    total = sum(time_of(e) for e in ranked) or 1.0
    return [{"name": e.key[:90], "calls": int(e.count), "ms_per_step": time_of(e) / 1000 / 2,
             "share": time_of(e) / total} for e in ranked[:count]]


def _attr(event: Any, *names: str) -> float:
    for name in names:
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def _is_kernel(event: Any) -> bool:
    """A device-side kernel (or memcpy/memset), not a host operator whose device total includes its kernels."""
    return "CUDA" in str(getattr(event, "device_type", "")) and _attr(event, "self_device_time_total",
                                                                        "self_cuda_time_total") > 0


def forward_flops(make_net: Callable[[], torch.nn.Module], input_shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass of the network ``make_net()`` builds, on an input of ``input_shape``
    (torch.utils.flop_counter: 2 per multiply-add of the convolutions and matrix products; elementwise work is
    not counted). Built and run on the meta device: shapes only, no arithmetic, so it costs nothing anywhere;
    the count does not depend on the dtype."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = make_net().eval()
        images = torch.zeros(input_shape)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(images)
    return float(counter.get_total_flops())


def bf16_peak(device: torch.device) -> tuple[float | None, str]:
    """(TFLOP/s, device name) from :data:`BF16_PEAK_TFLOPS`; None when the GPU is not in the table."""
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK_TFLOPS:
        if key.lower() in name.lower():
            return peak, name
    return None, name


class GraphedForward(torch.nn.Module):
    """``net``'s forward captured once in a CUDA graph for inputs of ``shape`` under autocast ``dtype``; calls
    with that shape copy into the static input and replay (no per-layer launch cost), others run ``net``.
    Attribute access falls through to ``net`` (BEV's ``regress``). Outputs are the graph's static tensors: they
    are overwritten by the next replay, which is how the estimators use them (consumed before the next batch)."""

    def __init__(self, net: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
                 dtype: torch.dtype | None) -> None:
        super().__init__()
        self.net = net
        self.shape = tuple(shape)
        self.static_in = torch.zeros(self.shape, device=device)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.inference_mode(), _autocast(device, dtype):
            for _ in range(2):  # warm-up on a side stream, as CUDA graph capture requires
                net(self.static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), _autocast(device, dtype), torch.cuda.graph(self.graph):
            self.static_out = net(self.static_in)

    def forward(self, images: torch.Tensor) -> Any:
        if tuple(images.shape) != self.shape:
            return self.net(images)
        self.static_in.copy_(images)
        self.graph.replay()
        return self.static_out

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.net, name)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Autocast without its cast-weights cache: cached casts made during capture would be freed after it while
    the graph still reads them (PyTorch's CUDA-graph notes)."""
    from contextlib import nullcontext

    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype, cache_enabled=False)
