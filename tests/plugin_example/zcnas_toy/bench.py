"""`toy-bench`: a made-up accuracy table for `toy-mlp` (a test fixture, not a benchmark): the
accuracy grows with the log of the parameter count, plus a fixed per-network wobble."""

from __future__ import annotations

import math

import numpy as np

from nas.benchmarks import TableData, register_importer


@register_importer("toy", spaces=("toy-mlp",), embedded="toy-bench")
def read_toy_bench(source, *, space, epochs, progress):
    from nas.searchspaces import get_space

    toy = get_space("toy-mlp")
    archs = list(toy)
    wobble = np.random.default_rng(0).normal(0, 0.5, len(archs))
    accuracy = np.array([10 * math.log(toy.num_params(a)) for a in archs]) + wobble
    data = TableData(
        "toy-mlp",
        [toy.key(a) for a in archs],
        np.arange(len(archs)),
        provenance={"source": "toy-bench", "importer": "toy"},
    )
    data.add_metric(("cifar10", "valid", 10), accuracy, "made up for the plugin test")
    return data
