"""Score the first NB101 subset cells with a max-pool op: the workload behind the CHANGELOG's
max-pool timing. ``--torch-pool`` swaps in ``torch.nn.MaxPool2d``'s own forward (the NCHW kernel),
so the two run side by side under ``farm-bench``:

    farm-bench -n 3 --timeout 900 --vs "python scripts/bench_nb101_pool.py --shared ../shared/data --torch-pool" \\
        -- python scripts/bench_nb101_pool.py --shared ../shared/data
    # --proxies zico,grasp,naswot,synflow for the gradient proxies
    python scripts/bench_nb101_pool.py --shared ../shared/data --proxies zico --cells 1 --profile
    # torch.profiler's table: where a cell's time goes (max_pool2d_with_indices against convolution)

One torch thread, as the scoring workers run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

from nas.data import parse_data_arg
from nas.proxies import get_proxy
from nas.scoring import Scorer
from nas.searchspaces import get_space

CHEAP = "near,meco,meco_opt,synflow,naswot,params,flops"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", required=True, help="the shared data folder")
    parser.add_argument("--proxies", default=CHEAP, help=f"comma-separated (default {CHEAP})")
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--torch-pool", action="store_true", help="torch's NCHW max-pool instead of ours")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's table of the scoring")
    args = parser.parse_args(argv)
    if args.torch_pool:
        from nas.searchspaces import nb101_network

        nb101_network.MaxPool2d.forward = torch.nn.MaxPool2d.forward  # this process only
    torch.set_num_threads(1)
    shared = Path(args.shared)
    space = get_space("nb101")
    with open(shared / "nb101" / "nb101_subset_1000.csv", newline="") as f:
        archs = [space.resolve((json.loads(r["adjacency"]), json.loads(r["ops"]))) for r in csv.DictReader(f)]
    archs = [a for a in archs if "maxpool3x3" in space.format(a)][: args.cells]
    data = parse_data_arg(f"cifar10:{shared / 'cifar10' / 'cifar-10-batches-py'}", batch_size=64, seed=0)
    scorer = Scorer(space, [get_proxy(p) for p in args.proxies.split(",")], data, seed=0)
    if not args.profile:
        for arch in archs:
            scorer.score(arch)
        return 0
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for arch in archs:
            seconds = {label: round(r.seconds, 2) for label, r in scorer.score(arch).items()}
            print(space.format(arch), seconds)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
