"""Where NEAR's time goes, per NATS-TSS cell: network build, the bare batched forward pass,
collecting the activation matrices (that forward pass with hooks), and the effective ranks.

For N cells (the first N of the reference draw ``numpy.random.default_rng(0).choice(15625, 500,
replace=False)``), each network is built after ``torch.manual_seed(0)`` and scored with NEAR's
defaults on a batch of real CIFAR-10 images (seed 0). Prints the median seconds of each stage.

* ``build``: ``build_network`` (counts in a whole-space run, not in ``make bench``);
* ``forward``: one ``no_grad`` forward pass of the samples the fast engine feeds (10 for a
  10-class head), channels-last, BatchNorm per sample, no hooks: the protocol's floor;
* ``collect``: :func:`activation_matrices` (that forward pass, hooks and block cutting);
* ``ranks``: :func:`matrix_ranks` of those matrices (grouping, float64 Gram, batched eigvalsh);
* ``near``: the whole ``near_score``, as ``evaluate`` times it.

    python scripts/profile_near.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py --cells 50 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from reference_cells import reference_draw

from nas.data import load_batch, parse_data_arg
from nas.proxies import evaluate, get_proxy
from nas.proxies.near import _BatchNormMode, _survey, activation_matrices, matrix_ranks
from nas.scoring import build_network
from nas.searchspaces import get_space


def seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bare_forward(model: torch.nn.Module, inputs: torch.Tensor) -> None:
    """The fast engine's first pass without hooks."""
    _, norms, widest = _survey(model)
    x = inputs[:widest].contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), _BatchNormMode(norms, "sample", per_sample=len(x) > 1):
        model(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="gaussian")
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a scoring worker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("nats-tss")
    batch = load_batch(parse_data_arg(args.data, batch_size=64, seed=0))
    near = get_proxy("near")
    cells = reference_draw(args.cells)
    stages: dict[str, list[float]] = {k: [] for k in ("build", "forward", "collect", "ranks", "near")}
    for index in cells:
        t, model = seconds(lambda: build_network(space, space.from_index(int(index)), 10, seed=0))
        stages["build"].append(t)
        model.train()
        stages["forward"].append(seconds(lambda: bare_forward(model, batch.inputs))[0])
        t, matrices = seconds(lambda: activation_matrices(model, batch.inputs, np.random.RandomState(0)))
        stages["collect"].append(t)
        stages["ranks"].append(seconds(lambda: matrix_ranks(matrices))[0])
        stages["near"].append(evaluate(near, model, batch).seconds)
    print(
        f"NEAR on {len(cells)} NATS-TSS cells, torch threads {torch.get_num_threads()}, "
        f"inputs {batch.spec.source}; median seconds per cell:\n"
    )
    print("| stage | s/cell |\n|---|---|")
    for name, ts in stages.items():
        print(f"| {name} | {statistics.median(ts):.4f} |")
    hooks = statistics.median(c - f for c, f in zip(stages["collect"], stages["forward"]))
    print(f"\nhooks and cutting (collect - forward, median per cell): {hooks:.4f} s")


if __name__ == "__main__":
    main()
