"""How the people-finding networks run: torch everywhere (and on CUDA), ONNX Runtime on the CPU when installed.

The torch modules (``tflite.TfliteModel``, ``tfjs.TfjsGraph``) are the reference implementation. On the CPU they
are exported once to ONNX (``torch.onnx``; needs the ``onnx`` package) into the cache, keyed by the model file's
checksum, and run with ONNX Runtime, which fuses the small convolutions these mobile networks are made of: 1.4
to 2.5 times faster per image on two cores (``python benchmarks/bench_people.py``). Without onnx and onnxruntime,
on CUDA, or with ``TROUPE_RUNTIME=torch``, the torch module runs; both give the same outputs to about 1e-3.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from backend.runtime.atomic import atomic_path
from backend.runtime.paths import cache_subdir

_IMPORT_LOCK = threading.Lock()


class Network:
    """A network with named outputs: ``network(x)`` takes NHWC float input (torch) and returns torch tensors."""

    def __init__(self, module: torch.nn.Module, outputs: list[str], source: Path, device: str | torch.device,
                 example_shape: tuple[int, ...]) -> None:
        self.outputs = list(outputs)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self._session = None
        if self.device.type == "cpu" and use_onnx():
            self._session = _onnx_session(self.module, self.outputs, Path(source), example_shape)
        self.runtime = "onnxruntime" if self._session is not None else "torch"

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._session is None:
            return self.module(x.to(self.device))
        values = self._session.run(None, {"input": np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})
        return {name: torch.from_numpy(value) for name, value in zip(self.outputs, values)}


def use_onnx() -> bool:
    """ONNX Runtime for CPU inference: installed (onnx to export, onnxruntime to run) and not switched off."""
    if os.environ.get("TROUPE_RUNTIME", "").lower() == "torch":
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _import_onnxruntime():
    """ONNX Runtime, imported with ``XDG_CACHE_HOME`` pointing into Troupe's cache for the moment of the import:
    its telemetry library writes a device id under ``$XDG_CACHE_HOME`` (else ``~/.cache``) when it loads, and
    Troupe writes nothing into the user's home outside its documented cache."""
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    with _IMPORT_LOCK:
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = str(cache_subdir("onnxruntime"))
        try:
            import onnxruntime
        finally:
            if saved is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    return onnxruntime


def _onnx_session(module: torch.nn.Module, outputs: list[str], source: Path, example_shape: tuple[int, ...]):
    onnxruntime = _import_onnxruntime()
    path = _exported(module, outputs, source, example_shape)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT warns about initializers it folds
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # torch runs between calls
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _exported(module: torch.nn.Module, outputs: list[str], source: Path, example_shape: tuple[int, ...]) -> Path:
    """The cached ONNX export of ``module`` (made once per model file and input size)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    shape = "x".join(str(s) for s in example_shape[1:])
    target = cache_subdir("onnx") / f"{source.stem}-{digest}-{shape}.onnx"
    if target.is_file():
        return target
    wrapper = _Tupled(module, outputs)
    with atomic_path(target) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic: the input size is fixed
        torch.onnx.export(wrapper, (torch.zeros(example_shape),), str(tmp), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=[f"output_{i}" for i in range(len(outputs))],
                          dynamic_axes={"input": {0: "batch"}})
    return target


class _Tupled(torch.nn.Module):
    """The module's named outputs as a tuple (what the exporter traces)."""

    def __init__(self, module: torch.nn.Module, outputs: list[str]) -> None:
        super().__init__()
        self.module = module
        self.names = outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(x)
        return tuple(out[name] for name in self.names)

