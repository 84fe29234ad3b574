#!/usr/bin/env python
"""Check our NEAR against the official ``near_score`` package, cell by cell, and time it.

Reads ``reference/peer_scores_nb201_500.csv`` (500 NATS-TSS cells scored by the official NEAR
package with repetitions 1 and 8, batch size 1, real CIFAR-10 images) and scores the first
``--cells`` of them (in draw order) with our ``near`` proxy under the same protocol: each network
built right after ``torch.manual_seed(0)``, real CIFAR-10 images (our seeded batch of 64, of which
NEAR uses the first 10 on this space), training mode.

Prints Spearman rho and Kendall tau of our scores against ``near_R1`` and ``near_R8``; Kendall tau
against ``cifar10_test_200ep`` of ours and of the official columns on the same cells; the median
seconds per cell of ours (wall clock and CPU time) next to the reference's ``t_near_R1`` and
``t_fwd``; and our forward pass of the batch of 64 (no gradients, training mode) measured in the
same process on the same networks, with the median ratio NEAR / forward. ``--faithful`` also runs
the per-sample engine (one batch-1 forward pass per sample, as the official code) and reports the
largest relative difference between the two engines and its time.

Usage: ``python scripts/near_reference.py --cells 100 [--threads 1] [--faithful] [--out cells.csv]``.
Timings share the machine with whatever else runs: the script prints the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch
from reference_cells import add_common_args, load_reference, write_rows
from scipy.stats import kendalltau, spearmanr

from nas.data import InputSpec, load_batch
from nas.proxies import get_proxy
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

TARGET = "cifar10_test_200ep"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, cells=500)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--faithful", action="store_true", help="also run the per-sample engine")
    args = parser.parse_args(argv)
    loaded = load_reference(args)
    if loaded is None:
        return 2
    rows, cifar = loaded

    space = NatsTSS()
    batch = load_batch(InputSpec(source="cifar10", batch_size=64, seed=0, path=str(cifar)))
    near = get_proxy("near", repetitions=args.repetitions)
    faithful = get_proxy("near", repetitions=args.repetitions, fast=False)

    results: list[dict] = []
    started = time.perf_counter()
    for n, row in enumerate(rows, 1):
        cell = space.parse(row["arch_str"])
        out = {"pos": int(row["pos"]), "index": int(row["index"]), TARGET: float(row[TARGET])}
        model = build_network(space, cell, 10, 0).train()
        out["near"], out["t_near"], out["cpu_near"] = timed(lambda: near.score(model, batch))
        model = build_network(space, cell, 10, 0).train()
        with torch.no_grad():
            _, out["t_fwd"], out["cpu_fwd"] = timed(lambda: model(batch.inputs))
        if args.faithful:
            model = build_network(space, cell, 10, 0).train()
            out["near_faithful"], out["t_faithful"], _ = timed(lambda: faithful.score(model, batch))
        results.append(out)
        if n % 25 == 0 or n == len(rows):
            print(f"  {n}/{len(rows)} cells, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    ours = [r["near"] for r in results]
    targets = [r[TARGET] for r in results]
    bad = [r["index"] for r in results if not math.isfinite(r["near"])]
    print(
        f"{len(results)} NATS-TSS cells (first of peer_scores_nb201_500.csv), repetitions "
        f"{args.repetitions}, torch threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; non-finite scores: {bad or 'none'}"
    )
    for column in ("near_R1", "near_R8"):
        reference = [float(row[column]) for row in rows]
        print(
            f"  vs official {column}: Spearman {spearmanr(ours, reference)[0]:.4f}  "
            f"Kendall {kendalltau(ours, reference)[0]:.4f}"
        )
    print(
        f"  Kendall tau vs {TARGET}: ours {kendalltau(ours, targets)[0]:.4f}   official R1 "
        f"{kendalltau([float(r['near_R1']) for r in rows], targets)[0]:.4f}   official R8 "
        f"{kendalltau([float(r['near_R8']) for r in rows], targets)[0]:.4f}"
    )
    if args.faithful:
        worst = max(abs(r["near"] - r["near_faithful"]) / max(abs(r["near_faithful"]), 1e-12) for r in results)
        print(f"  fast vs per-sample engine: largest relative difference {worst:.2e}")

    def med(key, source=results):
        return statistics.median(float(r[key]) for r in source)

    print("median seconds per cell           ours (wall)  ours (CPU)  reference")
    print(
        f"  NEAR R{args.repetitions:<26} {med('t_near'):9.4f}  {med('cpu_near'):9.4f}  "
        f"{med('t_near_R1' if args.repetitions == 1 else 't_near_R8', rows):9.4f}"
    )
    print(f"  forward, batch 64 (t_fwd)        {med('t_fwd'):9.4f}  {med('cpu_fwd'):9.4f}  {med('t_fwd', rows):9.4f}")
    if args.faithful:
        print(f"  NEAR per-sample engine           {med('t_faithful'):9.4f}")
    ratio = statistics.median(r["t_near"] / r["t_fwd"] for r in results)
    cpu_ratio = statistics.median(r["cpu_near"] / r["cpu_fwd"] for r in results)
    ref_ratio = statistics.median(float(r["t_near_R1"]) / float(r["t_fwd"]) for r in rows)
    print(
        f"NEAR / forward of 64 (median of per-cell ratios): ours {ratio:.3f} wall, {cpu_ratio:.3f} CPU; "
        f"official {ref_ratio:.3f}"
    )
    print(
        f"ours scaled to the reference machine (ratio x reference t_fwd): {ratio * med('t_fwd', rows):.4f} s per cell"
    )

    write_rows(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
