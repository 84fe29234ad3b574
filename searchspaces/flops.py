"""FLOPs as the NAS benchmarks count them: multiply-accumulates of one forward pass on one image.

The convention is the one of the NATS-Bench / NAS-Bench-201 records (xautodl's
``get_model_infos``, whose ``flop`` field is this count divided by 1e6), and it is checked to equal
the recorded ``flop`` of every TSS and SSS fixture entry and the ``flops`` column (also in
millions) of the 500-cell peer reference:

* ``Conv1d/2d/3d``: ``prod(kernel) * in_channels / groups`` MACs per output element, i.e.
  ``prod(kernel) * in_channels * out_channels / groups`` per output position, plus one per output
  element when the conv has a bias.
* ``Linear``: ``in_features * out_features`` per input row, plus ``out_features`` per row for the
  bias.
* Everything else counts zero: BatchNorm, ReLU, pooling (average, max, adaptive), element-wise
  sums of a cell, the ``none`` op, reshapes. The benchmark's counter hooks the pools too but leaves
  them out of its total; counting them would move the fixture values by 0.1% to 8%.

One count is one multiply-accumulate (the field calls it a FLOP, not 2 FLOPs). Transposed
convolutions, which no benchmark network uses, are counted the same way per *input* element.
A module called twice in one forward pass is counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _conv_macs(conv: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    per_element = math.prod(conv.kernel_size) * conv.in_channels // conv.groups
    macs = per_element * output.numel()
    if conv.bias is not None:
        macs += output.numel()
    return macs


def _transposed_macs(conv: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    # Each input element is scattered through prod(kernel) * out_channels / groups weights.
    per_element = math.prod(conv.kernel_size) * conv.out_channels // conv.groups
    macs = per_element * inputs[0].numel()
    if conv.bias is not None:
        macs += output.numel()
    return macs


def _linear_macs(linear: nn.Linear, inputs: tuple, output: torch.Tensor) -> int:
    rows = output.numel() // linear.out_features  # batch (and any leading dimensions)
    macs = rows * linear.in_features * linear.out_features
    if linear.bias is not None:
        macs += rows * linear.out_features
    return macs


def count_flops(model: nn.Module, input_size: int | Sequence[int], in_channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on one image (see module docstring).

    ``input_size`` is the side of a square image (32 for CIFAR, 16 for ImageNet16-120) or
    ``(height, width)``. The pass runs on zeros in eval mode without gradients, on the model's
    device and dtype; every module's training flag is restored and all hooks removed afterwards, so
    the model is left as it was (BatchNorm running statistics included).
    """
    if isinstance(input_size, int):
        spatial = (input_size, input_size)
    else:
        spatial = tuple(int(s) for s in input_size)
    reference = next(model.parameters(), None)
    if reference is None:
        reference = next(model.buffers(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32

    total = 0

    def counter(macs_of):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            nonlocal total
            total += macs_of(module, inputs, output)

        return hook

    handles = []
    for module in model.modules():
        if isinstance(module, _CONVS):
            handles.append(module.register_forward_hook(counter(_conv_macs)))
        elif isinstance(module, _TRANSPOSED):
            handles.append(module.register_forward_hook(counter(_transposed_macs)))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(counter(_linear_macs)))
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()  # a batch of one would break training-mode BatchNorm and move its statistics
        with torch.no_grad():
            model(torch.zeros((1, in_channels, *spatial), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return total
