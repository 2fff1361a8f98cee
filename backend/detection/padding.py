"""TensorFlow's SAME padding for torch convolutions and poolings (both model loaders, TFLite and TF.js, need it).

TensorFlow puts the odd pixel of SAME padding after (bottom/right), which torch's symmetric ``padding`` argument
cannot express: only that case is padded by hand. The sizes are read as plain ints, also while the ONNX export
traces the graph: a traced shape would leave the padding computed at run time, and ONNX Runtime folds only
constant padding into the convolution (the models' input sizes are fixed, so the padding is too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) along one axis of ``size`` pixels."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def same_padded(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int]]:
    """``x`` (N, C, H, W) and the symmetric padding left to the convolution: SAME padding, asymmetric done here."""
    height, width = int(x.shape[2]), int(x.shape[3])
    top, bottom = same_padding(height, kernel[0], stride[0], dilation[0])
    left, right = same_padding(width, kernel[1], stride[1], dilation[1])
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom), value=value), (0, 0)
