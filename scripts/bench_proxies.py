"""Seconds per architecture of every proxy, against its floor, on the cells of one search space.

For N cells (on NATS-TSS the first N of the reference draw ``numpy.random.default_rng(0).choice(15625,
500, replace=False)``; on another space, ``--space nb101`` say, N draws of ``space.sample`` from
``numpy.random.default_rng(0)``), each network is built after ``torch.manual_seed(0)``; every proxy scores a
fresh copy, and one forward pass and one forward+backward pass of the same batch (64 images) are
timed on the same network in the same process. Prints medians and the ratios proxy / forward and
proxy / forward+backward, as a Markdown table (and JSON with --json). A population proxy
(``az_nas``, ``ensemble``) is timed as its components cost per network, those that
share a pass (the AZ-NAS components) scored together.

With ``--reference`` (the authors' timings on the same cells, ``peer_scores_nb201_500.csv``) it
also gives, per proxy, the median over cells of our seconds / the authors' code's seconds for the
same proxy on the same cell (their timings: this machine kind, 2 torch threads, so compare with
``--threads 2`` on an idle machine; NATS-TSS only).

    python scripts/bench_proxies.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py --cells 100 \
        --threads 2 --reference ../shared/data/reference/peer_scores_nb201_500.csv
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from reference_cells import reference_draw
from tqdm import tqdm

from nas.data import load_batch, parse_data_arg
from nas.devices import resolve_device
from nas.errors import NasError
from nas.proxies import evaluate, get_proxy, list_proxies, parse_proxy_spec, proxy_class
from nas.proxies.base import evaluate_together, shared_groups
from nas.scoring import build_network, proxy_label
from nas.searchspaces import get_space, list_spaces


def timed(fn) -> float:
    """Wall seconds of ``fn()``; on CUDA, after the kernels it queued have finished."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    if sync:
        sync()
    start = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - start


# Our proxy (or floor) -> the authors' timing column in the reference file.
REFERENCE_COLUMNS = {
    "forward": "t_fwd",
    "forward+backward": "t_fwdbwd",
    "flops": "t_flops",
    "near": "t_near_R1",
    "synflow": "t_synflow",
    "jacob_cov": "t_jacob_cov",
    "snip": "t_snip",
    "grad_norm": "t_grad_norm",
    "grasp": "t_grasp",
    "fisher": "t_fisher",
    "naswot": "t_naswot",
    "zico": "t_zico",
    "az_nas": "t_az_nas_call",
}


def population_seconds(proxy, model, batch) -> float:
    """What a population proxy costs per network: its components, those that share a pass
    scored together on one copy of the network (as ``Scorer`` scores them)."""
    return sum(
        result.seconds
        for group in shared_groups(proxy.components)
        for result in evaluate_together(group, copy.deepcopy(model), batch)
    )


def reference_ratios(
    path: str, cells: np.ndarray, times: dict[str, list[float]]
) -> dict[str, tuple[float, float, int]]:
    """Per label: (the authors' median s, median over cells of ours / theirs, cells with a timing of theirs)."""
    with open(path, newline="") as f:
        rows = {int(row["index"]): row for row in csv.DictReader(f)}
    out = {}
    for label, ours in times.items():
        column = REFERENCE_COLUMNS.get(label)
        if column is None:
            continue
        theirs = [float(rows[int(i)].get(column) or "nan") if int(i) in rows else float("nan") for i in cells]
        pairs = [(a, b) for a, b in zip(ours, theirs) if np.isfinite(b) and b > 0]
        if pairs:
            out[label] = (
                statistics.median(b for _, b in pairs),
                statistics.median(a / b for a, b in pairs),
                len(pairs),
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nats-tss", choices=list_spaces())
    parser.add_argument("--data", default="gaussian")
    parser.add_argument(
        "--cells", type=int, default=100, help="cells to time (NATS-TSS: at most the 500 reference cells)"
    )
    parser.add_argument("--proxy", default=None, help="comma-separated (default: all registered)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA when present)")
    parser.add_argument("--reference", help="peer_scores_nb201_500.csv: compare with the authors' timings")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.reference and not os.path.isfile(args.reference):
        parser.error(f"--reference {args.reference}: no such file")
    if args.cells < 1:
        parser.error(f"--cells {args.cells}: time at least one cell")
    if args.space == "nats-tss" and args.cells > 500:
        parser.error(f"--cells {args.cells}: NATS-TSS is timed on the 500 reference cells, so at most 500")
    if args.reference and args.space != "nats-tss":
        parser.error("--reference holds the authors' timings on NATS-TSS cells: use it with --space nats-tss")
    if args.threads:
        torch.set_num_threads(args.threads)
    space = get_space(args.space)
    try:
        device = resolve_device(args.device)
    except NasError as err:
        parser.error(str(err))
    batch = load_batch(parse_data_arg(args.data, batch_size=64, seed=0)).to(device)
    # every zero-cost proxy by default (not the supernet: it scores with trained weights of its own)
    default = [(n, {}) for n in list_proxies() if not n.startswith("_") and proxy_class(n).needs.network]
    specs = parse_proxy_spec(args.proxy) if args.proxy else default
    proxies = [get_proxy(n, **p) for n, p in specs]
    if space.name == "nats-tss":  # the reference cells, which the authors' timings cover
        indices = reference_draw(args.cells)
        archs = [space.from_index(int(i)) for i in indices]
    else:
        rng = np.random.default_rng(0)
        archs = [space.sample(rng) for _ in range(args.cells)]
    times: dict[str, list[float]] = {proxy_label(p): [] for p in proxies}
    fwd, fwdbwd = [], []
    start = time.perf_counter()
    for arch in tqdm(archs, desc="bench", unit="arch"):
        model = build_network(space, arch, 10, seed=0, device=device)
        net = copy.deepcopy(model).train()
        with torch.no_grad():
            fwd.append(timed(lambda: net(batch.inputs)))
        fwdbwd.append(timed(lambda: F.cross_entropy(net(batch.inputs), batch.labels).backward()))
        for proxy in proxies:
            seconds = (
                population_seconds(proxy, model, batch)
                if proxy.population
                else evaluate(proxy, copy.deepcopy(model), batch).seconds
            )
            times[proxy_label(proxy)].append(seconds)
    f, fb = statistics.median(fwd), statistics.median(fwdbwd)
    rows = [
        {
            "proxy": label,
            "seconds": statistics.median(ts),
            "ratio_fwd": statistics.median(t / x for t, x in zip(ts, fwd)),
            "ratio_fwdbwd": statistics.median(t / x for t, x in zip(ts, fwdbwd)),
        }
        for label, ts in times.items()
    ]
    print(
        f"{space.name}, {len(archs)} cells, batch 64 of {batch.spec.source} on {device}, "
        f"torch threads {torch.get_num_threads()}; "
        f"forward {f:.4f} s, forward+backward {fb:.4f} s (medians); total {time.perf_counter() - start:.0f} s\n"
    )
    print("| proxy | s/arch | / forward | / forward+backward |\n|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["seconds"]):
        print(f"| {r['proxy']} | {r['seconds']:.4f} | {r['ratio_fwd']:.2f} | {r['ratio_fwdbwd']:.2f} |")
    versus = {}
    if args.reference:
        versus = reference_ratios(args.reference, indices, {"forward": fwd, "forward+backward": fwdbwd, **times})
        print("\nAgainst the authors' code on the same cells (their timings from the reference file):\n")
        print("| measured | authors' s/arch | ours / authors' (median per cell) | cells |\n|---|---|---|---|")
        for label, (theirs, ratio, n) in versus.items():
            print(f"| {label} | {theirs:.4f} | {ratio:.2f} | {n} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "space": space.name,
                    "cells": len(archs),
                    "threads": torch.get_num_threads(),
                    "device": device,
                    "forward_s": f,
                    "forward_backward_s": fb,
                    "proxies": rows,
                    "versus_authors": {k: {"authors_s": t, "ratio": r, "cells": n} for k, (t, r, n) in versus.items()},
                },
                out,
                indent=1,
            )


if __name__ == "__main__":
    main()
