"""Compare our gradient-based proxies with the reference scores of foresight, cell by cell.

The reference table (``../shared/data/reference/peer_scores_nb201_500.csv``) holds foresight's
scores of 500 NATS-TSS cells (``numpy.random.default_rng(0).choice(15625, 500, replace=False)``,
each network built right after ``torch.manual_seed(0)``, one real CIFAR-10 batch of 64; grasp and
fisher on the first 100 cells only) and its seconds per cell. We score the same cells under the
same protocol (our CIFAR-10 batch: ``cifar10:DIR``, batch 64, seed ``--seed``) and print per proxy:

- Spearman rho of our scores vs the reference column (cells where both are finite);
- Kendall tau-b vs ``cifar10_test_200ep``, ours and the reference column's, on the same cells;
- median seconds per cell, ours and the reference ``t_<proxy>``, next to one forward and one
  forward+backward pass of the batch (ours measured here on each cell, interleaved with the
  proxies, so the ratio is fair under CPU contention; the reference's ``t_fwd``/``t_fwdbwd``);
- with ``--batch-seeds``: how far batch choice alone moves our scores (Spearman between our
  scores on different batches, and each batch's Spearman vs the reference).

Example::

    python scripts/baseline_reference.py --proxy snip,grad_norm --cells 100
    python scripts/baseline_reference.py --proxy grasp,fisher --cells 100 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from nas.data import load_batch, parse_data_arg
from nas.proxies import evaluate, get_proxy
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_TABLE = SHARED / "reference" / "peer_scores_nb201_500.csv"
DEFAULT_CIFAR = SHARED / "cifar10" / "cifar-10-batches-py"
ALL = ("synflow", "jacob_cov", "snip", "grad_norm", "grasp", "fisher")
ACCURACY = "cifar10_test_200ep"


def number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def timed_passes(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Seconds of one forward pass and of one forward+backward pass (train mode, batch as given)."""
    model.train()
    start = time.perf_counter()
    model(inputs)
    t_fwd = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    F.cross_entropy(model(inputs), labels).backward()
    t_fwdbwd = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return t_fwd, t_fwdbwd


def floor_seconds(name: str, model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Seconds of the bare passes a proxy's definition needs, nothing else (on a copy of the
    model; preparation such as the float64 conversion is outside the clock):

    - synflow: one forward and backward of a single all-ones sample in float64, BatchNorm bypassed;
    - snip, grad_norm, fisher: one forward+backward of the batch (fisher needs the full backward
      through the network: activation gradients at every scored layer);
    - jacob_cov: one forward, one backward to the input;
    - grasp: one forward, one backward keeping the graph, one Hessian-gradient backward
      (foresight additionally runs a separate forward+backward for g).
    """
    from nas.proxies._gradients import scored_layers
    from nas.proxies.synflow import bypassed_batchnorm

    model = copy.deepcopy(model).train()
    if name == "synflow":
        model = model.double()
        ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64)
        with bypassed_batchnorm(model):
            start = time.perf_counter()
            model(ones).sum().backward()
            return time.perf_counter() - start
    if name == "jacob_cov":
        x = inputs.clone().requires_grad_(True)
        start = time.perf_counter()
        torch.autograd.grad(model(x).sum(), x)
        return time.perf_counter() - start
    if name == "grasp":
        weights = [m.weight for m in scored_layers(model)]
        start = time.perf_counter()
        grads = torch.autograd.grad(F.cross_entropy(model(inputs), labels), weights, create_graph=True)
        z = sum((g.detach() * g).sum() for g in grads)
        torch.autograd.grad(z, weights)
        return time.perf_counter() - start
    start = time.perf_counter()
    F.cross_entropy(model(inputs), labels).backward()
    return time.perf_counter() - start


def finite_pairs(*columns):
    keep = np.all([np.isfinite(np.asarray(c, dtype=float)) for c in columns], axis=0)
    return [np.asarray(c, dtype=float)[keep] for c in columns], int(keep.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", default=",".join(ALL), help="comma-separated: " + ", ".join(ALL))
    parser.add_argument("--cells", type=int, default=100, help="first N reference cells (draw order)")
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--data", default=str(DEFAULT_CIFAR), help="official CIFAR-10 python batches")
    parser.add_argument("--seed", type=int, default=0, help="batch seed of our CIFAR-10 batch")
    parser.add_argument("--batch-seeds", default="", help="extra batch seeds for the batch-choice check, e.g. 1,2")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the reference used 2)")
    parser.add_argument("--no-timing", action="store_true", help="skip the forward/backward floor timings")
    parser.add_argument(
        "--floors", action="store_true", help="also time each proxy's bare passes (its floor) on each cell"
    )
    parser.add_argument("--out", default="", help="write per-cell scores and seconds to this CSV")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.proxy.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown proxy {', '.join(unknown)}; expected some of {', '.join(ALL)}")
    with open(args.table, newline="") as f:
        rows = list(csv.DictReader(f))[: args.cells]
    seeds = [args.seed] + [int(s) for s in args.batch_seeds.split(",") if s.strip()]
    batches = {s: load_batch(parse_data_arg(f"cifar10:{args.data}", batch_size=64, seed=s)) for s in seeds}
    proxies = {n: get_proxy(n) for n in names}
    space = NatsTSS()

    # grasp and fisher exist in the reference for the first 100 cells only: score only those
    wanted = {n: [math.isfinite(number(r[n])) or n not in ("grasp", "fisher") for r in rows] for n in names}
    ours = {(n, s): [math.nan] * len(rows) for n in names for s in seeds}
    seconds = {n: [math.nan] * len(rows) for n in names}
    floor = {n: [math.nan] * len(rows) for n in names}
    floors = {"fwd": [math.nan] * len(rows), "fwdbwd": [math.nan] * len(rows)}
    failures: dict[str, list[str]] = {n: [] for n in names}

    # warm-up (first-call allocations and kernel selection are not a cell's cost)
    warm = build_network(space, space.parse(rows[0]["arch_str"]), 10, 0)
    timed_passes(warm, batches[args.seed].inputs, batches[args.seed].labels)

    started = time.perf_counter()
    for i, row in enumerate(rows):
        model = build_network(space, space.parse(row["arch_str"]), 10, 0)
        if not args.no_timing:
            scratch = copy.deepcopy(model)
            floors["fwd"][i], floors["fwdbwd"][i] = timed_passes(
                scratch, batches[args.seed].inputs, batches[args.seed].labels
            )
        for name in names:
            if not wanted[name][i]:
                continue
            for s in seeds:
                if name == "synflow" and s != args.seed:  # data-free: the batch's shape only
                    ours[(name, s)][i] = ours[(name, args.seed)][i]
                    continue
                result = evaluate(proxies[name], copy.deepcopy(model), batches[s])
                ours[(name, s)][i] = result.score if result.ok else math.nan
                if s == args.seed:
                    seconds[name][i] = result.seconds
                    if args.floors:
                        floor[name][i] = floor_seconds(name, model, batches[s].inputs, batches[s].labels)
                    if not result.ok:
                        failures[name].append(f"pos {row['pos']}: {result.reason}")
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(rows)} cells, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    accuracy = [number(r[ACCURACY]) for r in rows]
    print(
        f"reference: {args.table}  cells: first {len(rows)}  batch: cifar10 seed {args.seed}, 64 images"
        f"  threads: {args.threads}"
    )
    for name in names:
        idx = [i for i in range(len(rows)) if wanted[name][i]]
        mine = [ours[(name, args.seed)][i] for i in idx]
        theirs = [number(rows[i][name]) for i in idx]
        acc = [accuracy[i] for i in idx]
        (a, b, c), n = finite_pairs(mine, theirs, acc)
        rho = stats.spearmanr(a, b)[0] if n > 2 else math.nan
        tau_ours = stats.kendalltau(a, c)[0] if n > 2 else math.nan
        tau_ref = stats.kendalltau(b, c)[0] if n > 2 else math.nan
        ours_failed = sum(not math.isfinite(v) for v in mine)
        ref_nan = sum(not math.isfinite(v) for v in theirs)
        print(
            f"\n{name}: {len(idx)} cells scored, {n} with both scores finite "
            f"(ours failed {ours_failed}, reference NaN {ref_nan})"
        )
        both_nan = sum(not math.isfinite(x) and not math.isfinite(y) for x, y in zip(mine, theirs))
        print(f"  failures on the same cells as the reference's NaN: {both_nan}/{max(ours_failed, ref_nan)}")
        print(f"  Spearman vs reference          {rho:.4f}")
        print(f"  Kendall tau-b vs {ACCURACY}: ours {tau_ours:.4f}   reference {tau_ref:.4f}")
        if len(seeds) > 1 and name != "synflow":
            for s in seeds[1:]:
                other = [ours[(name, s)][i] for i in idx]
                (x, y, z), m = finite_pairs(mine, other, theirs)
                (p, q), _ = finite_pairs(other, acc)
                print(
                    f"  batch seed {s}: Spearman vs seed {args.seed} {stats.spearmanr(x, y)[0]:.4f},"
                    f" vs reference {stats.spearmanr(y, z)[0]:.4f}, Kendall vs accuracy"
                    f" {stats.kendalltau(p, q)[0]:.4f}  ({m} cells)"
                )
        t_mine = [seconds[name][i] for i in idx]
        t_ref = [number(rows[i][f"t_{name}"]) for i in idx]
        ref_fwd = [number(rows[i]["t_fwd"]) for i in idx]
        ref_fb = [number(rows[i]["t_fwdbwd"]) for i in idx]

        def med(v):
            return statistics.median([x for x in v if math.isfinite(x)]) if any(map(math.isfinite, v)) else math.nan

        line = (
            f"  s/cell median: ours {med(t_mine):.3f}   reference t_{name} {med(t_ref):.3f}"
            f"   reference t_fwd {med(ref_fwd):.3f} t_fwdbwd {med(ref_fb):.3f}"
        )
        if not args.no_timing:
            fwd = [floors["fwd"][i] for i in idx]
            fb = [floors["fwdbwd"][i] for i in idx]
            line += f"   ours t_fwd {med(fwd):.3f} t_fwdbwd {med(fb):.3f}"
            ratio = [x / y for x, y in zip(t_mine, fb)]
            print(line)
            print(
                f"  ratio to t_fwdbwd (median per cell): ours {med(ratio):.2f}"
                f"   reference {med([x / y for x, y in zip(t_ref, ref_fb)]):.2f}"
            )
        else:
            print(line)
        if args.floors:
            own = [floor[name][i] for i in idx]
            print(
                f"  own floor (bare passes) median {med(own):.3f} s; ours / own floor (median per cell)"
                f" {med([x / y for x, y in zip(t_mine, own)]):.2f}"
            )
        for reason in failures[name][:5]:
            print(f"  failed: {reason}")

    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            head = ["pos", "index", "arch_str", ACCURACY, "t_fwd_ours", "t_fwdbwd_ours"]
            for name in names:
                head += [f"{name}_seed{s}" for s in seeds] + [f"t_{name}_ours", f"floor_{name}", name, f"t_{name}"]
            writer.writerow(head)
            for i, row in enumerate(rows):
                line = [row["pos"], row["index"], row["arch_str"], row[ACCURACY], floors["fwd"][i], floors["fwdbwd"][i]]
                for name in names:
                    line += [ours[(name, s)][i] for s in seeds] + [
                        seconds[name][i],
                        floor[name][i],
                        row[name],
                        row[f"t_{name}"],
                    ]
                writer.writerow(line)
        print(f"\nper-cell values: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
