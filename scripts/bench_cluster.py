"""Throughput of scoring on a local Dask cluster, and what scoring all of NAS-Bench-101 would cost.

1. Scaling: NEAR on ``--cells`` seeded NB101 cells with 1, 2 and 4 workers of a local Dask cluster
   (``--cluster local``), each into a fresh store: scores per second and the ratio to 1 worker.
2. Projection: each proxy's measured seconds per NB101 cell (one process, one thread, ``--cost-cells``
   cells) times 423,624 cells, in core-hours, beside the wall-clock hours on N such workers.

    python scripts/bench_cluster.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py --json out.json

Run it on an otherwise idle machine: every figure is a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

NB101_CELLS = 423_624
PROJECTED = "near,params,flops,synflow,naswot,meco_opt,zico"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="proxy inputs, e.g. cifar10:DIR")
    parser.add_argument("--cells", type=int, default=64, help="NB101 cells per scaling run (default 64)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--cost-cells", type=int, default=16, help="cells per proxy for the projection")
    parser.add_argument("--proxies", default=PROJECTED, help=f"projected proxies (default {PROJECTED})")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    import nas

    out: dict = {"cells": args.cells, "scaling": [], "projection": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for workers in [int(w) for w in args.workers.split(",")]:
            store = f"sqlite:///{Path(tmp) / f'w{workers}.db'}"
            start = time.perf_counter()
            nas.score("nb101", "near", sample=args.cells, seed=1, data=args.data, store=store, cluster="local",
                      workers=workers)  # fmt: skip
            wall = time.perf_counter() - start
            rate = args.cells / wall
            base = base or rate
            out["scaling"].append({"workers": workers, "seconds": wall, "per_second": rate, "speedup": rate / base})
            print(f"{workers} worker(s): {args.cells} NEAR scores in {wall:.1f} s, {rate:.2f}/s, x{rate / base:.2f}")
        for proxy in args.proxies.split(","):
            store = f"sqlite:///{Path(tmp) / 'cost.db'}"
            table = nas.score("nb101", proxy, sample=args.cost_cells, seed=2, data=args.data, store=store)
            seconds = [s.seconds for s in table[table.labels[0]].values() if s.ok]
            per_cell = sum(seconds) / max(len(seconds), 1)
            hours = per_cell * NB101_CELLS / 3600
            out["projection"].append({"proxy": proxy, "seconds_per_cell": per_cell, "core_hours_all": hours})
            print(f"{proxy}: {per_cell:.3f} s per NB101 cell -> {hours:,.1f} core-hours for all {NB101_CELLS:,}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
