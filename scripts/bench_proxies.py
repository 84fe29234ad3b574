"""Seconds per architecture of every proxy, against its floor, on NATS-TSS cells.

For N cells (the first N of the reference draw ``numpy.random.default_rng(0).choice(15625, 500,
replace=False)``), each network is built after ``torch.manual_seed(0)``; every proxy scores a
fresh copy, and one forward pass and one forward+backward pass of the same batch (64 images) are
timed on the same network in the same process. Prints medians and the ratios proxy / forward and
proxy / forward+backward, as a Markdown table (and JSON with --json).

    python scripts/bench_proxies.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py --cells 100
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from nas.data import load_batch, parse_data_arg
from nas.proxies import evaluate, get_proxy, list_proxies, parse_proxy_spec, proxy_class
from nas.scoring import build_network, proxy_label
from nas.searchspaces import get_space


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="gaussian")
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--proxy", default=None, help="comma-separated (default: all registered)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space = get_space("nats-tss")
    batch = load_batch(parse_data_arg(args.data, batch_size=64, seed=0))
    specs = parse_proxy_spec(args.proxy) if args.proxy else [
        (n, {}) for n in list_proxies() if not n.startswith("_") and not proxy_class(n).population]
    proxies = [get_proxy(n, **p) for n, p in specs]
    cells = np.random.default_rng(0).choice(space.size, 500, replace=False)[: args.cells]
    times: dict[str, list[float]] = {proxy_label(p): [] for p in proxies}
    fwd, fwdbwd = [], []
    start = time.perf_counter()
    for index in cells:
        model = build_network(space, space.from_index(int(index)), 10, seed=0)
        net = copy.deepcopy(model).train()
        with torch.no_grad():
            fwd.append(timed(lambda: net(batch.inputs)))
        fwdbwd.append(timed(lambda: F.cross_entropy(net(batch.inputs), batch.labels).backward()))
        for proxy in proxies:
            times[proxy_label(proxy)].append(evaluate(proxy, copy.deepcopy(model), batch).seconds)
    f, fb = statistics.median(fwd), statistics.median(fwdbwd)
    rows = [{"proxy": label, "seconds": statistics.median(ts),
             "ratio_fwd": statistics.median(t / x for t, x in zip(ts, fwd)),
             "ratio_fwdbwd": statistics.median(t / x for t, x in zip(ts, fwdbwd))} for label, ts in times.items()]
    print(f"NATS-TSS, {len(cells)} cells, batch 64 of {batch.spec.source}, torch threads {torch.get_num_threads()}; "
          f"forward {f:.4f} s, forward+backward {fb:.4f} s (medians); total {time.perf_counter() - start:.0f} s\n")
    print("| proxy | s/arch | / forward | / forward+backward |\n|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["seconds"]):
        print(f"| {r['proxy']} | {r['seconds']:.4f} | {r['ratio_fwd']:.2f} | {r['ratio_fwdbwd']:.2f} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cells": len(cells), "forward_s": f, "forward_backward_s": fb, "proxies": rows}, out, indent=1)


if __name__ == "__main__":
    main()
