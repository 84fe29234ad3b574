"""Which paths a training step runs: strict fairness or uniform single paths.

``fair`` (FairNAS, Chu et al. 2019): each step draws a random permutation of the 5 candidate ops
on every edge; path ``k`` takes the ``k``-th op of each permutation, so the 5 paths train every
candidate of every edge exactly once on the same batch; their gradients are summed into one update.
``uniform`` (SPOS, Guo et al. 2019): one path, each edge's op drawn uniformly, one update per path.

Degenerate cells (no path from the input to the output avoids ``none``: the cell always outputs
zero; 341 of the 15,625) are kept out of training, as one published supernet does; for ``fair``
the permutations are redrawn until none of the step's paths is degenerate, which keeps every op
trained exactly once per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.errors import NasError
from nas.searchspaces.nb201_network import EDGES, OPS

SAMPLINGS = ("fair", "uniform")


def is_degenerate(ops: Sequence[str]) -> bool:
    """True when the cell's output is zero for every input (every route to node 3 meets a ``none``)."""
    live = {0}
    for op, (src, dst) in zip(ops, EDGES):  # edges come in order of their target node
        if op != "none" and src in live:
            live.add(dst)
    return 3 not in live


def step_paths(sampling: str, rng: np.random.Generator, space: str = "nats-tss") -> list[tuple]:
    """The paths one training step runs (5 for ``fair``, 1 for ``uniform``), none degenerate.
    For ``nats-sss`` a path is a width configuration: ``fair`` runs 8, each layer's widths a
    permutation (every width of every layer once per step), ``uniform`` one at random."""
    if space == "nats-sss":
        from nas.searchspaces.nats_sss import NUM_LAYERS, WIDTHS

        if sampling == "fair":
            perms = [rng.permutation(len(WIDTHS)) for _ in range(NUM_LAYERS)]
            return [tuple(WIDTHS[perm[k]] for perm in perms) for k in range(len(WIDTHS))]
        if sampling == "uniform":
            return [tuple(WIDTHS[i] for i in rng.integers(0, len(WIDTHS), NUM_LAYERS))]
    elif sampling == "fair":
        while True:
            perms = [rng.permutation(len(OPS)) for _ in EDGES]
            paths = [tuple(OPS[perm[k]] for perm in perms) for k in range(len(OPS))]
            if not any(is_degenerate(p) for p in paths):
                return paths
    if sampling == "uniform":
        while True:
            path = tuple(OPS[i] for i in rng.integers(0, len(OPS), len(EDGES)))
            if not is_degenerate(path):
                return [path]
    raise NasError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}")


def paths_per_step(sampling: str, space: str = "nats-tss") -> int:
    """Path passes one step costs: the unit in which budgets are compared across samplings."""
    if sampling not in SAMPLINGS:
        raise NasError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}")
    return (8 if space == "nats-sss" else len(OPS)) if sampling == "fair" else 1
