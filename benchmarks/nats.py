"""Importers of the official NATS-Bench and NAS-Bench-201 files.

Both read the benchmark through its own API (``nats_bench`` / ``nas_201_api``) and keep the same
mapping of the official (dataset, eval set) names onto the table's (dataset, split):

=====================  =======================================  ==============================
table dataset/split    official source                          notes
=====================  =======================================  ==============================
cifar10 / train        ``cifar10-valid`` train accuracy          trained on the 25k train half
cifar10 / valid        ``cifar10-valid`` ``x-valid``             the common "CIFAR-10 valid"
cifar10 / test         ``cifar10`` ``ori-test``                  trained on train+valid (50k)
cifar100 / train       ``cifar100`` train accuracy
cifar100 / valid       ``cifar100`` ``x-valid``
cifar100 / test        ``cifar100`` ``x-test``
imagenet16-120 / ...   ``ImageNet16-120`` train / x-valid / x-test
=====================  =======================================  ==============================

``epochs`` is the training schedule (the benchmark's ``hp``: TSS 12 and 200, SSS 1, 12 and 90);
the value is the accuracy after the last epoch of that schedule. Statistics are over the seeds
the benchmark recorded (never a random seed; ``is_random`` is the API default we avoid).
Costs (params as a count, FLOPs in millions, latency in seconds) follow the API's own
``get_compute_costs`` of the longest schedule, including its legacy fix for seeds that disagree.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nas.benchmarks.table import TableData
from nas.errors import BenchmarkError

#: (table dataset, table split) -> (official dataset, eval set name or "train")
SPLIT_SOURCES = {
    ("cifar10", "train"): ("cifar10-valid", "train"),
    ("cifar10", "valid"): ("cifar10-valid", "x-valid"),
    ("cifar10", "test"): ("cifar10", "ori-test"),
    ("cifar100", "train"): ("cifar100", "train"),
    ("cifar100", "valid"): ("cifar100", "x-valid"),
    ("cifar100", "test"): ("cifar100", "x-test"),
    ("imagenet16-120", "train"): ("ImageNet16-120", "train"),
    ("imagenet16-120", "valid"): ("ImageNet16-120", "x-valid"),
    ("imagenet16-120", "test"): ("ImageNet16-120", "x-test"),
}
#: Official dataset whose runs give each table dataset's costs.
COST_SOURCES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
MAX_SEEDS = 4
_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")
_SPACE_OF = {"tss": "nats-tss", "topology": "nats-tss", "sss": "nats-sss", "size": "nats-sss"}


def extract(hp2results: Mapping[str, Any]) -> tuple[dict, dict]:
    """Per-seed accuracies and costs of one architecture.

    ``hp2results`` maps the schedule (``"12"``, ``"200"`` ...) to an ``ArchResults`` of either
    API. Returns ``({(dataset, split, epochs): [acc per seed]}, {(dataset, cost): value})``.
    """
    accuracies: dict[tuple[str, str, int], list[float]] = {}
    costs: dict[tuple[str, str], float] = {}
    longest = max(hp2results, key=lambda hp: int(hp))
    for hp, results in hp2results.items():
        epochs = int(hp)
        available = set(results.get_dataset_names())
        for (dataset, split), (official, eval_name) in SPLIT_SOURCES.items():
            if official not in available:
                continue
            values = []
            for run in results.query(official).values():
                if eval_name == "train":
                    values.append(float(run.get_train()["accuracy"]))
                elif eval_name in run.get_eval_set():
                    values.append(float(run.get_eval(eval_name)["accuracy"]))
            if values:
                accuracies[(dataset, split, epochs)] = values
        if hp == longest:
            for dataset, official in COST_SOURCES.items():
                if official in available:
                    info = results.get_compute_costs(official)
                    costs[(dataset, "params")] = round(float(info["params"]) * 1e6)
                    costs[(dataset, "flops")] = float(info["flops"])
                    if info.get("latency") is not None:
                        costs[(dataset, "latency")] = float(info["latency"])
    return accuracies, costs


class _Collector:
    """Accumulates per-architecture extracts into preallocated columns (memory stays flat)."""

    def __init__(self, space: str, keys: list[str], indices: np.ndarray) -> None:
        self.space, self.keys, self.indices = space, keys, indices
        self.row = {int(i): r for r, i in enumerate(indices)}
        self.values: dict[tuple[str, str, int], np.ndarray] = {}
        self.costs: dict[tuple[str, str], np.ndarray] = {}

    def add(self, index: int, accuracies: dict, costs: dict) -> None:
        row = self.row[index]
        for combo, seeds in accuracies.items():
            column = self.values.get(combo)
            if column is None:
                column = self.values[combo] = np.full((len(self.keys), MAX_SEEDS), np.nan)
            column[row, : min(len(seeds), MAX_SEEDS)] = seeds[:MAX_SEEDS]
        for name, value in costs.items():
            column = self.costs.get(name)
            if column is None:
                column = self.costs[name] = np.full(len(self.keys), np.nan)
            column[row] = value

    def table(self, source_prefix: str, provenance: dict[str, str]) -> TableData:
        data = TableData(self.space, self.keys, self.indices, provenance=provenance)
        for (dataset, split, epochs), values in sorted(self.values.items()):
            official, eval_name = SPLIT_SOURCES[(dataset, split)]
            where = "train accuracy" if eval_name == "train" else eval_name
            data.add_metric(
                (dataset, split, epochs),
                values,
                f"{source_prefix} {official} {where} after epoch {epochs} (hp={epochs})",
            )
        data.costs = dict(self.costs)
        return data


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="arch")


# -- NATS-Bench fast_mode directories ----------------------------------------------------------
def detect_nats_space(path: Path) -> str:
    """``tss`` or ``sss`` from the directory name the release uses."""
    name = path.name.lower()
    if "-tss-" in name or "topology" in name:
        return "tss"
    if "-sss-" in name or "size" in name:
        return "sss"
    raise BenchmarkError(
        f"cannot tell whether {str(path)!r} is the topology or the size benchmark from its "
        "name; pass the space explicitly (nats-tss or nats-sss)"
    )


def archive_indices(path: Path) -> list[int]:
    """Indices of the per-architecture files present in a fast_mode directory."""
    return sorted(int(m.group(1)) for f in os.listdir(path) if (m := _FILE.match(f)))


def iter_nats_directory(path: str | os.PathLike, space: str, trust_pickle: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield ``(index, {hp: ArchResults})`` for every file of a fast_mode directory, one file at a
    time (memory stays flat over all 15,625 / 32,768 files). Each file is read with the restricted
    unpickler of :mod:`nas.benchmarks.safe_pickle` (plain data only) unless ``trust_pickle``."""
    from nas.benchmarks.safe_pickle import load_pbz2
    from nas.optional import need

    ArchResults = need("nats_bench.api_utils", "official", "reading NATS-Bench directories").ArchResults
    path = Path(path)
    for index in archive_indices(path):
        xdata = load_pbz2(path / f"{index:06d}.pickle.pbz2", trust=trust_pickle)
        if not isinstance(xdata, dict):
            raise BenchmarkError(f"architecture {index} of {str(path)!r} is not a NATS-Bench record")
        try:
            yield index, {hp: ArchResults.create_from_state_dict(results) for hp, results in xdata.items()}
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise BenchmarkError(
                f"cannot read architecture {index} of {str(path)!r}: {type(err).__name__}: {err}"
            ) from None


def _meta_archs(path: Path, trust_pickle: bool) -> list[str]:
    """The architecture strings of a fast_mode directory, from its meta.pickle.pbz2."""
    from nas.benchmarks.safe_pickle import load_pbz2

    if not path.is_dir():
        raise BenchmarkError(f"NATS-Bench directory {str(path)!r} does not exist")
    if not (path / "meta.pickle.pbz2").is_file():
        raise BenchmarkError(f"{str(path)!r} is not a NATS-Bench fast_mode directory (no meta.pickle.pbz2)")
    meta = load_pbz2(path / "meta.pickle.pbz2", trust=trust_pickle)
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise BenchmarkError(f"{str(path)!r}: meta.pickle.pbz2 holds no meta_archs")
    return list(meta["meta_archs"])


def import_nats_directory(
    path: str | os.PathLike, space: str | None = None, progress: bool = False, trust_pickle: bool = False
) -> TableData:
    """Convert a NATS-Bench ``fast_mode`` directory (``NATS-tss-v1_0-3ffb9-simple`` or
    ``NATS-sss-v1_0-50262-simple``) into a table, one row per architecture file present."""
    path = Path(path)
    short = (space or "").replace("nats-", "") or detect_nats_space(path)
    if short not in _SPACE_OF:
        raise BenchmarkError(f"unknown NATS space {space!r}; expected nats-tss or nats-sss")
    meta_archs = _meta_archs(path, trust_pickle)
    indices = np.array(archive_indices(path), dtype=np.int64)
    if len(indices) == 0:
        raise BenchmarkError(f"{str(path)!r} holds no per-architecture files (NNNNNN.pickle.pbz2)")
    if indices[-1] >= len(meta_archs):
        raise BenchmarkError(f"{str(path)!r} has a file for index {indices[-1]} beyond meta_archs")
    keys = [meta_archs[i] for i in indices]
    collector = _Collector(_SPACE_OF[short], keys, indices)
    records = iter_nats_directory(path, short, trust_pickle)
    for index, hp2results in _progress(records, len(indices), f"import {path.name}", progress):
        collector.add(index, *extract(hp2results))
    return collector.table(
        "NATS-Bench",
        {"source": str(path.resolve()), "importer": "nats-fast-mode", "architectures": str(len(indices))},
    )


# -- NAS-Bench-201 .pth files -------------------------------------------------------------------
def import_nb201_pth(path: str | os.PathLike, progress: bool = False, trust_pickle: bool = False) -> TableData:
    """Convert ``NAS-Bench-201-v1_0-e61699.pth`` / ``-v1_1-096897.pth`` into a TSS table.

    The file is a ``torch.save``d dict (``meta_archs``, ``arch2infos``: {index: {"less": 12-epoch
    results, "full": 200-epoch results}}) of plain data and numpy scalars. It is read with
    ``torch.load(weights_only=True)``, numpy's scalar reconstruction allowed for plain dtypes only;
    a file that asks for anything else is refused (one line) unless ``trust_pickle``.
    The whole file is loaded at once; the v1_1 file needs tens of GB of RAM, so prefer the
    NATS-Bench fast_mode directory, which has the same indices and more seeds.
    """
    import torch

    from nas.optional import need

    ArchResults = need("nas_201_api.api_utils", "official", "reading NAS-Bench-201 .pth files").ArchResults

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"NAS-Bench-201 file {str(path)!r} does not exist")
    from nas.benchmarks.safe_pickle import torch_safe_globals

    try:
        if trust_pickle:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(torch_safe_globals()):
                blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BenchmarkError(
            f"{str(path)!r} asks for more than plain data when read ({first}); not read. If you trust this "
            "file, pass --trust-pickle (trust_pickle=True)"
        ) from None
    except Exception as err:
        raise BenchmarkError(f"cannot read NAS-Bench-201 file {str(path)!r}: {err}") from None
    if not isinstance(blob, dict) or not {"meta_archs", "arch2infos"} <= set(blob):
        raise BenchmarkError(
            f"{str(path)!r} is not a NAS-Bench-201 file (expected a dict with meta_archs and arch2infos)"
        )
    meta_archs = blob["meta_archs"]
    infos = blob["arch2infos"]
    indices = np.array(sorted(int(i) for i in infos), dtype=np.int64)
    collector = _Collector("nats-tss", [meta_archs[i] for i in indices], indices)
    for index in _progress(indices, len(indices), f"import {path.name}", progress):
        entry = infos[int(index)]
        hp2results = {}
        for name, epochs in (("less", "12"), ("full", "200")):
            if entry.get(name) is not None:
                hp2results[epochs] = ArchResults.create_from_state_dict(entry[name])
        collector.add(int(index), *extract(hp2results))
    return collector.table(
        "NAS-Bench-201",
        {"source": str(path.resolve()), "importer": "nb201-pth", "architectures": str(len(indices))},
    )
