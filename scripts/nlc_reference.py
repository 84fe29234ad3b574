"""Score the NATS-TSS reference cells with a proxy (NLC by default) and report rank correlation
with the benchmark's CIFAR-10 test accuracy, and the cost per cell.

The cells are those of ``reference/peer_scores_nb201_500.csv`` (drawn by
``numpy.random.default_rng(0).choice(15625, 500, replace=False)``, taken in draw order ``pos``),
each network built right after ``torch.manual_seed(0)`` (:func:`nas.scoring.build_network`), on
one batch of 64 real CIFAR-10 images (the project's ``cifar10:DIR`` input spec, seed 0).

    python scripts/nlc_reference.py --cells 100
    python scripts/nlc_reference.py --cells 100 --proxy "nlc(bn=train)"
    python scripts/nlc_reference.py --cells 100 --proxy "meco,meco_opt" --out /tmp/meco.csv
    python scripts/nlc_reference.py --cells 200 --threads 1 --proxy "nlc,nlc(bn=train),meco,meco_opt"

Printed per proxy: Kendall tau-b (scipy) against ``cifar10_test_200ep`` of the score, of its
negative, and (for NLC) of minus the distance of log NLC to Philipp's sweet spot [1, 3], each read
as higher-is-better with failed cells (e.g. constant logits) ranked last; tau on the first and the
second half of the cells (a direction chosen on one half can be checked on the other); the same
tau of ``params`` and a few peer proxies on the same cells, for context; failed cells (they
rank last in the proxy's declared direction); median seconds per cell; and the median ratio
to a forward+backward pass of batch 64, both to the reference authors' ``t_fwdbwd`` (same
machine kind, other load) and to our own forward+backward measured beside each score (same
load: the contention-robust figure).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from reference_cells import reference_draw
from scipy.stats import kendalltau

from nas.data import InputSpec, load_batch
from nas.proxies import evaluate, get_proxy, parse_proxy_spec
from nas.scoring import build_network, proxy_label
from nas.searchspaces import get_space

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
TARGET = "cifar10_test_200ep"
PEERS = ("params", "synflow", "jacob_cov", "naswot", "near_R1", "zico", "az_nas")


def tau(scores, target) -> float:
    value = kendalltau(scores, target).statistic
    return float(value)


def sweet_spot_distance(nlc: float, low: float = 1.0, high: float = 3.0) -> float:
    """Distance of log NLC from [log low, log high] (0 inside the sweet spot)."""
    if not nlc > 0:
        return math.inf
    value = math.log(nlc)
    return max(math.log(low) - value, 0.0, value - math.log(high))


def time_fwd_bwd(net: torch.nn.Module, batch) -> tuple[float, float]:
    """Seconds of one forward (no graph) and one forward+backward (cross-entropy), train mode."""
    net.train()
    start = time.perf_counter()
    with torch.no_grad():
        net(batch.inputs)
    fwd = time.perf_counter() - start
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(batch.inputs), batch.labels)
    loss.backward()
    fwdbwd = time.perf_counter() - start
    net.zero_grad(set_to_none=True)
    return fwd, fwdbwd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    parser.add_argument("--proxy", default="nlc", help='proxy spec, e.g. "nlc(bn=train,pairs=512)" or "meco,nlc"')
    parser.add_argument("--cells", type=int, default=100, help="how many reference cells (in draw order)")
    parser.add_argument("--start", type=int, default=0, help="first draw position")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the reference used 2)")
    parser.add_argument("--no-own-timing", action="store_true", help="skip our own forward/backward timing")
    parser.add_argument("--out", type=Path, help="write per-cell scores and seconds to this CSV")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    reference = args.shared / "reference" / "peer_scores_nb201_500.csv"
    cifar = args.shared / "cifar10" / "cifar-10-batches-py"
    for path in (reference, cifar):
        if not path.exists():
            sys.exit(f"missing shared data: {path}")
    with open(reference, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["pos"]))
    if [int(r["index"]) for r in rows] != reference_draw().tolist():
        sys.exit("reference cells do not match numpy.random.default_rng(0).choice(15625, 500, replace=False)")
    rows = rows[args.start : args.start + args.cells]

    space = get_space("nats-tss")
    batch = load_batch(
        InputSpec(source="cifar10", dataset="cifar10", batch_size=args.batch_size, seed=0, path=str(cifar))
    )
    proxies = [get_proxy(name, **params) for name, params in parse_proxy_spec(args.proxy)]
    labels = [proxy_label(p) for p in proxies]
    print(
        f"{len(rows)} cells (pos {args.start}..{args.start + len(rows) - 1}), proxies {', '.join(labels)}, "
        f"batch {len(batch)} real CIFAR-10, {torch.get_num_threads()} threads",
        flush=True,
    )

    records = []
    for k, row in enumerate(rows):
        arch = space.from_index(int(row["index"]))
        if str(arch) != row["arch_str"]:
            sys.exit(f"index {row['index']}: our cell {arch} != reference {row['arch_str']}")
        rec = {"pos": int(row["pos"]), "index": int(row["index"]), "arch_str": row["arch_str"]}
        for proxy, label in zip(proxies, labels):
            result = evaluate(proxy, build_network(space, arch, 10, 0), batch)
            rec[label] = result.score if result.ok else math.nan
            rec[f"t_{label}"] = result.seconds
            if not result.ok:
                rec[f"why_{label}"] = result.reason
        if not args.no_own_timing:
            rec["own_fwd"], rec["own_fwdbwd"] = time_fwd_bwd(build_network(space, arch, 10, 0), batch)
        records.append(rec)
        if (k + 1) % 10 == 0 or k + 1 == len(rows):
            print(f"  {k + 1}/{len(rows)} cells", flush=True)

    target = np.array([float(r[TARGET]) for r in rows])
    half = len(rows) // 2
    print(f"\nKendall tau-b vs {TARGET} on {len(rows)} cells (halves: first {half} / last {len(rows) - half})")
    for proxy, label in zip(proxies, labels):
        raw = np.array([rec[label] for rec in records], dtype=float)
        failed = ~np.isfinite(raw)
        variants = {"score": raw, "-score": -raw}  # each read as higher-is-better
        if proxy.name == "nlc":
            variants["-dist(sweet spot [1,3])"] = -np.array([sweet_spot_distance(v) for v in raw])
        print(
            f"{label}: declared {'higher' if proxy.higher_is_better else 'lower'} is better; "
            f"{int(failed.sum())} failed (ranked last in every reading)"
        )
        for name, values in variants.items():
            values = np.where(failed | ~np.isfinite(values), -1e300, values)
            print(
                f"  tau({name}) = {tau(values, target):+.3f}   halves {tau(values[:half], target[:half]):+.3f} / "
                f"{tau(values[half:], target[half:]):+.3f}"
            )
        finite = raw[~failed]
        if finite.size:
            qs = np.percentile(finite, [0, 10, 50, 90, 100])
            print("  score quantiles 0/10/50/90/100%: " + " ".join(f"{q:.4g}" for q in qs))
        secs = [rec[f"t_{label}"] for rec in records]
        ratio_ref = [rec[f"t_{label}"] / float(row["t_fwdbwd"]) for rec, row in zip(records, rows)]
        line = (
            f"  seconds/cell median {statistics.median(secs):.3f} (mean {statistics.fmean(secs):.3f}); "
            f"ratio to reference t_fwdbwd median {statistics.median(ratio_ref):.2f}"
        )
        if not args.no_own_timing:
            ratio_own = [rec[f"t_{label}"] / rec["own_fwdbwd"] for rec in records]
            line += f", to our own fwd+bwd (same load) median {statistics.median(ratio_own):.2f}"
        print(line)
    for peer in PEERS:
        values = np.array([float(r[peer]) if r[peer] not in ("", "nan") else np.nan for r in rows])
        ok = np.isfinite(values)
        print(f"  [peer] tau({peer}) = {tau(values[ok], target[ok]):+.3f} on {int(ok.sum())} cells")
    if not args.no_own_timing:
        own = [rec["own_fwdbwd"] for rec in records]
        ref = [float(r["t_fwdbwd"]) for r in rows]
        print(
            f"  forward+backward batch {len(batch)}: ours median {statistics.median(own):.3f} s, "
            f"reference {statistics.median(ref):.3f} s "
            f"(load factor {statistics.median(own) / statistics.median(ref):.2f})"
        )

    if args.out:
        fields = sorted(
            {key for rec in records for key in rec}, key=lambda k: (k not in ("pos", "index", "arch_str"), k)
        )
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for rec in records:
                writer.writerow(rec)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
