#!/usr/bin/env python
"""NEAR on NAS-Bench-101: our network against an independent one (``nasbench-pytorch``).

Scores the first ``--cells`` rows of ``nb101/nb101_subset_1000.csv`` with NEAR (defaults) on the
reproduction's inputs (one batch of 64 real CIFAR-10 training images, seed 0), once on our
``NB101Network`` and once on ``nasbench_pytorch.model.Network`` (TF-like init, the closest to the
benchmark's), both built right after ``torch.manual_seed(0)``. Prints both networks' parameter
counts against the recorded ones, the Spearman agreement of the two NEAR columns, and each
column's Kendall tau-b against the recorded validation accuracy (108 epochs, one run).

It asks whether our network explains the gap to the NEAR paper's NB101 figure (tau 0.52, its
protocol unstated): if the independent network ranks no better, the network is not the cause.

    pip install nasbench-pytorch   # not a dependency of zcnas
    python scripts/nb101_near_check.py --cells 200
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
from scipy.stats import kendalltau, spearmanr
from tqdm import tqdm

from nas.data import InputSpec, load_batch
from nas.proxies import evaluate, get_proxy
from nas.searchspaces import get_space

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        from nasbench_pytorch.model import Network
    except ImportError:
        print("this check needs nasbench-pytorch: pip install nasbench-pytorch", file=sys.stderr)
        return 2
    table = args.shared / "nb101" / "nb101_subset_1000.csv"
    cifar = args.shared / "cifar10" / "cifar-10-batches-py"
    for path in (table, cifar):
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    with open(table) as f:
        rows = list(csv.DictReader(f))[: args.cells]
    batch = load_batch(InputSpec(source="cifar10", batch_size=64, seed=0, path=str(cifar)))
    space, near = get_space("nb101"), get_proxy("near")
    ours, theirs, acc, params_ok = [], [], [], [0, 0]
    for row in tqdm(rows, desc="nb101 near", unit="cell"):
        matrix, ops = json.loads(row["adjacency"]), json.loads(row["ops"])
        n = int(row["num_vertices"])
        matrix, ops = [r[:n] for r in matrix[:n]], ops[:n]
        recorded = int(row["params"])
        torch.manual_seed(0)
        mine = space.build(space.resolve((matrix, ops)), 10)
        torch.manual_seed(0)
        other = Network((matrix, ops), num_labels=10, tf_like=True)
        for i, net in enumerate((mine, other)):
            params_ok[i] += sum(p.numel() for p in net.parameters() if p.requires_grad) == recorded
        ours.append(evaluate(near, mine, batch).score)
        theirs.append(evaluate(near, other, batch).score)
        acc.append(float(row["val_acc_108ep"]))
    print(
        f"{len(rows)} NB101 cells (first of nb101_subset_1000.csv), NEAR defaults, CIFAR-10 batch of 64 "
        f"(seed 0), torch threads {torch.get_num_threads()}"
    )
    print(
        f"parameter counts equal to the recorded ones: ours {params_ok[0]}/{len(rows)}, "
        f"nasbench-pytorch {params_ok[1]}/{len(rows)}"
    )
    print(f"Spearman NEAR ours vs nasbench-pytorch network: {spearmanr(ours, theirs)[0]:.4f}")
    print(
        f"Kendall tau vs val_acc_108ep: ours {kendalltau(ours, acc)[0]:.4f}, "
        f"nasbench-pytorch network {kendalltau(theirs, acc)[0]:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
