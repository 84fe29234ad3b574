"""The NATS-TSS weight-sharing supernet: every candidate op on every edge of every cell.

The macro structure is the benchmark network's (:class:`nas.searchspaces.nb201_network.CellNetwork`):
a stem, ``cells_per_stage`` searchable cells per stage at ``channels``, ``2 * channels`` and
``4 * channels``, the two fixed residual reduction blocks, BN-ReLU, pooling and a linear head. Each
edge of each cell holds one module per op (one shared weight set per op and edge); a path is a
cell genotype, the same in every cell as in the benchmark, and ``forward(x, cell)`` runs only
its ops. :meth:`Supernet.path_state_dict` exports a path's weights under the benchmark network's
module names, so a path computes exactly what the standalone network does with those weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

from nas.errors import NasError
from nas.searchspaces.nb201_network import EDGES, OPS, ResNetBasicBlock, make_op

#: The spaces with a supernet: TSS (ops per edge) and SSS (channel slicing, :mod:`.slimmable`).
SPACES = ("nats-tss", "nats-sss")
#: Ops without weights: their fairness is about what they pass on, not what they learn.
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")


@dataclass(frozen=True)
class SupernetConfig:
    """The supernet's shape; every field changes the weights, so all go into the checkpoint.

    ``bn_every_op`` adds a BatchNorm after the parameter-free ops (skip, pooling), a published fix
    for their early advantage (METHODS 4.4); ``bn_affine`` gives every BatchNorm a trainable scale
    and shift (needed by the frozen-weight arm, which scores by the BN scale)."""

    space: str = "nats-tss"
    channels: int = 8  # TSS: the first stage's width; SSS: the width that stands for 64
    cells_per_stage: int = 1
    num_classes: int = 10
    bn_every_op: bool = True
    bn_affine: bool = False

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise NasError(f"no supernet for space {self.space!r}; expected one of {', '.join(SPACES)}")
        if self.space == "nats-sss" and (self.cells_per_stage != 1 or self.channels % 8):
            raise NasError("a nats-sss supernet has one cell per stage and channels a multiple of 8 (64: full width)")
        for name in ("channels", "cells_per_stage", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise NasError(f"supernet {name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def layout(self) -> tuple[list[int], list[bool]]:
        """Output width and reduction flag of each layer, as the benchmark lays them out."""
        n, c = self.cells_per_stage, self.channels
        widths = [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        return widths, reductions


def _without_affine(module: nn.Module) -> nn.Module:
    """The same module with every BatchNorm2d made non-affine (batch statistics only)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.BatchNorm2d(child.num_features, affine=False))
        else:
            _without_affine(child)
    return module


class CandidateOp(nn.Module):
    """One candidate on one edge: the benchmark's op (module ``op``), with a BatchNorm after it
    (module ``bn``) when the op has no weights and ``bn_every_op`` is on."""

    scale: torch.Tensor

    def __init__(self, name: str, channels: int, config: SupernetConfig) -> None:
        super().__init__()
        self.name = name
        self.op = make_op(name, channels, channels)
        extra_bn = config.bn_every_op and name in ("skip_connect", "avg_pool_3x3")
        self.bn = nn.BatchNorm2d(channels) if extra_bn else None
        if not config.bn_affine:
            _without_affine(self)
        # a fixed output scale, set by the initialisation (1: none); see init.initialise
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        y = y if self.bn is None else self.bn(y)
        return y if float(self.scale) == 1.0 else y * self.scale


class SuperCell(nn.Module):
    """A searchable cell: ``edges[e][op]`` is the candidate ``op`` on edge ``e`` (arch-string order)."""

    def __init__(self, channels: int, config: SupernetConfig) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleDict({op: CandidateOp(op, channels, config) for op in OPS}) for _ in EDGES)

    def forward(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        nodes = [x]
        edge = 0
        for target in (1, 2, 3):
            total = None
            for src in range(target):
                op = ops[edge]
                if op != "none":  # adds zero: skip the work (the benchmark's Zero op returns zeros)
                    out = cast(nn.ModuleDict, self.edges[edge])[op](nodes[src])
                    total = out if total is None else total + out
                edge += 1
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class Supernet(nn.Module):
    """All NATS-TSS cells in one network; ``forward(x, ops)`` runs the path of one cell genotype."""

    def __init__(self, config: SupernetConfig) -> None:
        super().__init__()
        self.config = config
        widths, reductions = config.layout()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(widths[0])
        )
        cells: list[nn.Module] = []
        c_prev = widths[0]
        for width, reduction in zip(widths, reductions):
            cells.append(ResNetBasicBlock(c_prev, width) if reduction else SuperCell(width, config))
            c_prev = width
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, config.num_classes)
        if not config.bn_affine:
            _without_affine(self.stem)
            _without_affine(self.lastact)
            for cell in self.cells:
                if isinstance(cell, ResNetBasicBlock):
                    _without_affine(cell)

    def forward(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, ops) if isinstance(cell, SuperCell) else cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))

    # -- what a path is made of --------------------------------------------------------------------
    def super_cells(self) -> list[tuple[int, SuperCell]]:
        """(layer index, cell) of the searchable cells."""
        return [(i, c) for i, c in enumerate(self.cells) if isinstance(c, SuperCell)]

    def candidates(self) -> Iterator[tuple[int, int, str, CandidateOp]]:
        """Every (cell index, edge, op name, module)."""
        for i, cell in self.super_cells():
            for e, edge in enumerate(cell.edges):
                for op in OPS:
                    yield i, e, op, cast(CandidateOp, cast(nn.ModuleDict, edge)[op])

    def path_modules(self, ops: Sequence[str]) -> list[CandidateOp]:
        """The candidate modules a path runs (its ``none`` edges included: they run nothing)."""
        return [
            cast(CandidateOp, cast(nn.ModuleDict, cell.edges[e])[op])
            for _, cell in self.super_cells()
            for e, op in enumerate(ops)
        ]

    def path_state_dict(self, ops: Sequence[str]) -> dict[str, torch.Tensor]:
        """The weights of a path under the benchmark network's names (``cells.i.layers.e...``),
        ready for ``space.build(cell).load_state_dict``. Only a supernet with the benchmark's ops
        (no extra BatchNorm on parameter-free ops, affine BatchNorm) has one."""
        if self.config.bn_every_op or not self.config.bn_affine:
            raise NasError(
                "a path of this supernet is not a benchmark network: it needs bn_every_op=False and bn_affine=True"
            )
        out: dict[str, torch.Tensor] = {}
        cell_ids = {i for i, _ in self.super_cells()}
        state = self.state_dict()
        for key, value in state.items():
            parts = key.split(".")
            if parts[0] == "cells" and int(parts[1]) in cell_ids:
                _, i, _, e, op, *rest = parts  # cells.i.edges.e.op.<inside CandidateOp>
                if op != ops[int(e)] or rest == ["scale"]:
                    continue
                assert rest[0] == "op", key  # no extra BN here (checked above)
                scale = state[".".join(parts[:5] + ["scale"])]
                if rest[-1] in ("weight", "bias") and rest[-2] == "2":  # the op's last BatchNorm
                    value = value * scale  # the output scale folded into its affine map
                out[".".join(["cells", i, "layers", e, *rest[1:]])] = value
            else:
                out[key] = value
        return out


def build_supernet(config: SupernetConfig) -> nn.Module:
    """The supernet of ``config.space``: :class:`Supernet` (TSS) or the slimmable SSS one."""
    if config.space == "nats-sss":
        from nas.strategies.supernet.slimmable import SlimSupernet

        return SlimSupernet(config)
    return Supernet(config)


def path_of(space: str, arch) -> tuple:
    """What a supernet's ``forward`` takes for an architecture: TSS ops or SSS widths."""
    return tuple(arch.widths) if space == "nats-sss" else tuple(arch.ops)
