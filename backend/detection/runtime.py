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
import re
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.runtime.atomic import atomic_path
from backend.runtime.paths import cache_subdir

_IMPORT_LOCK = threading.Lock()
# The exports' format: raised when the same model file exports to a different graph (2: PADs folded into the
# convolutions and SAME padding as constants, which ONNX Runtime folds into them: no layout conversions between
# them), so a cache made by older code is not reused.
EXPORT_VERSION = 2


@dataclass
class Deferred:
    """Per input row of one call, what gives a network's deferred outputs (:meth:`Network.partial`): the outputs
    themselves (``ready``) or the inner tensors they are computed from."""

    arrays: dict[str, np.ndarray]
    ready: bool

    def select(self, index) -> "Deferred":
        idx = np.asarray(index, dtype=np.int64)
        return Deferred({name: value[idx] for name, value in self.arrays.items()}, self.ready)

    @classmethod
    def concatenate(cls, parts: Sequence["Deferred"]) -> "Deferred":
        return cls({name: np.concatenate([p.arrays[name] for p in parts]) for name in parts[0].arrays},
                   parts[0].ready)


class Network:
    """A network with named outputs: ``network(x)`` takes NHWC float input (torch) and returns torch tensors.

    ``deferred`` outputs can be left out of a call (:meth:`partial`) and computed later for some of its rows
    (:meth:`finish`): in ONNX Runtime the graph is split where the deferred outputs' own layers begin. BlazePose's
    landmark model spends about half its time on the 256 x 256 person mask, which only the crops finally kept need.
    """

    def __init__(self, module: torch.nn.Module, outputs: list[str], source: Path, device: str | torch.device,
                 example_shape: tuple[int, ...], deferred: Sequence[str] = ()) -> None:
        self.outputs = list(outputs)
        self.deferred = [name for name in deferred if name in self.outputs]
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self._session = self._main = self._rest = None
        if self.device.type == "cpu" and use_onnx():
            path = _exported(self.module, self.outputs, Path(source), example_shape)
            self._session = _onnx_session(path)
            if self.deferred:
                self._split_sessions(path)
        self.runtime = "onnxruntime" if self._session is not None else "torch"

    def _split_sessions(self, path: Path) -> None:
        """The split graph's two sessions; a graph that cannot be cut (another onnx version's extractor) only costs
        speed: :meth:`partial` then computes everything at once."""
        try:
            main, rest = _split(path, [f"output_{self.outputs.index(name)}" for name in self.deferred])
            self._main, self._rest = _onnx_session(main), _onnx_session(rest)
        except Exception as exc:  # noqa: BLE001 - any failure of the optional cut falls back to the whole graph
            warnings.warn(f"{path.name}: not cut for the deferred outputs {self.deferred} ({exc}); the whole graph "
                          "runs for every call (slower, same results)", RuntimeWarning, stacklevel=3)
            self._main = self._rest = None

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._session is None:
            return self.module(x.to(self.device))
        values = self._session.run(None, {"input": _numpy(x)})
        return {name: torch.from_numpy(value) for name, value in zip(self.outputs, values)}

    @torch.inference_mode()
    def partial(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Deferred]:
        """The outputs but the deferred ones, and what :meth:`finish` computes those from (for any of the rows).
        Without a split graph (torch, CUDA) everything is computed now."""
        if self._main is None:
            out = self(x)
            ready = {name: out.pop(name).detach().cpu().numpy() for name in self.deferred}
            return out, Deferred(ready, ready=True)
        values = self._main.run(None, {"input": _numpy(x)})
        kept = [name for name in self.outputs if name not in self.deferred]
        inner = [node.name for node in self._main.get_outputs()[len(kept):]]
        return ({name: torch.from_numpy(value) for name, value in zip(kept, values)},
                Deferred(dict(zip(inner, values[len(kept):])), ready=False))

    def finish(self, deferred: Deferred) -> dict[str, torch.Tensor]:
        """The deferred outputs of the rows ``deferred`` holds."""
        if deferred.ready:
            return {name: torch.from_numpy(value) for name, value in deferred.arrays.items()}
        values = self._rest.run(None, deferred.arrays)
        return {name: torch.from_numpy(value) for name, value in zip(self.deferred, values)}


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)


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


def _onnx_session(path: Path):
    onnxruntime = _import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT warns about initializers it folds
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # torch runs between calls
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _exported(module: torch.nn.Module, outputs: list[str], source: Path, example_shape: tuple[int, ...]) -> Path:
    """The cached ONNX export of ``module`` (made once per model file, input size and ``EXPORT_VERSION``)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    shape = "x".join(str(s) for s in example_shape[1:])
    stem = f"{source.stem}-{digest}-{shape}"
    target = cache_subdir("onnx") / f"{stem}-v{EXPORT_VERSION}.onnx"
    if target.is_file():
        return target
    _drop_older_exports(target.parent, stem)
    wrapper = _Tupled(module, outputs)
    with atomic_path(target) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic: the input size is fixed
        torch.onnx.export(wrapper, (torch.zeros(example_shape),), str(tmp), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=[f"output_{i}" for i in range(len(outputs))],
                          dynamic_axes={"input": {0: "batch"}})
    return target


def _drop_older_exports(folder: Path, stem: str) -> None:
    """Remove the exports (and their cut parts) of the same model and input size made under an older
    ``EXPORT_VERSION``: never read again, tens of megabytes each."""
    for path in folder.glob(f"{stem}*.onnx"):
        made = re.fullmatch(r"(?:-v(\d+))?(?:\.main|\.deferred)?\.onnx", path.name[len(stem):])
        if made is not None and int(made.group(1) or 1) < EXPORT_VERSION:
            try:
                path.unlink()
            except OSError:  # in use by another process (Windows), or gone already: left as it is
                pass


def _split(path: Path, deferred: list[str]) -> tuple[Path, Path]:
    """The exported graph cut in two (cached beside it): the main part gives every output but ``deferred`` and
    then the inner tensors the deferred outputs' own layers read; the rest computes those outputs from them."""
    main, rest = path.with_suffix(".main.onnx"), path.with_suffix(".deferred.onnx")
    if main.is_file() and rest.is_file():
        return main, rest
    import onnx
    from onnx.utils import Extractor

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))  # the cut needs the inner tensors' types
    outputs = [output.name for output in model.graph.output]
    inner = _frontier(model.graph, deferred, [name for name in outputs if name not in deferred])
    typed = {info.name for info in model.graph.value_info}
    model.graph.value_info.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                                  for name in inner if name not in typed)
    extractor = Extractor(model)
    for target, inputs, wanted in ((main, ["input"], [n for n in outputs if n not in deferred] + inner),
                                   (rest, inner, deferred)):
        with atomic_path(target) as tmp:
            onnx.save(extractor.extract_model(inputs, wanted), str(tmp))
    return main, rest


def _frontier(graph, deferred: list[str], others: list[str]) -> list[str]:
    """The tensors that the nodes only ``deferred`` outputs need read from the part the ``others`` need too."""
    producer = {name: node for node in graph.node for name in node.output}

    def needed(names: list[str]) -> set[int]:
        nodes, stack = set(), list(names)
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in nodes:
                nodes.add(id(node))
                stack.extend(node.input)
        return nodes

    shared = needed(others)
    own = [node for node in graph.node if id(node) in needed(deferred) - shared]
    initializers = {tensor.name for tensor in graph.initializer}
    return sorted({name for node in own for name in node.input if name and name not in initializers
                   and (name == "input" or id(producer.get(name)) in shared)})


class _Tupled(torch.nn.Module):
    """The module's named outputs as a tuple (what the exporter traces)."""

    def __init__(self, module: torch.nn.Module, outputs: list[str]) -> None:
        super().__init__()
        self.module = module
        self.names = outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(x)
        return tuple(out[name] for name in self.names)

