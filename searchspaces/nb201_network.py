"""The NAS-Bench-201 / NATS-Bench cell network, as the benchmark trained it.

One network class serves both NATS spaces: topology (TSS, 5 cells per stage at 16/32/64 channels)
and size (SSS, one cell per stage, channels searched). Module names and nesting follow the
benchmark's own model code (``stem``, ``cells.i.layers.j.op``, ``lastact``, ``classifier``) so the
official trained weights load with ``load_state_dict`` and NEAR-style hooks see the same modules
in the same order. ``forward`` returns logits only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Op names in the benchmark's order (this order defines the official TSS index).
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source node, target node) of the six cell edges, in the order of the arch string.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: contributes nothing, but keeps the output shape."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x[:, :, :: self.stride, :: self.stride].mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """``skip_connect`` between cells of different widths (stride 1 only, as in SSS)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class Pooling(nn.Module):
    """``avg_pool_3x3``, with a 1x1 ReLU-conv-BN first when the widths differ."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preprocess = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0)
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


def make_op(name: str, c_in: int, c_out: int) -> nn.Module:
    """One cell edge (stride 1; the benchmark's cells never downsample)."""
    if name == "none":
        return Zero(c_in, c_out, 1)
    if name == "skip_connect":
        return Identity() if c_in == c_out else FactorizedReduce(c_in, c_out)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if name == "avg_pool_3x3":
        return Pooling(c_in, c_out)
    raise ValueError(f"unknown op {name!r}; expected one of {OPS}")


class InferCell(nn.Module):
    """A fixed cell: node j is the sum of its incoming edges; the output is node 3."""

    def __init__(self, ops: Sequence[str], c_in: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_op(op, c_in if src == 0 else c_out, c_out) for op, (src, _) in zip(ops, EDGES))
        self.in_dim, self.out_dim = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        layer = 0
        for target in (1, 2, 3):
            total = None
            for src in range(target):
                out = self.layers[layer](nodes[src])
                total = out if total is None else total + out
                layer += 1
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The fixed residual reduction block between stages (stride 2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )
        self.in_dim, self.out_dim = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class CellNetwork(nn.Module):
    """Stem, a sequence of cells and reduction blocks, BN-ReLU, global pooling, linear head.

    ``widths[i]`` is the output width of layer ``i``; ``reductions[i]`` marks the residual
    reduction blocks. The stem outputs ``widths[0]`` channels.
    """

    def __init__(self, ops: Sequence[str], widths: Sequence[int], reductions: Sequence[bool], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(widths[0])
        )
        cells = []
        c_prev = widths[0]
        for width, reduction in zip(widths, reductions):
            cells.append(ResNetBasicBlock(c_prev, width) if reduction else InferCell(ops, c_prev, width))
            c_prev = width
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


# -- parameter counts in closed form ------------------------------------------------------------
def _bn(c: int) -> int:
    return 2 * c


def _op_params(name: str, c_in: int, c_out: int) -> int:
    if name == "nor_conv_3x3":
        return 9 * c_in * c_out + _bn(c_out)
    if name == "nor_conv_1x1":
        return c_in * c_out + _bn(c_out)
    if name == "skip_connect":
        return 0 if c_in == c_out else c_in * c_out + _bn(c_out)
    if name == "avg_pool_3x3":
        return 0 if c_in == c_out else c_in * c_out + _bn(c_out)
    return 0  # none


def cell_network_params(ops: Sequence[str], widths: Sequence[int], reductions: Sequence[bool], num_classes: int) -> int:
    """Trainable parameters of :class:`CellNetwork`, without building it."""
    total = 27 * widths[0] + _bn(widths[0])  # stem
    c_prev = widths[0]
    for width, reduction in zip(widths, reductions):
        if reduction:
            total += 9 * c_prev * width + _bn(width) + 9 * width * width + _bn(width) + c_prev * width
        else:
            total += sum(_op_params(op, c_prev if src == 0 else width, width) for op, (src, _) in zip(ops, EDGES))
        c_prev = width
    return total + _bn(c_prev) + c_prev * num_classes + num_classes


# -- FLOPs in closed form -------------------------------------------------------------------------
def _op_macs(name: str, c_in: int, c_out: int) -> int:
    """Multiply-accumulates per output pixel of one cell edge (convolutions only, see flops.py)."""
    if name == "nor_conv_3x3":
        return 9 * c_in * c_out
    if name == "nor_conv_1x1":
        return c_in * c_out
    if name in ("skip_connect", "avg_pool_3x3"):  # a 1x1 conv only when the widths differ
        return 0 if c_in == c_out else c_in * c_out
    return 0  # none


def cell_network_flops(
    ops: Sequence[str],
    widths: Sequence[int],
    reductions: Sequence[bool],
    num_classes: int,
    input_size: int = 32,
) -> int:
    """Multiply-accumulates of one forward pass of :class:`CellNetwork` on one square image,
    without building it; equals :func:`nas.searchspaces.flops.count_flops` on the built network
    (the benchmark's convention: Conv2d and Linear incl. bias, nothing else)."""
    side = input_size
    total = 27 * widths[0] * side * side  # stem 3x3 conv, 3 input channels
    c_prev = widths[0]
    for width, reduction in zip(widths, reductions):
        if reduction:
            # conv_a (stride 2) gives ceil(side/2), the 2x2 shortcut pool floor(side/2): the
            # residual sum only exists for an even side.
            if side % 2:
                raise ValueError(f"input_size {input_size} does not halve evenly at every reduction")
            side //= 2
            total += (9 * c_prev * width + 9 * width * width + c_prev * width) * side * side
        else:
            total += (
                side
                * side
                * sum(_op_macs(op, c_prev if src == 0 else width, width) for op, (src, _) in zip(ops, EDGES))
            )
        c_prev = width
    return total + c_prev * num_classes + num_classes  # linear head with bias
