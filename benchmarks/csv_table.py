"""Import recorded accuracies from a CSV file with a documented schema.

One row per architecture. Columns (any order; unknown columns are ignored and reported):

- **key** (at least one): ``index`` (official index; TSS, SSS), ``arch_str`` or ``arch``
  (canonical string), ``hash`` (NAS-Bench-101 module hash).
- **accuracies** in percent: ``[hp<E>_]<dataset>_<split>`` with dataset ``cifar10``,
  ``cifar100`` or ``imagenet16`` and split ``train``, ``valid`` or ``test``
  (e.g. ``cifar10_test``, ``hp12_cifar100_valid``). ``hp<E>_`` gives the training epochs;
  columns without it need the epochs stated on import (``epochs=``): never guessed.
- optional per-accuracy ``<column>_nseeds`` (seed count) and ``<column>_std``.
- **costs**: ``params`` (a count) or ``params_mb`` (millions), ``flops`` (millions), each
  recorded for the 10-class CIFAR-10 head unless prefixed ``<dataset>_``.

``../shared/data/nb201/nb201_accuracies.csv`` follows this schema (import with ``epochs=200``), and so
does ``../shared/data/nats_sss/nats_sss_hp90_valid.csv.gz``: a name ending in ``.gz`` is read
through gzip.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from pathlib import Path

import numpy as np

from nas.benchmarks.table import TableData, canonical_dataset
from nas.errors import BenchmarkError, NasError

_METRIC = re.compile(r"^(?:hp(\d+)_)?(cifar10|cifar100|imagenet16)_(train|valid|test)$")
_COST = re.compile(r"^(?:(cifar10|cifar100|imagenet16)_)?(params|params_mb|flops)$")
KEY_COLUMNS = ("index", "arch_str", "arch", "hash")


def open_text(path: str | os.PathLike):
    """A CSV file for reading, gzip'ed or not (any name ending in ``.gz``)."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8")


def _float(text: str) -> float:
    text = text.strip()
    return float(text) if text not in ("", "nan", "NaN", "None") else np.nan


def _official_index(space, arch) -> int:
    """The architecture's official index, or -1 where the space has none (NB101, a plugin's)."""
    try:
        return space.index_of(arch)
    except NasError:
        return -1


def import_csv(path: str | os.PathLike, space: str, epochs: int | None = None) -> TableData:
    """Read a CSV of the schema above into a table for ``space``.

    ``epochs`` is the training schedule of the accuracy columns that carry no ``hp<E>_``
    prefix; it is required when such columns exist.
    """
    from nas.searchspaces import canonical_space_name, get_space

    path = Path(path)
    space_name = canonical_space_name(space)
    if not path.is_file():
        raise BenchmarkError(f"CSV file {str(path)!r} does not exist")
    with open_text(path) as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if not any(k in header for k in KEY_COLUMNS):
        raise BenchmarkError(f"{str(path)!r} has no key column; expected one of {', '.join(KEY_COLUMNS)}")
    metric_cols = {c: _METRIC.match(c) for c in header if _METRIC.match(c)}
    if not metric_cols:
        raise BenchmarkError(
            f"{str(path)!r} has no accuracy column; expected names like cifar10_test or hp12_cifar10_valid"
        )
    if epochs is None and any(m.group(1) is None for m in metric_cols.values()):
        unprefixed = sorted(c for c, m in metric_cols.items() if m.group(1) is None)
        raise BenchmarkError(
            f"{str(path)!r}: columns {', '.join(unprefixed)} carry no hp<E>_ prefix; "
            "state their training epochs (--epochs)"
        )

    space_obj = get_space(space_name)
    keys: list[str] = []
    indices = np.full(len(rows), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        try:
            if "hash" in row and row["hash"]:
                key = row["hash"].strip()
            else:
                ref = row.get("arch_str") or row.get("arch") or row.get("index")
                arch = space_obj.resolve(ref)
                key = space_obj.key(arch)
                indices[r] = _official_index(space_obj, arch)
                if row.get("index") and int(row["index"]) != indices[r]:
                    raise BenchmarkError(
                        f"{str(path)!r} line {r + 2}: index {row['index']} does not match "
                        f"its architecture (official index {indices[r]})"
                    )
        except NasError as err:
            raise BenchmarkError(f"{str(path)!r} line {r + 2}: {err}") from None
        keys.append(key)

    known = set(KEY_COLUMNS) | set(metric_cols)
    known |= {f"{c}_{s}" for c in metric_cols for s in ("std", "nseeds")}
    ignored = [c for c in header if c not in known and not _COST.match(c)]
    data = TableData(
        space_name,
        keys,
        indices,
        provenance={"source": str(path.resolve()), "importer": "csv", "ignored_columns": ",".join(ignored)},
    )
    for column, match in sorted(metric_cols.items()):
        hp, dataset, split = match.groups()
        combo = (canonical_dataset(dataset), split, int(hp) if hp else int(epochs))
        means = np.array([_float(row[column]) for row in rows])
        data.add_metric(combo, means, f"CSV column {column}")
        if f"{column}_std" in header:
            data.metrics[combo]["std"] = np.array([_float(row[f"{column}_std"]) for row in rows])
        else:
            data.metrics[combo]["std"] = np.full(len(rows), np.nan)
        # seed counts: 0 where the file does not say (never a made-up 1)
        data.metrics[combo]["n_seeds"] = np.array(
            [int(_float(row[f"{column}_nseeds"])) if row.get(f"{column}_nseeds") else 0 for row in rows]
        )
    for column in header:
        match = _COST.match(column)
        if not match:
            continue
        dataset = canonical_dataset(match.group(1) or "cifar10")
        values = np.array([_float(row[column]) for row in rows])
        name = match.group(2)
        if name == "params_mb":
            name, values = "params", np.round(values * 1e6)
        data.costs[(dataset, name)] = values
    return data
