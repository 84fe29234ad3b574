"""Does a band score, -|log NLC - log c|, rank NATS-TSS cells better than the raw NLC?

The test registered in docs/design.md (experiment 5): the ``nlc`` proxy's archived scores in
``docs/scores`` (the reproduction's protocol on NATS-TSS: 64 CIFAR-10 images, seed 0), c = sqrt(3),
Kendall tau-b with CIFAR-10 test accuracy after 200 epochs, on the reproduction's 500 held-out
cells and on every cell outside the 500 reference cells (where the proxy's direction was chosen);
the difference tau(band) - tau(raw) with a paired bootstrap CI (1,000 resamples).

    python scripts/nlc_band_score.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
C = math.sqrt(3.0)


def archived_nlc() -> dict[str, float]:
    """Arch string -> NLC from every archived NATS-TSS ``nlc`` protocol with CIFAR-10 inputs,
    default parameters and seed 0 (one protocol; an error if there are several)."""
    from nas.archive import archive_files, read_archive

    found: dict[str, dict[str, float]] = {}
    for path in archive_files(ROOT / "docs" / "scores"):
        archive = read_archive(path)
        for row in archive.rows:
            if row.space != "nats-tss" or row.proxy != "nlc" or row.status != "ok":
                continue
            spec = archive.protocols.get(row.protocol, {})
            if spec.get("inputs", {}).get("source") != "cifar10" or spec.get("proxy", {}).get("params") != {
                "pairs": 64,
                "bn": "eval",
                "seed": 0,
            }:
                continue
            found.setdefault(row.protocol, {})[row.arch] = row.score
    if len(found) != 1:
        raise SystemExit(f"expected one archived nlc protocol on nats-tss, found {len(found)}")
    return next(iter(found.values()))


def paired(a: np.ndarray, b: np.ndarray, acc: np.ndarray, resamples: int = 1000) -> dict:
    from nas.stats import kendall_tau, paired_tau_difference

    difference, low, high = paired_tau_difference(a, b, acc, resamples)
    return {
        "cells": len(acc),
        "tau_band": kendall_tau(a, acc),
        "tau_raw": kendall_tau(b, acc),
        "difference": difference,
        "ci": [low, high],
        "band_better": bool(low > 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", required=True, help="the shared data folder (nb201/, reference/)")
    args = parser.parse_args()
    from nas.reproduce.plan import holdout_cells, reference_cells
    from nas.scoring import select_archs
    from nas.searchspaces import get_space

    tss = get_space("nats-tss")
    nlc = archived_nlc()
    with open(Path(args.shared) / "nb201" / "nb201_accuracies.csv") as f:
        acc_of = {int(r["index"]): float(r["cifar10_test"]) for r in csv.DictReader(f)}
    reference = set(reference_cells(Path(args.shared)))
    held = holdout_cells(tss, select_archs(tss, 1000, 0) + [tss.from_index(i) for i in sorted(reference)])
    groups = {
        "500 held-out cells": [tss.index_of(a) for a in held],
        "all cells outside the 500 reference cells": [i for i in range(tss.size) if i not in reference],
    }
    out = {}
    for name, indices in groups.items():
        keys = [tss.format(tss.from_index(i)) for i in indices]
        keep = [k for k, key in enumerate(keys) if key in nlc and math.isfinite(nlc[key]) and nlc[key] > 0]
        raw = np.array([nlc[keys[k]] for k in keep])
        acc = np.array([acc_of[indices[k]] for k in keep])
        band = -np.abs(np.log(raw) - math.log(C))
        out[name] = paired(band, raw, acc)
        out[name]["cells_without_score"] = len(indices) - len(keep)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
