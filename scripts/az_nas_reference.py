#!/usr/bin/env python
"""Check our AZ-NAS components and aggregate against the authors' code, cell by cell.

Reads ``reference/peer_scores_nb201_500.csv`` (500 NATS-TSS cells scored by the AZ-NAS
repository under its NB201 protocol: Gaussian batch of 64, Kaiming re-initialisation) and scores
the first ``--cells`` of them (in draw order) with ``az_expressivity``, ``az_progressivity`` and
``az_trainability`` under the same protocol, every network built right after
``torch.manual_seed(0)``. The random draws (inputs, initialisation, Rademacher noise) are ours,
not the reference's, so agreement is a rank correlation, not equality.

Prints, per component: Spearman rho of ours against the reference column (cells finite in both),
which cells are non-finite on each side, and Kendall tau-b against ``cifar10_test_200ep`` of
ours and the reference on the same cells; then the AZ-NAS aggregate (sum of log-ranks of the
three and FLOPs, within these cells) against the reference ``az_nas`` column, and median seconds
per cell next to the reference's ``t_az_nas_call`` (one call computes all three there).

``--second-draw`` also scores each component under another draw of ours (input batch seed 1,
``init_seed=123``, noise ``seed=1``) and prints how well our two draws agree with each other: the
agreement to expect from draw noise alone.

Usage: ``python scripts/az_nas_reference.py --cells 500 [--threads 1] [--second-draw] [--out cells.csv]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
from reference_cells import add_common_args, load_reference, write_rows
from scipy.stats import kendalltau, spearmanr

from nas.data import InputSpec, load_batch
from nas.proxies import evaluate, get_proxy
from nas.proxies.ensemble import log_rank_aggregate
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

TARGET = "cifar10_test_200ep"
COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability")


def finite_pairs(ours: list[float], theirs: list[float]) -> list[int]:
    return [i for i in range(len(ours)) if math.isfinite(ours[i]) and math.isfinite(theirs[i])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, cells=100)
    parser.add_argument("--second-draw", action="store_true", help="also score under another draw of ours")
    args = parser.parse_args(argv)
    loaded = load_reference(args)
    if loaded is None:
        return 2
    rows, _ = loaded
    space = NatsTSS()
    gaussian = load_batch(InputSpec(source="gaussian", batch_size=64, seed=0))
    # The reference's Gaussian batch of 64 (seed 0) itself, fed as given.
    proxies = {name: get_proxy(name, inputs="batch") for name in COMPONENTS}
    flops = get_proxy("flops")
    other_batch = load_batch(InputSpec(source="gaussian", batch_size=64, seed=1))
    others = (
        {name: get_proxy(name, inputs="batch", init_seed=123, seed=1) for name in COMPONENTS}
        if args.second_draw
        else {}
    )

    results: list[dict] = []
    started = time.perf_counter()
    for n, row in enumerate(rows, 1):
        cell = space.parse(row["arch_str"])
        out = {
            "pos": int(row["pos"]),
            "index": int(row["index"]),
            "arch_str": row["arch_str"],
            TARGET: float(row[TARGET]),
        }
        for name, proxy in proxies.items():
            result = evaluate(proxy, build_network(space, cell, 10, 0), gaussian)
            out[name], out[f"t_{name}"] = float(result.score), result.seconds
        for name, proxy in others.items():
            out[f"{name}_draw2"] = float(evaluate(proxy, build_network(space, cell, 10, 0), other_batch).score)
        out["flops"] = float(evaluate(flops, build_network(space, cell, 10, 0), gaussian).score)
        results.append(out)
        if n % 25 == 0 or n == len(rows):
            print(f"  {n}/{len(rows)} cells, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    targets = [r[TARGET] for r in results]
    print(
        f"{len(results)} NATS-TSS cells (first of peer_scores_nb201_500.csv), Gaussian batch of 64, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for name in COMPONENTS:
        ours = [r[name] for r in results]
        theirs = [float(row[name]) for row in rows]
        both = finite_pairs(ours, theirs)
        o, t, y = [ours[i] for i in both], [theirs[i] for i in both], [targets[i] for i in both]
        bad_ours = [results[i]["index"] for i in range(len(ours)) if not math.isfinite(ours[i])]
        bad_theirs = [results[i]["index"] for i in range(len(ours)) if not math.isfinite(theirs[i])]
        print(
            f"{name}: {len(both)} cells finite in both; non-finite: ours {len(bad_ours)} {bad_ours[:8]}, "
            f"reference {len(bad_theirs)} {bad_theirs[:8]}"
        )
        print(f"  Spearman ours vs reference      {spearmanr(o, t)[0]:.4f}")
        print(f"  Kendall tau vs {TARGET}: ours {kendalltau(o, y)[0]:.4f}   reference {kendalltau(t, y)[0]:.4f}")
        if others:
            second = [r[f"{name}_draw2"] for r in results]
            pair = finite_pairs(ours, second)
            print(
                f"  Spearman ours vs our second draw ({len(pair)} cells) "
                f"{spearmanr([ours[i] for i in pair], [second[i] for i in pair])[0]:.4f}"
            )

    # The aggregate within these cells: a non-finite component ranks last, as in the ensemble.
    columns = [[r[name] if math.isfinite(r[name]) else math.nan for r in results] for name in COMPONENTS]
    ours_agg = log_rank_aggregate(columns + [[r["flops"] for r in results]], [True] * 4)
    theirs_agg = np.array([float(row["az_nas"]) for row in rows])
    print(
        f"az_nas (log-rank sum of the three and FLOPs over these {len(results)} cells): "
        f"Spearman vs reference {spearmanr(ours_agg, theirs_agg)[0]:.4f}; Kendall tau vs {TARGET}: "
        f"ours {kendalltau(ours_agg, targets)[0]:.4f}   reference {kendalltau(theirs_agg, targets)[0]:.4f}"
    )
    ours_t = statistics.median(sum(r[f"t_{name}"] for name in COMPONENTS) for r in results)
    theirs_t = statistics.median(float(row["t_az_nas_call"]) for row in rows)
    print(
        f"median seconds per cell: ours (three proxies, each with its own forward pass) {ours_t:.3f}, "
        f"reference (one call) {theirs_t:.3f}"
    )
    write_rows(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
