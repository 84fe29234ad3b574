"""How much each proxy's score moves with the machine: the same cells scored under several CPU
settings on this one machine, each in its own process.

    python scripts/score_variation.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py \\
        --tss-cells 12 --nb101-cells 3 --nb101-table ../shared/data/nb101/nb101_subset_1000.csv \\
        --json variation.json

Math libraries pick code paths per CPU: oneDNN (convolutions) by instruction set, MKL (matrix
products) by instruction set unless ``MKL_CBWR`` pins one, and reductions split differently over
threads. Another machine's scores differ by what those choices change. We imitate other CPUs here
with the libraries' own switches (``ONEDNN_MAX_CPU_ISA``, ``MKL_CBWR``, ``ATEN_CPU_CAPABILITY``)
and thread counts, score the same cells (the reproduction's protocol: one batch of 64 CIFAR-10
images, seed 0) under each, and report per proxy and setting the largest and median relative
change against the baseline, and Kendall's tau between the two rankings of the cells. The
settings that a machine cannot run (an instruction set it lacks) are skipped by the libraries
themselves, so the table says which ones differed here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from nas.testing.variation import SETTINGS, relative_change, score_under


def kendall(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import kendalltau

    if len(a) < 3:
        return None
    return float(kendalltau(a, b).statistic)


def pick_cells(args) -> dict[str, list[str]]:
    """Seeded NATS-TSS cells, and the NB101 subset's smallest cells (fewest parameters) or, with
    ``--nb101-pick random``, seeded random ones (the larger cells move more)."""
    import csv

    import numpy as np

    from nas.searchspaces import get_space

    tss = get_space("nats-tss")
    rng = np.random.default_rng(0)
    cells = {"nats-tss": [tss.format(tss.from_index(int(i))) for i in rng.choice(tss.size, args.tss_cells, False)]}
    if args.nb101_cells and args.nb101_table:
        nb101 = get_space("nb101")
        with open(args.nb101_table, newline="") as f:
            rows = list(csv.DictReader(f))
        if args.nb101_pick == "random":
            rows = [rows[int(i)] for i in rng.choice(len(rows), args.nb101_cells, False)]
        else:
            rows = sorted(rows, key=lambda r: int(r["params"]))[: args.nb101_cells]
        cells["nb101"] = [nb101.format(nb101.resolve((json.loads(r["adjacency"]), json.loads(r["ops"])))) for r in rows]
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="cifar10:DIR (the reproduction's inputs)")
    parser.add_argument(
        "--proxies",
        default="params,flops,synflow,naswot,near,meco,meco_opt,snip,grad_norm,fisher,"
        "jacob_cov,grasp,zico,nlc,az_expressivity,az_progressivity,az_trainability",
    )
    parser.add_argument("--tss-cells", type=int, default=12)
    parser.add_argument("--nb101-cells", type=int, default=3)
    parser.add_argument("--nb101-table", help="nb101_subset_1000.csv, whose cells are scored")
    parser.add_argument(
        "--nb101-pick", choices=("smallest", "random"), default="smallest", help="which NB101 cells (default smallest)"
    )
    parser.add_argument("--settings", help=f"comma-separated, of: {', '.join(SETTINGS)} (default: all)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    names = args.settings.split(",") if args.settings else list(SETTINGS)
    unknown = set(names) - set(SETTINGS)
    if unknown or "baseline" not in names:
        parser.error(f"--settings: unknown {sorted(unknown)} (and baseline is required)")
    job = {"data": args.data, "proxies": args.proxies.split(","), "cells": pick_cells(args)}
    runs: dict[str, dict] = {}
    for name in names:
        start = time.perf_counter()
        try:
            runs[name] = score_under(name, job["cells"], job["proxies"], args.data)
        except RuntimeError as err:
            print(f"{name}: failed: {err}", file=sys.stderr)
            continue
        print(f"{name}: scored in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    base = runs["baseline"]
    rows = []
    for name, run in runs.items():
        if name == "baseline":
            continue
        for space_name, by_label in base.items():
            for label, scores in by_label.items():
                keys = sorted(scores)
                a = [scores[k] for k in keys]
                b = [run[space_name][label][k] for k in keys]
                changes = [relative_change(x, y) for x, y in zip(a, b)]
                rows.append(
                    {
                        "setting": name,
                        "space": space_name,
                        "proxy": label,
                        "cells": len(keys),
                        "max_rel": max(changes),
                        "median_rel": statistics.median(changes),
                        "changed": sum(c > 0 for c in changes),
                        "kendall_tau": kendall(a, b),
                    }
                )
    print("| space | proxy | setting | cells changed | max relative change | median | tau vs baseline |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["space"], r["proxy"], r["setting"])):
        tau = "-" if r["kendall_tau"] is None else f"{r['kendall_tau']:.3f}"
        print(
            f"| {r['space']} | {r['proxy']} | {r['setting']} | {r['changed']}/{r['cells']} | {r['max_rel']:.2e} | "
            f"{r['median_rel']:.2e} | {tau} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cells": job["cells"], "settings": {n: SETTINGS[n] for n in runs}, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
