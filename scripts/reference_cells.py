"""What the reference-comparison scripts share: the command-line options and the reference cells.

The cells are those of ``../shared/data/reference/peer_scores_nb201_500.csv`` (the authors' own
code on 500 NATS-TSS cells drawn by ``numpy.random.default_rng(0).choice(15625, 500,
replace=False)``), in draw order.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def reference_draw(cells: int = 500) -> np.ndarray:
    """The NATS-TSS indices of the first ``cells`` reference cells, in draw order."""
    return np.random.default_rng(0).choice(15625, 500, replace=False)[:cells]


def add_common_args(parser: argparse.ArgumentParser, cells: int) -> None:
    parser.add_argument("--cells", type=int, default=cells)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data directory")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="write per-cell results to this CSV")


def load_reference(args: argparse.Namespace) -> tuple[list[dict], Path] | None:
    """Apply ``--threads`` and return (the first ``--cells`` reference rows, the CIFAR-10
    directory), or None after saying which shared file is missing."""
    if args.threads:
        torch.set_num_threads(args.threads)
    table = args.shared / "reference" / "peer_scores_nb201_500.csv"
    cifar = args.shared / "cifar10" / "cifar-10-batches-py"
    for path in (table, cifar):
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            return None
    with open(table) as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["pos"]))[: args.cells]
    return rows, cifar


def write_rows(path: Path | None, rows: list[dict]) -> None:
    """Per-cell results to CSV (``--out``), columns in the order of the first row."""
    if not path or not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
