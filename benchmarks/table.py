"""The compact benchmark table: one HDF5 file per space, written once by an importer.

Layout (``format_version`` 1)::

    /                 attrs: format, format_version, space, source, importer, created, zcnas_version
    /key              (N,) str     canonical arch string (TSS, SSS) or module hash (NB101)
    /index            (N,) int64   official index (TSS, SSS); -1 where the space has none
    /metrics/<dataset>/<split>/<epochs>/{mean, std}   (N,) float64, NaN where not recorded
    /metrics/<dataset>/<split>/<epochs>/n_seeds       (N,) uint8
                      attrs: source (the official name of the entry, e.g. "cifar10-valid x-valid@199")
    /costs/<dataset>/<name>   (N,) float64: params (count), flops (millions), latency (s), ...
    /extra/<name>     (N, ...) space-specific arrays (NB101: adjacency, ops, num_vertices)

Accuracies are percentages. Every lookup names dataset, split and epochs: there are no defaults,
and a combination the table lacks is an error that lists what it has.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nas import __version__
from nas.errors import BenchmarkError, MissingEntryError
from nas.paths import nas_home

FORMAT = "zcnas-benchmark"
FORMAT_VERSION = 1
STATS = ("mean", "std", "n_seeds")

#: Canonical dataset names and the spellings users bring from other tools.
DATASET_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar10-valid": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "imagenet16-120": "imagenet16-120",
    "imagenet16": "imagenet16-120",
    "imagenet": "imagenet16-120",
    "imagenet16_120": "imagenet16-120",
}
SPLIT_ALIASES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "x-valid": "valid",
    "validation": "valid",
    "test": "test",
    "x-test": "test",
    "ori-test": "test",
}

Combo = tuple[str, str, int]  # (dataset, split, epochs)


def canonical_dataset(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DATASET_ALIASES:
        raise MissingEntryError(f"unknown dataset {name!r}; expected one of cifar10, cifar100, imagenet16-120")
    return DATASET_ALIASES[key]


def canonical_split(name: str) -> str:
    key = str(name).strip().lower()
    if key not in SPLIT_ALIASES:
        raise MissingEntryError(f"unknown split {name!r}; expected one of train, valid, test")
    return SPLIT_ALIASES[key]


def default_table_path(space: str) -> Path:
    """Where the imported table of a space lives: ``$NAS_HOME/benchmarks/<space>.h5``."""
    return nas_home() / "benchmarks" / f"{space}.h5"


@dataclass
class TableData:
    """What an importer hands to :func:`write_table`: columns aligned with ``keys``."""

    space: str
    keys: list[str]
    indices: np.ndarray
    #: (dataset, split, epochs) -> {"mean": float array, "std": float array, "n_seeds": int array}
    metrics: dict[Combo, dict[str, np.ndarray]] = field(default_factory=dict)
    #: (dataset, split, epochs) -> the official name of what was read
    metric_sources: dict[Combo, str] = field(default_factory=dict)
    #: (dataset, cost name) -> float array
    costs: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: space-specific arrays with N rows, e.g. NB101's adjacency (N, 7, 7) and ops (N, 7)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    #: free-form provenance attributes (source file, importer, notes)
    provenance: dict[str, str] = field(default_factory=dict)

    def add_metric(self, combo: Combo, values: np.ndarray, source: str) -> None:
        """Add one column from per-seed values of shape (N, S), NaN where a seed is missing."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        n = np.sum(~np.isnan(values), axis=1)
        with nan_quiet():
            mean = np.nanmean(values, axis=1)
            std = np.nanstd(values, axis=1)
        self.metrics[combo] = {"mean": mean, "std": std, "n_seeds": n}
        self.metric_sources[combo] = source


@contextmanager
def nan_quiet():
    """Silence numpy's warnings for rows that are all NaN (a cell with no recorded seed)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def write_table(data: TableData, path: str | os.PathLike) -> Path:
    """Write a table atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(data.keys)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT,
                format_version=FORMAT_VERSION,
                space=data.space,
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                zcnas_version=__version__,
                **{k: str(v) for k, v in data.provenance.items()},
            )
            f.create_dataset("key", data=np.array(data.keys, dtype=h5py.string_dtype()))
            f.create_dataset("index", data=np.asarray(data.indices, dtype=np.int64))
            for (dataset, split, epochs), cols in sorted(data.metrics.items()):
                group = f.create_group(f"metrics/{dataset}/{split}/{int(epochs)}")
                group.attrs["source"] = data.metric_sources.get((dataset, split, epochs), "")
                for stat in ("mean", "std"):
                    group.create_dataset(stat, data=np.asarray(cols[stat], dtype=np.float64))
                group.create_dataset("n_seeds", data=np.asarray(cols["n_seeds"], dtype=np.uint8))
                if any(len(cols[s]) != n for s in STATS):
                    raise ValueError(f"column {dataset}/{split}/{epochs} does not have {n} rows")
            for (dataset, name), values in sorted(data.costs.items()):
                f.create_dataset(f"costs/{dataset}/{name}", data=np.asarray(values, dtype=np.float64))
            for name, values in sorted(data.extras.items()):
                f.create_dataset(f"extra/{name}", data=np.asarray(values))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class BenchmarkTable:
    """Recorded accuracies of a space, loaded whole into memory (a few MB at most).

    >>> table = BenchmarkTable.open("nats-tss")                         # doctest: +SKIP
    >>> table.accuracy(0, dataset="cifar10", split="valid", epochs=200)  # doctest: +SKIP
    81.98...
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise BenchmarkError(f"benchmark table {str(self.path)!r} does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise BenchmarkError(f"{str(self.path)!r} is not a zcnas benchmark table")
                self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
                self.keys = [k.decode() if isinstance(k, bytes) else k for k in f["key"][()]]
                self.indices = f["index"][()]
                self._metrics: dict[Combo, dict[str, np.ndarray]] = {}
                self._sources: dict[Combo, str] = {}
                for dataset, by_split in f.get("metrics", {}).items():
                    for split, by_epochs in by_split.items():
                        for epochs, group in by_epochs.items():
                            combo = (dataset, split, int(epochs))
                            self._metrics[combo] = {s: group[s][()] for s in STATS}
                            self._sources[combo] = _plain(group.attrs.get("source", ""))
                self._costs = {
                    (dataset, name): ds[()]
                    for dataset, group in f.get("costs", {}).items()
                    for name, ds in group.items()
                }
                self.extras = {name: ds[()] for name, ds in f.get("extra", {}).items()}
        except OSError as err:
            raise BenchmarkError(f"cannot read benchmark table {str(self.path)!r}: {err}") from None
        self.space_name: str = self.attrs["space"]
        self._row = {key: row for row, key in enumerate(self.keys)}
        self._row_of_index = {int(i): row for row, i in enumerate(self.indices) if i >= 0}
        self._space = None

    @classmethod
    def open(cls, space_or_path: str | os.PathLike) -> BenchmarkTable:
        """Open a table by space name (from ``$NAS_HOME``) or by file path."""
        candidate = Path(space_or_path)
        if candidate.suffix in (".h5", ".hdf5") or candidate.is_file():
            return cls(candidate)
        from nas.searchspaces import canonical_space_name

        space = canonical_space_name(str(space_or_path))
        path = default_table_path(space)
        if not path.is_file():
            raise BenchmarkError(
                f"no benchmark table for {space} at {str(path)!r}; import one first "
                f"(`nas bench import {space} ...`, see `nas bench import --help`)"
            )
        return cls(path)

    def data(self) -> TableData:
        """The table as importer output (what :func:`write_table` writes), e.g. to merge into."""
        written = ("format", "format_version", "space", "created", "zcnas_version")  # write_table's own
        out = TableData(space=self.space_name, keys=list(self.keys), indices=np.asarray(self.indices))
        out.metrics = {combo: dict(cols) for combo, cols in self._metrics.items()}
        out.metric_sources = dict(self._sources)
        out.costs = dict(self._costs)
        out.extras = dict(self.extras)
        out.provenance = {k: str(v) for k, v in self.attrs.items() if k not in written}
        return out

    # -- what is in it --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        """Whether a key (canonical string or NB101 hash) has a row."""
        return isinstance(key, str) and key in self._row

    @property
    def space(self):
        if self._space is None:
            from nas.searchspaces import get_space

            self._space = get_space(self.space_name)
        return self._space

    def combinations(self) -> list[Combo]:
        return sorted(self._metrics)

    def datasets(self) -> list[str]:
        return sorted({d for d, _, _ in self._metrics})

    def splits(self, dataset: str | None = None) -> list[str]:
        return sorted({s for d, s, _ in self._metrics if dataset is None or d == dataset})

    def epochs(self, dataset: str | None = None, split: str | None = None) -> list[int]:
        return sorted(
            {e for d, s, e in self._metrics if (dataset is None or d == dataset) and (split is None or s == split)}
        )

    def source(self, dataset: str, split: str, epochs: int) -> str:
        return self._sources[self._combo(dataset, split, epochs)]

    def _describe(self) -> str:
        return ", ".join(f"{d}/{s}/{e}" for d, s, e in self.combinations()) or "nothing"

    def _combo(self, dataset: str, split: str, epochs: int) -> Combo:
        for name, value in (("dataset", dataset), ("split", split), ("epochs", epochs)):
            if value is None:
                raise MissingEntryError(
                    f"{name} is required (no defaults); the {self.space_name} table has "
                    f"dataset/split/epochs: {self._describe()}"
                )
        try:
            epochs = int(epochs)
        except (TypeError, ValueError):
            raise MissingEntryError(f"epochs must be an integer, got {epochs!r}") from None
        combo = (canonical_dataset(dataset), canonical_split(split), epochs)
        if combo not in self._metrics:
            raise MissingEntryError(
                f"the {self.space_name} table has no {combo[0]}/{combo[1]}/{combo[2]}; "
                f"it has dataset/split/epochs: {self._describe()}"
            )
        return combo

    # -- rows -----------------------------------------------------------------------------------
    def row_of(self, arch: Any) -> int:
        """The table row of an architecture given as index, string, hash or arch value."""
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool) and self._row_of_index:
            row = self._row_of_index.get(int(arch))
            if row is None:
                self.space._check_index(int(arch))  # out of range -> InvalidArchitectureError
                raise MissingEntryError(f"{self.space_name} index {int(arch)} is not in the table")
            return row
        if isinstance(arch, str) and arch.strip() in self._row:
            return self._row[arch.strip()]
        key = self.space.key(self.space.resolve(arch))
        row = self._row.get(key)
        if row is None:
            raise MissingEntryError(f"{self.space_name} architecture {key!r} is not in the table")
        return row

    # -- lookups --------------------------------------------------------------------------------
    def column(self, *, dataset: str, split: str, epochs: int, stat: str = "mean") -> np.ndarray:
        """A whole column aligned with :attr:`keys` (NaN where not recorded)."""
        if stat not in STATS:
            raise MissingEntryError(f"unknown statistic {stat!r}; expected one of {', '.join(STATS)}")
        return self._metrics[self._combo(dataset, split, epochs)][stat]

    def accuracy(self, arch: Any, *, dataset: str, split: str, epochs: int, stat: str = "mean") -> float:
        """Recorded accuracy (percent) of one architecture; ``stat`` may be mean, std or n_seeds."""
        column = self.column(dataset=dataset, split=split, epochs=epochs, stat=stat)
        value = float(column[self.row_of(arch)])
        if np.isnan(value):
            raise MissingEntryError(f"{self.space_name} {arch!r} has no recorded {dataset}/{split}/{epochs} accuracy")
        return value

    def accuracies(self, archs: Iterable[Any], *, dataset: str, split: str, epochs: int) -> np.ndarray:
        """Mean accuracies of many architectures (NaN where not recorded)."""
        column = self.column(dataset=dataset, split=split, epochs=epochs)
        return np.array([column[self.row_of(a)] for a in archs], dtype=np.float64)

    def optimum(self, *, dataset: str, split: str, epochs: int) -> tuple[str, float]:
        """The best recorded architecture (its key) and its mean accuracy."""
        column = self.column(dataset=dataset, split=split, epochs=epochs)
        row = int(np.nanargmax(column))
        return self.keys[row], float(column[row])

    def cost_names(self) -> list[tuple[str, str]]:
        return sorted(self._costs)

    def cost(self, arch: Any, name: str, *, dataset: str) -> float:
        """A recorded cost (``params``, ``flops`` ...) of one architecture on one dataset."""
        dataset = canonical_dataset(dataset)
        if (dataset, name) not in self._costs:
            have = ", ".join(f"{d}/{n}" for d, n in self.cost_names()) or "none"
            raise MissingEntryError(f"the {self.space_name} table records no {dataset}/{name}; it has {have}")
        return float(self._costs[(dataset, name)][self.row_of(arch)])

    def record(self, arch: Any) -> dict[str, Any]:
        """Everything recorded for one architecture, for ``nas arch``."""
        row = self.row_of(arch)
        out: dict[str, Any] = {"key": self.keys[row]}
        if self.indices[row] >= 0:
            out["index"] = int(self.indices[row])
        out["accuracy"] = {
            f"{d}/{s}/{e}": {
                "mean": _num(c["mean"][row]),
                "std": _num(c["std"][row]),
                "n_seeds": int(c["n_seeds"][row]),
            }
            for (d, s, e), c in sorted(self._metrics.items())
        }
        out["costs"] = {f"{d}/{n}": _num(v[row]) for (d, n), v in sorted(self._costs.items())}
        return out

    def __repr__(self) -> str:
        return f"BenchmarkTable({self.space_name!r}, rows={len(self)}, path={str(self.path)!r})"


def _num(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
