"""The NATS-SSS supernet: one network at the widest widths; a configuration takes the first channels.

Every layer holds the widest weights (``channels``, 64 at the benchmark's size); a path is a width
configuration ``(w0, ..., w4)`` and each of its convolutions, BatchNorms and the classifier use the
first ``w * channels / 64`` channels (so a CPU-sized supernet with ``channels=16`` runs the
configurations at a quarter of their width). The cell is the space's fixed cell. Module names are
the benchmark network's, so :meth:`SlimSupernet.path_state_dict` slices the weights of a path into
``space.build(widths)`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError
from nas.searchspaces.nats_sss import CELL_OPS, REDUCTIONS, WIDTHS


class SlimConv2d(nn.Conv2d):
    """A convolution at its widest; ``forward(x, out)`` uses the first ``x.shape[1]`` inputs and
    ``out`` outputs."""

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:  # type: ignore[override]
        return F.conv2d(x, self.weight[:out, : x.shape[1]], None, self.stride, self.padding)


class SlimBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``x.shape[1]`` channels, with the same running-statistics rules
    as ``nn.BatchNorm2d`` (so the recalibration policy works on a path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        tracked = self.num_batches_tracked
        if self.training and self.track_running_stats and tracked is not None:
            tracked.add_(1)
            factor = 1.0 / float(tracked) if self.momentum is None else float(self.momentum)
        stats = self.track_running_stats and self.running_mean is not None
        return F.batch_norm(
            x,
            self.running_mean[:c] if stats else None,  # type: ignore[index]
            self.running_var[:c] if stats else None,  # type: ignore[index]
            self.weight[:c] if self.affine else None,
            self.bias[:c] if self.affine else None,
            self.training or not stats,
            factor,
            self.eps,
        )


def _bn(c: int, affine: bool) -> SlimBatchNorm2d:
    return SlimBatchNorm2d(c, affine=affine)


class SlimReLUConvBN(nn.Module):
    def __init__(self, c: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__()
        self.op = nn.ModuleList([nn.ReLU(), SlimConv2d(c, c, kernel, stride, padding, bias=False), _bn(c, affine)])

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        relu, conv, bn = self.op
        return bn(conv(relu(x), out))


class SlimFactorizedReduce(nn.Module):
    """``skip_connect`` between widths that differ (a 1x1 conv and a BatchNorm); identity otherwise."""

    def __init__(self, c: int, affine: bool) -> None:
        super().__init__()
        self.conv = SlimConv2d(c, c, 1, 1, 0, bias=False)
        self.bn = _bn(c, affine)

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        return x if x.shape[1] == out else self.bn(self.conv(x, out))


class SlimCell(nn.Module):
    """The space's fixed cell at any input and output width."""

    def __init__(self, c: int, affine: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for op in CELL_OPS:
            if op == "nor_conv_3x3":
                layers.append(SlimReLUConvBN(c, 3, 1, 1, affine))
            elif op == "nor_conv_1x1":
                layers.append(SlimReLUConvBN(c, 1, 1, 0, affine))
            elif op == "skip_connect":
                layers.append(SlimFactorizedReduce(c, affine))
            else:  # the SSS cell has no pooling or none edges
                raise NasError(f"the slimmable cell does not support op {op!r}")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for target in (1, 2, 3):
            total = None
            for src in range(target):
                y = self.layers[edge](nodes[src], out)
                total = y if total is None else total + y
                edge += 1
            assert total is not None  # every node has incoming edges
            nodes.append(total)
        return nodes[-1]


class SlimResBlock(nn.Module):
    """The residual reduction block at any widths (stride 2)."""

    def __init__(self, c: int, affine: bool) -> None:
        super().__init__()
        self.conv_a = SlimReLUConvBN(c, 3, 2, 1, affine)
        self.conv_b = SlimReLUConvBN(c, 3, 1, 1, affine)
        self.downsample = nn.ModuleList([nn.AvgPool2d(2, 2, 0), SlimConv2d(c, c, 1, 1, 0, bias=False)])

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        pool, conv = self.downsample
        return conv(pool(x), out) + self.conv_b(self.conv_a(x, out), out)


class SlimSupernet(nn.Module):
    """All NATS-SSS width configurations in one network; ``forward(x, widths)`` runs one."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        c, affine = config.channels, config.bn_affine
        self.stem = nn.ModuleList([SlimConv2d(3, c, 3, 1, 1, bias=False), _bn(c, affine)])
        self.cells = nn.ModuleList(SlimResBlock(c, affine) if r else SlimCell(c, affine) for r in REDUCTIONS)
        self.lastact = nn.ModuleList([_bn(c, affine), nn.ReLU()])
        self.classifier = nn.Linear(c, config.num_classes)

    def channels_of(self, widths: Sequence[int]) -> list[int]:
        """The channels a width configuration uses in this supernet."""
        return [int(w) * self.config.channels // max(WIDTHS) for w in widths]

    def forward(self, x: torch.Tensor, widths: Sequence[int]) -> torch.Tensor:
        channels = self.channels_of(widths)
        conv, bn = self.stem
        x = bn(conv(x, channels[0]))
        for cell, out in zip(self.cells, channels):
            x = cell(x, out)
        bn, relu = self.lastact
        x = F.adaptive_avg_pool2d(relu(bn(x)), 1).flatten(1)
        return F.linear(x, self.classifier.weight[:, : x.shape[1]], self.classifier.bias)

    def path_state_dict(self, widths: Sequence[int], shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
        """The weights of a path sliced to ``shapes`` (the standalone network's state shapes)."""
        if not self.config.bn_affine:
            raise NasError("a path of this supernet is not a benchmark network: it needs bn_affine=True")
        state = self.state_dict()
        out = {}
        for key, shape in shapes.items():
            tensor = state[key]
            out[key] = tensor[tuple(slice(0, s) for s in shape)] if len(shape) else tensor
        return out
