"""NATS-Bench topology search space (TSS), identical to NAS-Bench-201: 15,625 cells.

A cell is a 4-node DAG; each of its 6 edges carries one of 5 ops. The canonical string is
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1, node 2, node 3; ``~k`` names the source node).

The official index is rebuilt offline: all 5^6 cells in lexicographic op order (the last edge of
the string varying fastest), shuffled by Python's ``random`` seeded with 88, which is how the
benchmark authors generated their ``meta_archs`` list.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from nas.errors import InvalidArchitectureError
from nas.searchspaces.base import SearchSpace
from nas.searchspaces.nb201_network import (
    EDGES,
    OPS,
    CellNetwork,
    cell_network_flops,
    cell_network_params,
)

if TYPE_CHECKING:
    import optuna
    from torch import nn

_SHUFFLE_SEED = 88
#: Optuna parameter names, one per edge: "1<-0" is the edge from node 0 into node 1.
PARAM_NAMES = tuple(f"{dst}<-{src}" for src, dst in EDGES)


@dataclass(frozen=True)
class Cell:
    """A TSS cell: the 6 edge ops in arch-string order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3)."""

    ops: tuple[str, ...]

    def __str__(self) -> str:
        it = iter(zip(self.ops, EDGES))
        nodes = []
        for target in (1, 2, 3):
            nodes.append("|" + "|".join(f"{op}~{src}" for op, (src, _) in itertools.islice(it, target)) + "|")
        return "+".join(nodes)


def parse_cell(text: str) -> Cell:
    """Parse a canonical TSS string, naming what is wrong on failure."""

    def fail(why: str) -> InvalidArchitectureError:
        return InvalidArchitectureError(
            f"nats-tss: cannot parse {text!r}: {why} "
            "(expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in " + ", ".join(OPS) + ")"
        )

    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise fail(f"{len(nodes)} nodes instead of 3")
    ops: list[str] = []
    for target, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise fail(f"node {target} is not enclosed in '|'")
        edges = node[1:-1].split("|")
        if len(edges) != target:
            raise fail(f"node {target} has {len(edges)} inputs instead of {target}")
        for src, edge in enumerate(edges):
            op, sep, source = edge.partition("~")
            if not sep or source != str(src):
                raise fail(f"edge {edge!r} of node {target} should read 'op~{src}'")
            if op not in OPS:
                raise fail(f"unknown op {op!r}")
            ops.append(op)
    return Cell(tuple(ops))


def _official_order() -> list[Cell]:
    cells = [Cell(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]
    random.Random(_SHUFFLE_SEED).shuffle(cells)
    return cells


def _reachable_edges(cell: Cell) -> list[tuple[int, int, str]]:
    """Edges that carry signal from the input to the output (``none`` edges removed)."""
    live = [(src, dst, op) for op, (src, dst) in zip(cell.ops, EDGES) if op != "none"]
    from_input = {0}
    for src, dst, _ in live:  # EDGES are in topological order of the target
        if src in from_input:
            from_input.add(dst)
    to_output = {3}
    for src, dst, _ in sorted(live, key=lambda e: -e[0]):
        if dst in to_output:
            to_output.add(src)
    return [(s, d, op) for s, d, op in live if s in from_input and d in to_output]


def _isomorphism_key(cell: Cell) -> str:
    """Symbolic form of the cell's output: ``skip_connect`` passes its input through, sums are
    commutative, and a term fed only by zeros is zero. This is the NATS-Bench reading
    (``to_unique_str(consider_zero=True)``) that yields 6,466 classes. Like the original, it does
    not reduce a node that sums several zeros ("#+#") to zero, so it is not strictly coarser than
    the "pruned" reading: we keep the quirk because the published count depends on it."""
    nodes = ["0"]
    for target in (1, 2, 3):
        terms = []
        for op, (src, dst) in zip(cell.ops, EDGES):
            if dst != target:
                continue
            value = nodes[src]
            if op == "none" or value == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(value)
            else:
                terms.append(f"({value})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


class NatsTSS(SearchSpace[Cell]):
    """NATS-Bench TSS / NAS-Bench-201 (C=16, N=5 cells per stage)."""

    name = "nats-tss"
    description = "NATS-Bench topology space = NAS-Bench-201: 15,625 cells, 6 edges x 5 ops"

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    @property
    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    @cached_property
    def _order(self) -> list[Cell]:
        return _official_order()

    @cached_property
    def _index(self) -> dict[Cell, int]:
        return {cell: i for i, cell in enumerate(self._order)}

    def from_index(self, index: int) -> Cell:
        return self._order[self._check_index(index)]

    def index_of(self, arch: Cell) -> int:
        try:
            return self._index[arch]
        except KeyError:
            raise InvalidArchitectureError(f"nats-tss: {arch!r} is not a TSS cell") from None

    def __iter__(self):
        return iter(self._order)

    def parse(self, text: str) -> Cell:
        return parse_cell(text)

    def validate(self, arch: Cell) -> Cell:
        if not isinstance(arch, Cell):
            raise InvalidArchitectureError(f"nats-tss: expected a cell string or index, got {arch!r}")
        return parse_cell(str(arch))

    # -- equivalence classes --------------------------------------------------------------------
    def unique_key(self, arch: Cell, reading: Literal["pruned", "isomorphic"] = "isomorphic") -> str:
        """A key that is equal for cells that compute the same function.

        ``"pruned"``: drop ``none`` edges and every edge that is on no input-to-output path;
        cells that are then identical share a key (9,445 classes, the count quoted by VKDNW and
        others). ``"isomorphic"``: additionally treat ``skip_connect`` as the identity and sums
        as commutative (6,466 classes, NAS-Bench-201's own count).
        """
        if reading == "pruned":
            edges = _reachable_edges(arch)
            return ",".join(f"{s}{d}:{op}" for s, d, op in edges) if edges else "zero"
        if reading == "isomorphic":
            return _isomorphism_key(arch)
        raise ValueError(f"unknown reading {reading!r}; expected 'pruned' or 'isomorphic'")

    # -- neighbourhood ----------------------------------------------------------------------------
    def neighbours(self, arch: Cell) -> list[Cell]:
        out = []
        for edge, current in enumerate(arch.ops):
            for op in OPS:
                if op != current:
                    out.append(Cell(arch.ops[:edge] + (op,) + arch.ops[edge + 1 :]))
        return out

    # -- Optuna encoding: one categorical per edge ------------------------------------------------
    def suggest(self, trial: optuna.trial.BaseTrial) -> Cell:
        return Cell(tuple(trial.suggest_categorical(name, OPS) for name in PARAM_NAMES))

    def decode(self, params: dict[str, Any]) -> Cell:
        try:
            return self.validate(Cell(tuple(params[name] for name in PARAM_NAMES)))
        except KeyError as missing:
            raise InvalidArchitectureError(f"nats-tss: trial params lack edge {missing}") from None

    def encode(self, arch: Cell) -> dict[str, Any]:
        return dict(zip(PARAM_NAMES, arch.ops))

    # -- network ------------------------------------------------------------------------------------
    def _layout(self) -> tuple[list[int], list[bool]]:
        n, c = self.cells_per_stage, self.channels
        widths = [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        return widths, reductions

    def build(self, arch: Cell, num_classes: int = 10) -> nn.Module:
        widths, reductions = self._layout()
        return CellNetwork(arch.ops, widths, reductions, num_classes)

    def num_params(self, arch: Cell, num_classes: int = 10) -> int:
        widths, reductions = self._layout()
        return cell_network_params(arch.ops, widths, reductions, num_classes)

    def flops(self, arch: Cell, num_classes: int = 10, input_size: int = 32) -> int:
        """Multiply-accumulates in closed form (equal to :func:`.flops.count_flops` on the built
        network; 32 for CIFAR, 16 for ImageNet16-120)."""
        widths, reductions = self._layout()
        return cell_network_flops(arch.ops, widths, reductions, num_classes, input_size)
