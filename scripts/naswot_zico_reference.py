#!/usr/bin/env python
"""Check our NASWOT and ZiCo against the authors' code, cell by cell, and time them.

Reads ``reference/peer_scores_nb201_500.csv`` (500 NATS-TSS cells, scored by the AZ-NAS
repository's ``naswot`` and ``zico`` under its NB201 protocol) and scores the first ``--cells``
of them (in draw order) with our proxies under the same protocol: every network built right
after ``torch.manual_seed(0)``; NASWOT with Kaiming re-initialisation on a Gaussian batch of 64;
ZiCo with the network's own init on two real CIFAR-10 batches of 64 (one batch of 128, split).

Prints, per proxy: Spearman rho of our scores against the reference column (cells where both
are finite) and which cells fail; Kendall tau-b against ``cifar10_test_200ep`` of ours and of
the reference column on the same cells; median seconds per cell next to the reference's
``t_naswot`` / ``t_zico``; and our floors measured in the same process on the same networks
(NASWOT: one forward pass of the batch of 64 without gradients; ZiCo: forward + backward of
the loss on each of its two batches of 64), with the ratios proxy / floor. ``--variants`` adds
NASWOT with the default init and ZiCo on a batch of 64 (two sub-batches of 32).

Usage: ``python scripts/naswot_zico_reference.py --cells 100 [--threads 1] [--out cells.csv]``.
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
import torch.nn.functional as F
from reference_cells import add_common_args, load_reference, write_rows
from scipy.stats import kendalltau, spearmanr

from nas.data import InputSpec, load_batch
from nas.proxies import evaluate, get_proxy
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

TARGET = "cifar10_test_200ep"


def floor_forward(model, inputs) -> float:
    model.train()
    start = time.perf_counter()
    with torch.no_grad():
        model(inputs)
    return time.perf_counter() - start


def floor_forward_backward(model, batch) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    F.cross_entropy(model(batch.inputs), batch.labels).backward()
    return time.perf_counter() - start


def finite(*values) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


def agreement(name, ours, reference, targets) -> list[str]:
    both = [i for i in range(len(ours)) if finite(ours[i], reference[i])]
    ours_failed = [i for i in range(len(ours)) if not finite(ours[i])]
    ref_failed = [i for i in range(len(ours)) if not finite(reference[i]) or reference[i] == 0.0]
    o = [ours[i] for i in both]
    r = [reference[i] for i in both]
    t = [targets[i] for i in both]
    lines = [
        f"{name}: {len(both)} cells finite in both; ours failed on {len(ours_failed)}, "
        f"reference -inf/0 on {len(ref_failed)}, same cells: {set(ours_failed) == set(ref_failed)}",
        f"  Spearman ours vs reference      {spearmanr(o, r)[0]:.4f}",
        f"  Kendall tau vs {TARGET}: ours {kendalltau(o, t)[0]:.4f}   reference {kendalltau(r, t)[0]:.4f}",
    ]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, cells=100)
    parser.add_argument("--variants", action="store_true", help="also NASWOT(init=default), ZiCo on 2 x 32")
    args = parser.parse_args(argv)
    loaded = load_reference(args)
    if loaded is None:
        return 2
    rows, cifar = loaded

    space = NatsTSS()
    gaussian = load_batch(InputSpec(source="gaussian", batch_size=64, seed=0))
    real = load_batch(InputSpec(source="cifar10", batch_size=128, seed=0, path=str(cifar)))
    real_halves = real.split(2)
    real64 = real_halves[0]
    proxies = {"naswot": (get_proxy("naswot"), gaussian), "zico": (get_proxy("zico"), real)}
    if args.variants:
        proxies["naswot_default_init"] = (get_proxy("naswot", init="default"), gaussian)
        proxies["zico_2x32"] = (get_proxy("zico"), real64)

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
        for name, (proxy, batch) in proxies.items():
            result = evaluate(proxy, build_network(space, cell, 10, 0), batch)
            out[name], out[f"t_{name}"] = float(result.score), result.seconds
        model = build_network(space, cell, 10, 0)
        out["t_fwd"] = floor_forward(model, gaussian.inputs)
        out["t_fwdbwd"] = sum(floor_forward_backward(model, half) for half in real_halves) / 2
        results.append(out)
        if n % 10 == 0 or n == len(rows):
            print(f"  {n}/{len(rows)} cells, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    targets = [r[TARGET] for r in results]
    print(
        f"{len(results)} NATS-TSS cells (first of peer_scores_nb201_500.csv), torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for name in ("naswot", "zico"):
        reference = [float(row[name]) for row in rows]
        for line in agreement(name, [r[name] for r in results], reference, targets):
            print(line)
        for variant in (f"{name}_default_init", f"{name}_2x32"):
            if variant in proxies:
                ours = [r[variant] for r in results]
                both = [i for i in range(len(ours)) if finite(ours[i], reference[i])]
                print(
                    f"  variant {variant}: Spearman vs reference "
                    f"{spearmanr([ours[i] for i in both], [reference[i] for i in both])[0]:.4f}, "
                    f"Kendall vs {TARGET} {kendalltau([ours[i] for i in both], [targets[i] for i in both])[0]:.4f}"
                )

    def med(key, source=results):
        return statistics.median(float(r[key]) for r in source)

    print("median seconds per cell        ours     reference")
    for ours_key, ref_key in (
        ("t_naswot", "t_naswot"),
        ("t_zico", "t_zico"),
        ("t_fwd", "t_fwd"),
        ("t_fwdbwd", "t_fwdbwd"),
    ):
        print(f"  {ours_key:<26} {med(ours_key):8.3f}  {med(ref_key, rows):8.3f}")
    naswot_ratio = statistics.median(r["t_naswot"] / r["t_fwd"] for r in results)
    zico_ratio = statistics.median(r["t_zico"] / (2 * r["t_fwdbwd"]) for r in results)
    ref_naswot = statistics.median(float(r["t_naswot"]) / float(r["t_fwd"]) for r in rows)
    ref_zico = statistics.median(float(r["t_zico"]) / (2 * float(r["t_fwdbwd"])) for r in rows)
    print("proxy / floor (median of per-cell ratios)   ours   reference")
    print(f"  naswot / one forward                     {naswot_ratio:5.2f}   {ref_naswot:5.2f}")
    print(f"  zico / (2 x forward+backward)            {zico_ratio:5.2f}   {ref_zico:5.2f}")

    write_rows(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
