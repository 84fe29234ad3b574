"""The NAS-Bench-101 network, as the benchmark trained it (TensorFlow ``model_builder.py``).

Layout: a 3x3 conv-BN-ReLU stem with 128 channels, then 3 stacks of 3 modules (the cell); before
stacks 2 and 3 a 2x2 stride-2 max-pool halves the resolution and the module width doubles
(128 -> 256 -> 512); global average pooling; a linear head with bias. Every conv is bias-free and
followed by BN with learned scale and shift (TF's ``batch_normalization`` defaults).

Inside a module (the cell's pruned graph, vertices in topological order):

* the output width is split over the vertices that feed the output (the first ones get one
  extra channel when it does not divide), other vertices take the largest width they feed;
* an edge from the module input goes through its own 1x1 conv-BN-ReLU projection to the
  target's width; an edge between interior vertices truncates the source to the target's
  width (keeps the first channels);
* an interior vertex sums its inputs and applies its op; the module output concatenates the
  vertices that feed it and, when the input feeds the output directly, adds a projection of
  the input.

The functions here take a plain ``(matrix, ops)`` pair (pruned, as ``Cell`` stores it) so that
the space module can depend on this one and not the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nas import draws

INPUT, OUTPUT = "input", "output"
#: Interior ops; the position is the label NAS-Bench-101's module hash uses.
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}

# TF's BN defaults as NAS-Bench-101 set them: decay 0.997 (PyTorch counts the other way), eps 1e-5.
BN_MOMENTUM = 1.0 - 0.997
BN_EPS = 1e-5

Matrix = Sequence[Sequence[int]]


def vertex_channels(c_in: int, c_out: int, matrix: Matrix) -> list[int]:
    """Width of every vertex of a module, by the benchmark's rule (``compute_vertex_channels``)."""
    n = len(matrix)
    out = n - 1
    channels = [0] * n
    channels[0], channels[out] = c_in, c_out
    if n == 2:  # input straight to output: nothing to split
        return channels
    feeding = [v for v in range(1, out) if matrix[v][out]]
    share, extra = divmod(c_out, len(feeding))
    for rank, v in enumerate(feeding):
        channels[v] = share + (1 if rank < extra else 0)
    # Backwards, so a vertex's successors are already sized; vertices feeding the output keep
    # their share (the benchmark does not widen them).
    for v in range(out - 1, 0, -1):
        if not matrix[v][out]:
            channels[v] = max(channels[d] for d in range(v + 1, out) if matrix[v][d])
    return channels


class ConvBnRelu(nn.Module):
    """``conv_bn_relu`` of the benchmark: 'same' padding, stride 1, no conv bias."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=1, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _channels_last_or_vmapped(x: torch.Tensor) -> bool:
    """Whether ``x`` is channels-last already, or inside ``torch.func.vmap`` (which cannot tell
    memory formats), where ATen's own pooling runs."""
    try:
        return x.is_contiguous(memory_format=torch.channels_last)
    except RuntimeError:
        return True


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``, computed in channels-last memory on the CPU when no gradient flows
    through it: the same values bit for bit in a fraction of the time. ATen's NCHW kernel is
    scalar and writes int64 argmax indices even without gradients; on a 64x128x32x32 batch the
    3x3 pool took as long as a 3x3 convolution. With gradients the NCHW kernel stays: the
    channels-last backward is slower than the forward saves (GraSP on an NB101 cell: pooling
    2.1 s against 1.9 + 0.2 s). ``tests/test_nb101_space.py`` checks that the two layouts agree
    on values, argmax among ties and gradients of both orders. (A custom autograd function with
    the channels-last forward and ATen's NCHW backward fed the same indices saved ZiCo 14% on one
    cell, but needs its own rules under ``torch.func.vmap``: not worth its weight yet.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            (torch.is_grad_enabled() and x.requires_grad)
            or x.device.type != "cpu"
            or x.dim() != 4
            or _channels_last_or_vmapped(x)
        ):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def make_op(name: str, channels: int) -> nn.Module:
    """The op of an interior vertex; its input already has ``channels`` channels."""
    if name in _KERNEL:
        return ConvBnRelu(channels, channels, _KERNEL[name])
    if name == "maxpool3x3":
        # PyTorch pads max-pooling with -inf, which is what TF's 'same' padding amounts to.
        return MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NAS-Bench-101 op {name!r}; expected one of {', '.join(OPS)}")


class CellModule(nn.Module):
    """One module (``build_module``): the cell's graph at a given input and output width."""

    def __init__(self, matrix: Matrix, ops: Sequence[str], c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix = tuple(tuple(int(x) for x in row) for row in matrix)
        self.n = n = len(self.matrix)
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        self.vertex_ops = nn.ModuleDict()
        self.input_projections = nn.ModuleDict()
        for t in range(1, n - 1):
            if self.matrix[0][t]:
                self.input_projections[str(t)] = ConvBnRelu(c_in, self.channels[t], 1)
            self.vertex_ops[str(t)] = make_op(ops[t], self.channels[t])
        self.output_projection = ConvBnRelu(c_in, c_out, 1) if self.matrix[0][n - 1] else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.matrix, self.n
        values: list[torch.Tensor] = [x]
        concat: list[torch.Tensor] = []
        for t in range(1, n - 1):
            width = self.channels[t]
            # Same summation order as the benchmark: interior sources first, the projection last.
            inputs = [values[s][:, :width] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                inputs.append(self.input_projections[str(t)](x))
            total = inputs[0]
            for extra in inputs[1:]:
                total = total + extra
            values.append(self.vertex_ops[str(t)](total))
            if m[t][n - 1]:
                concat.append(values[t])
        if not concat:  # the two-vertex cell: the output is the projected input
            return self.output_projection(x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if self.output_projection is not None:
            out = out + self.output_projection(x)
        return out


class NB101Network(nn.Module):
    """Stem, ``num_stacks`` stacks of ``modules_per_stack`` modules, global pooling, linear head."""

    def __init__(
        self,
        matrix: Matrix,
        ops: Sequence[str],
        num_classes: int = 10,
        stem_channels: int = 128,
        num_stacks: int = 3,
        modules_per_stack: int = 3,
        tf_init: bool = True,
    ) -> None:
        super().__init__()
        self.stem = ConvBnRelu(3, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                # ceil_mode: TF's 'same' 2x2/2 pooling keeps the odd last row and column.
                layers.append(MaxPool2d(2, stride=2, ceil_mode=True))
                channels *= 2
            for _ in range(modules_per_stack):
                layers.append(CellModule(matrix, ops, c_in, channels))
                c_in = channels
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)
        if tf_init:
            # One draw from torch's generator seeds the weights' own generator: the network still
            # follows torch.manual_seed, and its weights are the same on every CPU.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            for module in self.modules():
                _tf_init(module, rng)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))


@torch.no_grad()
def _tf_init(module: nn.Module, rng: np.random.Generator) -> None:
    """The benchmark's initialisers: convs ``variance_scaling_initializer()`` (fan-in, truncated
    normal, TF1's 0.8796 correction for the truncation), the head Glorot-uniform with zero bias;
    BN starts at scale 1, shift 0 in both frameworks. Drawn with :mod:`nas.draws`, the same on
    every CPU: torch's Gaussian sampler is not, and the truncation's redraws then took another
    number of draws somewhere in a large network, so every later layer differed (network version 2)."""
    if isinstance(module, nn.Conv2d):
        fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
        module.weight.copy_(draws.truncated_normal(module.weight.shape, rng, std, 2.0, module.weight.dtype))
    elif isinstance(module, nn.Linear):
        fan_in, fan_out = module.in_features, module.out_features
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        module.weight.copy_(draws.uniform(module.weight.shape, rng, -limit, limit, module.weight.dtype))
        nn.init.zeros_(module.bias)


# -- parameter count in closed form ---------------------------------------------------------------
def _conv_bn(c_in: int, c_out: int, kernel: int) -> int:
    return kernel * kernel * c_in * c_out + 2 * c_out  # weights + BN scale and shift


def module_params(matrix: Matrix, ops: Sequence[str], c_in: int, c_out: int) -> int:
    """Trainable parameters of one :class:`CellModule`."""
    n = len(matrix)
    channels = vertex_channels(c_in, c_out, matrix)
    total = 0
    for t in range(1, n - 1):
        if matrix[0][t]:
            total += _conv_bn(c_in, channels[t], 1)
        if ops[t] in _KERNEL:
            total += _conv_bn(channels[t], channels[t], _KERNEL[ops[t]])
    if matrix[0][n - 1]:
        total += _conv_bn(c_in, c_out, 1)
    return total


def network_params(
    matrix: Matrix,
    ops: Sequence[str],
    num_classes: int = 10,
    stem_channels: int = 128,
    num_stacks: int = 3,
    modules_per_stack: int = 3,
) -> int:
    """Trainable parameters of :class:`NB101Network`, without building it."""
    total = _conv_bn(3, stem_channels, 3)
    c_in = channels = stem_channels
    for stack in range(num_stacks):
        if stack > 0:
            channels *= 2
        for _ in range(modules_per_stack):
            total += module_params(matrix, ops, c_in, channels)
            c_in = channels
    return total + c_in * num_classes + num_classes
