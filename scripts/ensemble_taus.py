"""The README's ensemble figures from the stored scores, without writing all of docs/results.md:
Kendall tau (CIFAR-10 test, 200 epochs) of `ensemble` and `az_nas` over all 15,625 and the 9,445
unique NATS-TSS cells, and the blind test on the 500 held-out cells against the former default.

    python scripts/ensemble_taus.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py

It uses the reproduction's own functions (:mod:`nas.reproduce`), the store of ``make reproduce``
and its imported NATS-TSS table (run ``make reproduce`` once first), and 1,000 bootstrap
resamples; a population some component has not fully scored is reported as such.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="cifar10:DIR (the reproduction's inputs)")
    parser.add_argument("--store", help="score store URL (default: the reproduction's)")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    from nas.benchmarks import BenchmarkTable
    from nas.correlation import unique_representatives
    from nas.data import parse_data_arg
    from nas.paths import nas_home
    from nas.reproduce.plan import holdout_cells
    from nas.reproduce.results import correlate_population, stored_scores
    from nas.scoring import select_archs
    from nas.searchspaces import get_space
    from nas.stats import paired_tau_difference
    from nas.store import ScoreStore

    tss = get_space("nats-tss")
    inputs = parse_data_arg(args.data, batch_size=64, seed=0)
    store = ScoreStore(args.store)
    table = BenchmarkTable(Path(nas_home()) / "benchmarks" / "reproduce" / "nats-tss.h5")
    former = "ensemble(near,meco_opt,zico,flops)"
    populations = {
        "all 15,625": (list(tss), ["ensemble", "az_nas"]),
        "9,445 unique": (unique_representatives(tss, "pruned"), ["ensemble", "az_nas"]),
        "500 held-out": (holdout_cells(tss, select_archs(tss, 1000, 0)), ["ensemble", former, "az_nas"]),
    }
    for name, (cells, labels) in populations.items():
        scores = stored_scores("nats-tss", cells, inputs, store)
        complete = {label: scores[label] for label in labels if len(scores.get(label, {})) == len(cells)}
        for label in labels:
            if label not in complete:
                print(f"{name}: {label} not scored on every cell ({len(scores.get(label, {})):,} of {len(cells):,})")
        records = correlate_population("nats-tss", cells, complete, table, ["cifar10"], "test", 200, args.resamples)
        for r in records:
            low, high = r["kendall_tau_ci"]
            print(f"{name}: {r['proxy']} tau {r['kendall_tau']:.3f} [{low:.3f}, {high:.3f}] (n {r['n']:,})")
        if "ensemble" in complete and former in complete:
            keys = [tss.key(a) for a in cells]
            acc = np.array([table.accuracy(k, dataset="cifar10", split="test", epochs=200) for k in keys])
            new, old = (np.array([complete[label][k].score for k in keys]) for label in ("ensemble", former))
            difference, low, high = paired_tau_difference(new, old, acc, args.resamples)
            print(f"{name}: ensemble - {former} = {difference:.3f} [{low:.3f}, {high:.3f}] (paired bootstrap)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
