"""Run a TFLite model (the MediaPipe .tflite files) as a torch module: no TensorFlow, no TFLite runtime.

MediaPipe's detectors and landmark models use a dozen TFLite operators (convolutions, padding, resizing,
depth-to-space, ...). Reading the flatbuffer and running those operators in torch gives us what MediaPipe's own
runtime does not: a batch of crops in one call, regions of interest we choose ourselves, any device torch runs on,
and any Python torch supports. Constant subgraphs (weights stored sparse and/or float16: ``DENSIFY``,
``DEQUANTIZE``) are folded once at load.

Activations are kept in torch's NCHW layout; TFLite's NHWC semantics are restored where an operator depends on
the layout (reshape, concatenation and reductions over other axes). Unsupported operators raise ``ValueError``
naming them at load, never at inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from backend.detection.padding import same_padded
from backend.detection.tflite_schema import load_schema

tfl = load_schema()

_DTYPES = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.FLOAT16: np.float16, tfl.TensorType.INT32: np.int32,
           tfl.TensorType.UINT8: np.uint8, tfl.TensorType.INT8: np.int8, tfl.TensorType.INT64: np.int64}
_OPERATOR_NAMES = {code: name for name, code in vars(tfl.BuiltinOperator).items() if not name.startswith("_")}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
Op = Callable[[dict], None]


class TfliteModel(torch.nn.Module):
    """One TFLite model's first subgraph. ``forward(x)`` takes NHWC float input(s), returns outputs by name
    (4-D outputs NHWC, as TFLite gives them)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        data = Path(path).read_bytes()
        try:
            model = tfl.ModelT.InitFromPackedBuf(bytearray(data), 0)
        except Exception as exc:  # flatbuffers raises assorted errors on garbage
            raise ValueError(f"{path} is not a TFLite model: {exc}") from exc
        graph = model.subgraphs[0]
        self.name = Path(path).name
        self._tensors = graph.tensors
        self._inputs = list(graph.inputs)
        self._outputs = [(i, graph.tensors[i].name.decode()) for i in graph.outputs]
        self.output_names = [name for _, name in self._outputs]
        self.input_shape = tuple(int(v) for v in graph.tensors[graph.inputs[0]].shape)
        self._constants: dict[int, np.ndarray] = {}
        for index, tensor in enumerate(graph.tensors):
            raw = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
            if raw is not None and len(raw):
                self._constants[index] = _constant(tensor, np.asarray(raw, np.uint8))
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        names = []
        for op in graph.operators:
            name = _OPERATOR_NAMES.get(codes[op.opcodeIndex], str(codes[op.opcodeIndex]))
            custom = model.operatorCodes[op.opcodeIndex].customCode
            names.append("CUSTOM:" + custom.decode() if name == "CUSTOM" else name)
        self._ops: list[Op] = []
        self._weights = torch.nn.ParameterList()
        # a PAD feeding only a VALID convolution, as (its input, (rows, columns) each side), padded by the convolution
        self._padded_by_conv: dict[int, tuple[int, tuple[int, int]]] = {}
        readers = _readers(graph, names)
        for name, op in zip(names, graph.operators):
            if self._fold(name, op) or self._pad_into_conv(name, op, readers):
                continue
            build = _BUILDERS.get(name)
            if build is None:
                raise ValueError(f"{self.name}: TFLite operator {name} is not supported")
            self._ops.append(build(self, op))
        self.requires_grad_(False)

    # ------------------------------------------------------------------------------------------ load time

    def _fold(self, name: str, op) -> bool:
        """Evaluate operators on constants at load (weights stored sparse or float16)."""
        if not all(i in self._constants for i in op.inputs if i >= 0):
            return False
        source = self._constants[op.inputs[0]]
        if name == "DENSIFY":
            self._constants[op.outputs[0]] = _densify(self._tensors[op.inputs[0]], source,
                                                      self._tensors[op.outputs[0]].shape)
        elif name == "DEQUANTIZE":
            self._constants[op.outputs[0]] = _dequantize(self._tensors[op.inputs[0]], source)
        else:
            return False
        return True

    def _pad_into_conv(self, name: str, op, readers: dict[int, list[tuple[str, object]]]) -> bool:
        """Leave a PAD out when its one reader is a VALID convolution that can pad the same (zeros, the same on
        both sides of the rows and of the columns): one operator fewer, and in ONNX Runtime the Pads between
        convolutions, with the conversions out of and back into the convolutions' blocked layout around each, took
        about a third of the landmark model's time."""
        if name != "PAD" or op.inputs[1] not in self._constants or op.outputs[0] in dict(self._outputs):
            return False
        pads = np.asarray(self._constants[op.inputs[1]], np.int64).reshape(-1, 2)
        reader = readers.get(op.outputs[0], [])
        if (pads.shape != (4, 2) or pads[0].any() or pads[3].any() or pads[1, 0] != pads[1, 1]
                or pads[2, 0] != pads[2, 1] or len(reader) != 1):
            return False
        reader_name, conv = reader[0]
        if (reader_name not in ("CONV_2D", "DEPTHWISE_CONV_2D") or conv.inputs[0] != op.outputs[0]
                or conv.builtinOptions.padding != tfl.Padding.VALID):
            return False
        self._padded_by_conv[op.outputs[0]] = (op.inputs[0], (int(pads[1, 0]), int(pads[2, 0])))
        return True

    def conv_input(self, index: int) -> tuple[int, tuple[int, int]]:
        """A convolution's input tensor and the zero padding it adds itself (a PAD left out before it)."""
        return self._padded_by_conv.get(index, (index, (0, 0)))

    def constant(self, index: int) -> np.ndarray:
        return self._constants[index]

    def parameter(self, array: np.ndarray) -> torch.nn.Parameter:
        p = torch.nn.Parameter(torch.as_tensor(np.ascontiguousarray(array, np.float32)), requires_grad=False)
        self._weights.append(p)
        return p

    def shape(self, index: int) -> list[int]:
        return list(self._tensors[index].shape)

    # ------------------------------------------------------------------------------------------ run time

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[int, torch.Tensor] = {}
        for index, x in zip(self._inputs, inputs):
            values[index] = x.permute(0, 3, 1, 2) if x.dim() == 4 else x
        for op in self._ops:
            op(values)
        return {name: _to_nhwc(values[i]) for i, name in self._outputs}


def _readers(graph, names: list[str]) -> dict[int, list[tuple[str, object]]]:
    """Per tensor, the operators (name, operator) that read it."""
    readers: dict[int, list[tuple[str, object]]] = {}
    for name, op in zip(names, graph.operators):
        for index in op.inputs:
            if index >= 0:
                readers.setdefault(int(index), []).append((name, op))
    return readers


# ---------------------------------------------------------------------------------------------- constants


def _constant(tensor, raw: np.ndarray) -> np.ndarray:
    dtype = _DTYPES.get(tensor.type)
    if dtype is None:
        raise ValueError(f"tensor {tensor.name!r} has an unsupported type {tensor.type}")
    values = raw.view(dtype)
    if tensor.sparsity is not None:
        return values  # a flat list of the non-zero values; DENSIFY gives it its shape
    shape = [] if tensor.shape is None else list(tensor.shape)
    return values.reshape(shape)


def _dequantize(tensor, values: np.ndarray) -> np.ndarray:
    q = tensor.quantization
    if values.dtype == np.float16 or q is None or q.scale is None or not len(q.scale):
        return values.astype(np.float32)
    scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.float32)
    axis = q.quantizedDimension
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


def _vector(union) -> np.ndarray:
    return np.asarray(union.values, np.int64)


def _densify(tensor, values: np.ndarray, dense_shape) -> np.ndarray:
    """TFLite's sparse format (dimensions traversed in ``traversal_order``, each DENSE or compressed sparse row,
    optional blocks): expand level by level, tracking each value's coordinates."""
    sparsity = tensor.sparsity
    order = np.asarray(sparsity.traversalOrder, np.int64)
    block_map = np.asarray(sparsity.blockMap if sparsity.blockMap is not None else [], np.int64)
    rank = len(dense_shape)
    position = np.zeros(1, np.int64)  # index into the level's segment arrays (or the running dense index)
    coords = np.zeros((1, len(order)), np.int64)
    for level, dim in enumerate(order):
        meta = sparsity.dimMetadata[level]
        if meta.format == tfl.DimensionType.DENSE:
            size = meta.denseSize
            j = np.arange(size)
            position = (position[:, None] * size + j[None]).reshape(-1)
            coords = np.repeat(coords, size, axis=0)
            coords[:, dim] = np.tile(j, len(coords) // size)
        else:
            segments, indices = _vector(meta.arraySegments), _vector(meta.arrayIndices)
            starts, ends = segments[position], segments[position + 1]
            counts = ends - starts
            coords = np.repeat(coords, counts, axis=0)
            position = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(starts) else position
            coords[:, dim] = indices[position]
    dense = np.zeros(dense_shape, values.dtype)
    index = coords[:, :rank].copy()
    for block, original in enumerate(block_map):
        size = sparsity.dimMetadata[list(order).index(rank + block)].denseSize
        index[:, original] = index[:, original] * size + coords[:, rank + block]
    dense[tuple(index.T)] = values[: len(index)]
    return dense


# ---------------------------------------------------------------------------------------------- operators


def _activation(kind: int) -> Callable[[torch.Tensor], torch.Tensor]:
    A = tfl.ActivationFunctionType
    if kind == A.NONE:
        return lambda x: x
    if kind == A.RELU:
        return F.relu_
    if kind == A.RELU6:
        return lambda x: x.clamp_(0.0, 6.0)
    if kind == A.RELU_N1_TO_1:
        return lambda x: x.clamp_(-1.0, 1.0)
    if kind == A.TANH:
        return torch.tanh
    raise ValueError(f"fused activation {kind} is not supported")


def _padded(x: torch.Tensor, padding: int, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int]]:
    """(input, symmetric padding left to the convolution): only asymmetric SAME padding is done by hand."""
    if padding != tfl.Padding.SAME:
        return x, (0, 0)
    return same_padded(x, kernel, stride, dilation, value)


def _conv(model: TfliteModel, op) -> Op:
    o = op.builtinOptions
    weight = model.constant(op.inputs[1])  # (out, kh, kw, in)
    w = model.parameter(weight.transpose(0, 3, 1, 2))
    b = model.parameter(model.constant(op.inputs[2])) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    act, kernel, dst = _activation(o.fusedActivationFunction), weight.shape[1:3], op.outputs[0]
    src, own = model.conv_input(op.inputs[0])

    def run(v: dict) -> None:
        x, pad = _padded(v[src], o.padding, kernel, stride, dilation)
        v[dst] = act(F.conv2d(x, w, b, stride, own if o.padding == tfl.Padding.VALID else pad, dilation))
    return run


def _depthwise(model: TfliteModel, op) -> Op:
    o = op.builtinOptions
    weight = model.constant(op.inputs[1])  # (1, kh, kw, out)
    w = model.parameter(weight.transpose(3, 0, 1, 2))
    b = model.parameter(model.constant(op.inputs[2])) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    act, kernel, dst = _activation(o.fusedActivationFunction), weight.shape[1:3], op.outputs[0]
    groups = model.shape(op.inputs[0])[3]
    src, own = model.conv_input(op.inputs[0])

    def run(v: dict) -> None:
        x, pad = _padded(v[src], o.padding, kernel, stride, dilation)
        v[dst] = act(F.conv2d(x, w, b, stride, own if o.padding == tfl.Padding.VALID else pad, dilation, groups))
    return run


def _max_pool(model: TfliteModel, op) -> Op:
    o = op.builtinOptions
    kernel, stride = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
    act = _activation(o.fusedActivationFunction)
    src, dst = op.inputs[0], op.outputs[0]

    def run(v: dict) -> None:
        x, pad = _padded(v[src], o.padding, kernel, stride, (1, 1), value=float("-inf"))
        if pad != (0, 0):
            x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]), value=float("-inf"))
        v[dst] = act(F.max_pool2d(x, kernel, stride))
    return run


def _binary(fn: Callable) -> Callable[[TfliteModel, object], Op]:
    def build(model: TfliteModel, op) -> Op:
        act = _activation(op.builtinOptions.fusedActivationFunction if op.builtinOptions is not None else 0)
        a, b, dst = op.inputs[0], op.inputs[1], op.outputs[0]
        const = {i: _operand(model, i) for i in (a, b) if i in model._constants}

        def run(v: dict) -> None:
            v[dst] = act(fn(const.get(a, v.get(a)), const.get(b, v.get(b))))
        return run
    return build


def _operand(model: TfliteModel, index: int) -> torch.Tensor:
    """A constant operand of an elementwise op, laid out to broadcast against NCHW activations."""
    array = np.asarray(model.constant(index), np.float32)
    if array.ndim == 4:
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim == 1 and array.size > 1:
        array = array.reshape(1, -1, 1, 1)
    return model.parameter(array)


def _unary(fn: Callable) -> Callable[[TfliteModel, object], Op]:
    def build(model: TfliteModel, op) -> Op:
        src, dst = op.inputs[0], op.outputs[0]

        def run(v: dict) -> None:
            v[dst] = fn(v[src])
        return run
    return build


def _pad(model: TfliteModel, op) -> Op:
    pads = np.asarray(model.constant(op.inputs[1]), np.int64).reshape(-1, 2)  # per NHWC axis: (before, after)
    src, dst = op.inputs[0], op.outputs[0]
    if len(pads) == 4:  # F.pad lists the last axis first: NCHW -> (W, H, C)
        spec = [*pads[2], *pads[1], *pads[3]]
    else:
        spec = [int(p) for pair in pads[::-1] for p in pair]

    def run(v: dict) -> None:
        v[dst] = F.pad(v[src], [int(p) for p in spec])
    return run


def _resize_bilinear(model: TfliteModel, op) -> Op:
    o = op.builtinOptions
    size = tuple(int(s) for s in model.constant(op.inputs[1]))
    src, dst = op.inputs[0], op.outputs[0]

    def run(v: dict) -> None:
        v[dst] = _bilinear(v[src], size, o.alignCorners, o.halfPixelCenters)
    return run


def _bilinear(x: torch.Tensor, size: tuple[int, int], align_corners: bool, half_pixel: bool) -> torch.Tensor:
    if align_corners or half_pixel:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    # TensorFlow's legacy sampling: source = destination * (in / out), no half-pixel offset.
    out = x
    for axis, (n_in, n_out) in ((2, (x.shape[2], size[0])), (3, (x.shape[3], size[1]))):
        src = torch.arange(n_out, dtype=torch.float32, device=x.device) * (n_in / n_out)
        low = src.floor().long().clamp(max=n_in - 1)
        high = (low + 1).clamp(max=n_in - 1)
        frac = (src - low.float()).view([-1 if a == axis else 1 for a in range(4)])
        out = out.index_select(axis, low) * (1 - frac) + out.index_select(axis, high) * frac
    return out


def _depth_to_space(model: TfliteModel, op) -> Op:
    block, src, dst = op.builtinOptions.blockSize, op.inputs[0], op.outputs[0]

    def run(v: dict) -> None:
        x = v[src]
        n, c, h, w = x.shape
        out = c // (block * block)
        # TensorFlow orders the input channels (row in block, column in block, output channel)
        x = x.view(n, block, block, out, h, w).permute(0, 3, 4, 1, 5, 2)
        v[dst] = x.reshape(n, out, h * block, w * block)
    return run


def _reshape(model: TfliteModel, op) -> Op:
    target = model.shape(op.outputs[0])
    src, dst = op.inputs[0], op.outputs[0]

    def run(v: dict) -> None:
        x = _to_nhwc(v[src])
        y = x.reshape([x.shape[0], *target[1:]])
        v[dst] = y.permute(0, 3, 1, 2) if y.dim() == 4 else y
    return run


def _concatenation(model: TfliteModel, op) -> Op:
    o = op.builtinOptions
    rank = len(model.shape(op.outputs[0]))
    axis = o.axis % rank
    axis = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
    act, srcs, dst = _activation(o.fusedActivationFunction), list(op.inputs), op.outputs[0]

    def run(v: dict) -> None:
        v[dst] = act(torch.cat([v[i] for i in srcs], dim=axis))
    return run


def _mean(model: TfliteModel, op) -> Op:
    axes = [int(a) for a in np.atleast_1d(model.constant(op.inputs[1]))]
    rank = len(model.shape(op.inputs[0]))
    dims = [_NHWC_TO_NCHW_AXIS[a % rank] if rank == 4 else a % rank for a in axes]
    keep, src, dst = bool(op.builtinOptions.keepDims), op.inputs[0], op.outputs[0]
    if not keep and rank == 4:
        raise ValueError("MEAN without keep_dims on a 4-D tensor is not supported")

    def run(v: dict) -> None:
        v[dst] = v[src].mean(dim=dims, keepdim=keep)
    return run


def _transpose_conv_bias(model: TfliteModel, op) -> Op:
    """MediaPipe's custom Convolution2DTransposeBias (stride 2, SAME): transposed convolution plus bias."""
    weight = model.constant(op.inputs[1])  # (out, kh, kw, in)
    w = model.parameter(weight.transpose(3, 0, 1, 2))  # torch: (in, out, kh, kw)
    b = model.parameter(model.constant(op.inputs[2]))
    src, dst = op.inputs[0], op.outputs[0]
    kh = weight.shape[1]

    def run(v: dict) -> None:
        x = v[src]
        y = F.conv_transpose2d(x, w, b, stride=2, padding=(kh - 2) // 2 if kh > 2 else 0,
                               output_padding=0)
        v[dst] = y[:, :, : 2 * x.shape[2], : 2 * x.shape[3]]
    return run


def _to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


_BUILDERS: dict[str, Callable[[TfliteModel, object], Op]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "MAX_POOL_2D": _max_pool,
    "ADD": _binary(torch.add),
    "MUL": _binary(torch.mul),
    "PAD": _pad,
    "RESIZE_BILINEAR": _resize_bilinear,
    "DEPTH_TO_SPACE": _depth_to_space,
    "RESHAPE": _reshape,
    "CONCATENATION": _concatenation,
    "MEAN": _mean,
    "LOGISTIC": _unary(torch.sigmoid),
    "RELU": _unary(F.relu),
    "HARD_SWISH": _unary(F.hardswish),
    "CUSTOM:Convolution2DTransposeBias": _transpose_conv_bias,
}
