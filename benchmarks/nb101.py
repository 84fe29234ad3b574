"""NAS-Bench-101 importers that need no TensorFlow: TFRecord, community HDF5, subset CSV.

Three layouts are read into a :class:`~nas.benchmarks.table.TableData` for space ``"nb101"``:

* :func:`import_nb101_tfrecord` -- the official ``nasbench_only108.tfrecord`` (epochs 108) and
  ``nasbench_full.tfrecord`` (epochs 4, 12, 36, 108). The file is streamed record by record
  (:func:`read_tfrecords`, CRC32C-checked) and its ``ModelMetrics`` protobufs are decoded by hand
  (:func:`decode_model_metrics`), so neither TensorFlow nor protobuf is needed.
* :func:`import_nb101_hdf5` -- the community ``nasbench.hdf5`` layout (the converter used by
  neuralpredictor.pytorch and its copies).
* :func:`import_nb101_subset_csv` -- the layout of ``nb101_subset_1000.csv`` (one run per cell,
  validation accuracy only), which gives CI a real NB101 table.
* :func:`import_nb101_hash_csv` -- accuracies keyed by module hash alone (``hash, params,
  hp<E>_cifar10_<split>``, e.g. ``nb101_all_test.csv.gz``), joined to our enumeration of the
  space for the graphs.

What every importer produces
----------------------------
* ``keys``: the module hashes (pruned-graph MD5 fingerprints), sorted; ``indices`` all -1 (NB101
  has no official index).
* metrics for dataset ``"cifar10"``, splits ``train``/``valid``/``test`` (whatever the layout
  holds), one column per epoch budget, from the per-seed values of the *final* evaluation of each
  run (NB101 trains 3 repeats of every cell at every budget). Accuracies are in **percent**: the
  official files store fractions (0.93), the table stores 93.0.
* costs ``("cifar10", "params")`` (trainable parameters) and ``("cifar10", "train_time")``
  (seconds of training, mean over repeats, at the largest epoch budget in the file: 108).
* extras ``adjacency`` (N, 7, 7) int8, zero-padded; ``ops`` (N, 7) int8 with the codes of
  :data:`OP_CODES` (input -1, output -2, conv3x3-bn-relu 0, conv1x1-bn-relu 1, maxpool3x3 2) and
  :data:`OP_PAD` (-3) after the last vertex; ``num_vertices`` (N,) int8. The first
  ``num_vertices`` entries of ``ops`` and rows/columns of ``adjacency`` are the pruned graph.
  (The community HDF5 pads ``operations`` with 0, which is also conv3x3's code; we re-pad with -3
  so that a padded slot can never be mistaken for a real vertex.)

Every user-caused failure (missing file, not a TFRecord, CRC mismatch, truncated file, record of
the wrong shape, HDF5 without a dataset, CSV without a column) raises
:class:`~nas.errors.BenchmarkError` with one line naming the file and the problem.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from nas.benchmarks.csv_table import open_text
from nas.benchmarks.protobuf import _final_run, decode_model_metrics
from nas.benchmarks.table import TableData, nan_quiet
from nas.benchmarks.tfrecord import _check_file, _iter_tfrecords, masked_crc32c, read_tfrecords
from nas.errors import BenchmarkError

# the framing and the decoder are their own modules; their public names are kept here too
__all__ = [
    "EPOCHS",
    "OP_CODES",
    "OP_NAMES",
    "OP_PAD",
    "decode_model_metrics",
    "import_nb101_hdf5",
    "import_nb101_subset_csv",
    "import_nb101_tfrecord",
    "masked_crc32c",
    "read_tfrecords",
    "spec_of_row",
]

SPACE = "nb101"
DATASET = "cifar10"
MAX_VERTICES = 7
#: The epoch budgets of ``nasbench_full.tfrecord`` (``nasbench_only108.tfrecord`` holds only 108).
EPOCHS = (4, 12, 36, 108)
#: Operation codes used in the ``ops`` extra (same codes as the community HDF5 layout).
OP_CODES = {"input": -1, "output": -2, "conv3x3-bn-relu": 0, "conv1x1-bn-relu": 1, "maxpool3x3": 2}
OP_NAMES = {code: name for name, code in OP_CODES.items()}
#: Code of the slots after the last vertex in the ``ops`` extra.
OP_PAD = -3


# -- NAS-Bench-101 records ----------------------------------------------------------------------
def _parse_graph(adjacency: str, ops: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Padded (7, 7) adjacency, padded (7,) op codes and the vertex count of one record."""
    dim = int(round(len(adjacency) ** 0.5))
    if dim * dim != len(adjacency) or not 2 <= dim <= MAX_VERTICES:
        raise ValueError(
            f"adjacency string of {len(adjacency)} characters is not a square of 2..{MAX_VERTICES} vertices"
        )
    if adjacency.strip("01"):
        raise ValueError(f"adjacency string {adjacency!r} holds characters other than 0 and 1")
    names = ops.split(",")
    if len(names) != dim:
        raise ValueError(f"{len(names)} operations for {dim} vertices")
    try:
        codes = [OP_CODES[n] for n in names]
    except KeyError as err:
        raise ValueError(f"unknown operation {err.args[0]!r}") from None
    matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    matrix[:dim, :dim] = np.frombuffer(adjacency.encode("ascii"), dtype=np.uint8).reshape(dim, dim) - 48
    op_row = np.full(MAX_VERTICES, OP_PAD, dtype=np.int8)
    op_row[:dim] = codes
    return matrix, op_row, dim


class _Accumulator:
    """Per-hash columns in growable numpy arrays, rows found through a hash -> row dict."""

    # per (row, seed) of each epoch budget: final train time, train, valid, test accuracy
    FIELDS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.n = 0
        self.row: dict[str, int] = {}
        self.keys: list[str] = []
        self.seeds = 3
        self.params = np.zeros(capacity, dtype=np.int64)
        self.adjacency = np.zeros((capacity, MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
        self.ops = np.full((capacity, MAX_VERTICES), OP_PAD, dtype=np.int8)
        self.num_vertices = np.zeros(capacity, dtype=np.int8)
        self.values: dict[int, np.ndarray] = {}  # epochs -> (capacity, seeds, 4) float64, NaN
        self.counts: dict[int, np.ndarray] = {}  # epochs -> (capacity,) uint8 runs seen

    def _grow(self) -> None:
        new = self.capacity * 2

        def grown(a: np.ndarray, fill: Any) -> np.ndarray:
            b = np.full((new,) + a.shape[1:], fill, dtype=a.dtype)
            b[: self.capacity] = a
            return b

        # one array at a time, so that only one old copy is alive at once
        self.params = grown(self.params, 0)
        self.adjacency = grown(self.adjacency, 0)
        self.ops = grown(self.ops, OP_PAD)
        self.num_vertices = grown(self.num_vertices, 0)
        for e in list(self.values):
            self.values[e] = grown(self.values[e], np.nan)
            self.counts[e] = grown(self.counts[e], 0)
        self.capacity = new

    def _more_seeds(self) -> None:
        self.seeds += 1
        for e, v in self.values.items():
            w = np.full((v.shape[0], self.seeds, v.shape[2]), np.nan)
            w[:, : self.seeds - 1] = v
            self.values[e] = w

    def new_row(self, key: str) -> int:
        if self.n == self.capacity:
            self._grow()
        row = self.n
        self.row[key] = row
        self.keys.append(key)
        self.n += 1
        return row

    def add_run(self, row: int, epochs: int, final: dict[str, float]) -> None:
        values = self.values.get(epochs)
        if values is None:
            values = self.values[epochs] = np.full((self.capacity, self.seeds, 4), np.nan)
            self.counts[epochs] = np.zeros(self.capacity, dtype=np.uint8)
        counts = self.counts[epochs]
        seed = int(counts[row])
        if seed == 255:
            raise ValueError(f"more than 255 runs of one cell at {epochs} epochs")
        if seed >= self.seeds:
            self._more_seeds()
            values = self.values[epochs]
        get = final.get
        values[row, seed] = (
            get("training_time", np.nan),
            get("train_accuracy", np.nan),
            get("validation_accuracy", np.nan),
            get("test_accuracy", np.nan),
        )
        counts[row] = seed + 1


def _record_error(path: Path, number: int, offset: int, problem: str) -> BenchmarkError:
    return BenchmarkError(f"NAS-Bench-101 file {str(path)!r}: record {number} at byte offset {offset} {problem}")


def import_nb101_tfrecord(path: str | os.PathLike, *, verify: bool = True, progress: bool = False) -> TableData:
    """Import ``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord`` without TensorFlow.

    Each record is UTF-8 JSON ``[module_hash, epochs, adjacency_bits (row-major, dim*dim chars),
    "op,op,...", base64(ModelMetrics)]``; records are grouped by hash (3 repeats per epoch budget).
    Each run's *last* ``evaluation_data`` entry is its final evaluation (the official file holds
    three: step 0, halfway, final). Memory grows with the number of hashes, not of records.
    ``verify=False`` skips the CRC32C checks; ``progress`` shows a progress bar (bytes read).
    """
    path = _check_file(path, "NAS-Bench-101 TFRecord file")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, desc=f"import {path.name}", unit="B", unit_scale=True)
    try:
        return _import_tfrecord(path, verify, bar)
    finally:
        if bar is not None:
            bar.close()


def _import_tfrecord(path: Path, verify: bool, bar: Any) -> TableData:
    acc = _Accumulator()
    row_of = acc.row
    number = 0
    b64decode = base64.b64decode
    loads = json.loads
    shown = 0
    for offset, data in _iter_tfrecords(path, verify):
        number += 1
        if bar is not None and not number % 20000:
            bar.update(offset - shown)
            shown = offset
        try:
            record = loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _record_error(path, number, offset, "is not UTF-8 JSON") from None
        if not (isinstance(record, list) and len(record) == 5):
            raise _record_error(
                path,
                number,
                offset,
                "is not a JSON list [hash, epochs, adjacency, ops, metrics] "
                f"(got {type(record).__name__}"
                f"{' of ' + str(len(record)) if isinstance(record, list) else ''})",
            )
        module_hash, epochs, adjacency, ops, raw_metrics = record
        if not (
            isinstance(module_hash, str)
            and isinstance(epochs, int)
            and isinstance(adjacency, str)
            and isinstance(ops, str)
            and isinstance(raw_metrics, str)
        ) or isinstance(epochs, bool):
            raise _record_error(
                path, number, offset, "has fields of the wrong types (expected str, int, str, str, str)"
            )
        if epochs <= 0:
            raise _record_error(path, number, offset, f"has {epochs} epochs")
        try:
            final, params = _final_run(b64decode(raw_metrics, validate=True))
        except (binascii.Error, ValueError) as err:
            raise _record_error(path, number, offset, f"has unreadable metrics ({err})") from None
        if final is None:
            raise _record_error(path, number, offset, "has no evaluation_data")
        row = row_of.get(module_hash)
        try:
            if row is None:
                matrix, op_row, dim = _parse_graph(adjacency, ops)
                row = acc.new_row(module_hash)
                acc.adjacency[row] = matrix
                acc.ops[row] = op_row
                acc.num_vertices[row] = dim
                acc.params[row] = -1 if params is None else params
            acc.add_run(row, epochs, final)
        except ValueError as err:
            raise _record_error(path, number, offset, f"is malformed: {err}") from None
    if acc.n == 0:
        raise BenchmarkError(f"NAS-Bench-101 file {str(path)!r} holds no records")
    if bar is not None:
        bar.update(bar.total - bar.n)
    return _tfrecord_table(acc, path, number)


def _tfrecord_table(acc: _Accumulator, path: Path, records: int) -> TableData:
    n = acc.n
    keys = acc.keys
    acc.row.clear()  # the hash -> row map is no longer needed
    order = np.array(sorted(range(n), key=keys.__getitem__), dtype=np.int64)
    data = TableData(space=SPACE, keys=[keys[i] for i in order], indices=np.full(n, -1, dtype=np.int64))
    keys.clear()
    names = ("train", "train_accuracy"), ("valid", "validation_accuracy"), ("test", "test_accuracy")
    for epochs in sorted(acc.values):
        values = acc.values.pop(epochs)[:n][order]  # (n, seeds, 4)
        for column, (split, field) in enumerate(names, start=1):
            data.add_metric(
                (DATASET, split, int(epochs)),
                values[:, :, column] * 100.0,
                f"nasbench tfrecord final {field} @{epochs}",
            )
        if epochs == max(acc.counts):
            with nan_quiet():
                data.costs[(DATASET, "train_time")] = np.nanmean(values[:, :, 0], axis=1)
        del values
    params = acc.params[:n][order].astype(np.float64)
    params[params < 0] = np.nan
    data.costs[(DATASET, "params")] = params
    data.extras["adjacency"] = acc.adjacency[:n][order]
    data.extras["ops"] = acc.ops[:n][order]
    data.extras["num_vertices"] = acc.num_vertices[:n][order]
    data.provenance.update(
        source=str(path.resolve()),
        importer="nas.benchmarks.nb101.import_nb101_tfrecord",
        records=str(records),
        epochs=",".join(str(e) for e in sorted(acc.counts)),
        accuracy_unit="percent (file stores fractions; multiplied by 100)",
        ops_codes=_OPS_DOC,
    )
    return data


_OPS_DOC = "input=-1, output=-2, conv3x3-bn-relu=0, conv1x1-bn-relu=1, maxpool3x3=2, padding=-3"


# -- community HDF5 -----------------------------------------------------------------------------
_HDF5_DATASETS = {
    # name: (expected shape after N, what it is)
    "hash": ((), "module hashes"),
    "num_vertices": ((), "vertex counts"),
    "trainable_parameters": ((), "parameter counts"),
    "adjacency": ((MAX_VERTICES, MAX_VERTICES), "adjacency matrices"),
    "operations": ((MAX_VERTICES,), "operation codes"),
    "metrics": ((4, 3, 2, 4), "epochs x seeds x {halfway, final} x {time, train, valid, test}"),
}


def import_nb101_hdf5(path: str | os.PathLike) -> TableData:
    """Import the community ``nasbench.hdf5`` layout (converted once from ``nasbench_full``).

    Datasets ``hash`` (N,) S32, ``num_vertices`` (N,) int8, ``trainable_parameters`` (N,),
    ``adjacency`` (N, 7, 7) int8, ``operations`` (N, 7) int8 (padded with 0, which is also
    conv3x3's code: sliced by ``num_vertices`` and re-padded with -3 here), and ``metrics``
    (N, 4, 3, 2, 4) = epochs {4, 12, 36, 108} x seeds x {halfway, final} x {train_time,
    train_acc, valid_acc, test_acc}. The converter copies the official API's values unchanged, so
    the accuracies are fractions; a file whose accuracies exceed 1 is taken to hold percentages.
    """
    import h5py

    path = _check_file(path, "NAS-Bench-101 HDF5 file")
    name = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise BenchmarkError(f"NAS-Bench-101 HDF5 file {name!r} is not an HDF5 file") from None
    with f:
        missing = [d for d in _HDF5_DATASETS if not isinstance(f.get(d), h5py.Dataset)]
        if missing:
            raise BenchmarkError(
                f"NAS-Bench-101 HDF5 file {name!r} lacks the dataset(s) {', '.join(missing)} "
                f"(the nasbench.hdf5 layout has {', '.join(_HDF5_DATASETS)})"
            )
        n = f["hash"].shape[0] if f["hash"].ndim == 1 else -1
        for d, (shape, what) in _HDF5_DATASETS.items():
            if f[d].shape != (n,) + shape:
                expected = "(" + ", ".join(["N", *map(str, shape)]) + ")"
                raise BenchmarkError(
                    f"NAS-Bench-101 HDF5 file {name!r}: dataset {d} ({what}) has shape "
                    f"{f[d].shape}, expected {expected} with N = {n} hashes"
                )
        if n == 0:
            raise BenchmarkError(f"NAS-Bench-101 HDF5 file {name!r} holds no architectures")
        keys = np.array([h.decode("ascii") if isinstance(h, bytes) else str(h) for h in f["hash"][()]])
        num_vertices = f["num_vertices"][()].astype(np.int8)
        params = f["trainable_parameters"][()].astype(np.float64)
        adjacency = f["adjacency"][()].astype(np.int8)
        operations = f["operations"][()].astype(np.int8)
        final = f["metrics"][:, :, :, 1, :].astype(np.float64)  # (N, 4, 3, 4)
    if num_vertices.min() < 2 or num_vertices.max() > MAX_VERTICES:
        raise BenchmarkError(f"NAS-Bench-101 HDF5 file {name!r}: num_vertices outside 2..7")
    order = np.argsort(keys, kind="stable")
    keys, num_vertices, params = keys[order], num_vertices[order], params[order]
    adjacency, operations, final = adjacency[order], operations[order], final[order]
    padding = np.arange(MAX_VERTICES)[None, :] >= num_vertices[:, None]
    operations[padding] = OP_PAD
    accuracies = final[..., 1:]
    finite = accuracies[np.isfinite(accuracies)]
    if finite.size and (finite.min() < 0 or finite.max() > 100):
        raise BenchmarkError(
            f"NAS-Bench-101 HDF5 file {name!r}: accuracies range {finite.min():g}..{finite.max():g}, "
            "neither fractions nor percentages"
        )
    fractions = not finite.size or finite.max() <= 1.0
    scale = 100.0 if fractions else 1.0

    data = TableData(space=SPACE, keys=keys.tolist(), indices=np.full(n, -1, dtype=np.int64))
    names = ("train", "train_acc"), ("valid", "valid_acc"), ("test", "test_acc")
    for i, epochs in enumerate(EPOCHS):
        for column, (split, field) in enumerate(names, start=1):
            data.add_metric(
                (DATASET, split, epochs),
                final[:, i, :, column] * scale,
                f"nasbench.hdf5 metrics[{epochs} epochs, final, {field}]",
            )
    with nan_quiet():
        data.costs[(DATASET, "train_time")] = np.nanmean(final[:, EPOCHS.index(108), :, 0], axis=1)
    data.costs[(DATASET, "params")] = params
    data.extras["adjacency"] = adjacency
    data.extras["ops"] = operations
    data.extras["num_vertices"] = num_vertices
    data.provenance.update(
        source=str(path.resolve()),
        importer="nas.benchmarks.nb101.import_nb101_hdf5",
        records=str(n),
        accuracy_unit=(
            "percent (file stores fractions; multiplied by 100)" if fractions else "percent (file stores percentages)"
        ),
        ops_codes=_OPS_DOC,
    )
    return data


# -- subset CSV ---------------------------------------------------------------------------------
_CSV_ACCURACY = {e: f"val_acc_{e}ep" for e in EPOCHS}
_CSV_COLUMNS = ("hash", "num_vertices", "adjacency", "ops", "params", "train_time_108ep_s", *_CSV_ACCURACY.values())


def import_nb101_subset_csv(path: str | os.PathLike, progress: bool = False) -> TableData:
    """Import the layout of ``nb101_subset_1000.csv``: one run per cell, validation accuracy only.

    Columns ``hash, num_vertices, adjacency`` (7x7 JSON, zero-padded), ``ops`` (JSON names),
    ``params, train_time_108ep_s, val_acc_{4,12,36,108}ep`` (fractions of a single run). The
    adjacency may be ``num_vertices`` square (as in the shipped file) or zero-padded 7x7. The table
    gets split ``valid`` for the four budgets in percent (``float(value) * 100``), n_seeds 1 (0
    where a cell is empty), std 0.
    """
    path = _check_file(path, "NAS-Bench-101 CSV file")
    name = str(path)
    try:
        handle = open_text(path)
    except OSError as err:
        raise BenchmarkError(f"cannot open NAS-Bench-101 CSV file {name!r}: {err.strerror or err}") from None
    keys: list[str] = []
    num_vertices: list[int] = []
    adjacency: list[np.ndarray] = []
    ops: list[np.ndarray] = []
    params: list[float] = []
    train_time: list[float] = []
    accuracy: dict[int, list[float]] = {e: [] for e in EPOCHS}
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error):
            raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} is not a UTF-8 CSV file") from None
        if "adjacency" not in header and "hash" in header and any(_HASH_METRIC.match(c) for c in header):
            handle.close()
            return import_nb101_hash_csv(path, progress=progress)
        missing = [c for c in _CSV_COLUMNS if c not in header]
        if missing:
            raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} lacks the column(s) {', '.join(missing)}")
        try:
            for row in reader:
                line = reader.line_num
                try:
                    matrix, op_row, dim = _csv_graph(row)
                    keys.append(row["hash"].strip())
                    num_vertices.append(dim)
                    adjacency.append(matrix)
                    ops.append(op_row)
                    params.append(_csv_number(row, "params", required=True))
                    train_time.append(_csv_number(row, "train_time_108ep_s"))
                    for e, column in _CSV_ACCURACY.items():
                        accuracy[e].append(_csv_number(row, column))
                except ValueError as err:
                    raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r}, line {line}: {err}") from None
        except (UnicodeDecodeError, csv.Error) as err:
            raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} is not a readable CSV file: {err}") from None
    n = len(keys)
    if n == 0:
        raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} holds no rows")
    if len(set(keys)) != n:
        raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} lists a hash more than once")
    order = np.argsort(np.array(keys), kind="stable")
    data = TableData(space=SPACE, keys=[keys[i] for i in order], indices=np.full(n, -1, dtype=np.int64))
    for e, values in accuracy.items():
        data.add_metric(
            (DATASET, "valid", e),
            np.asarray(values, dtype=np.float64)[order] * 100.0,
            f"nb101 subset csv {_CSV_ACCURACY[e]} (one run)",
        )
    data.costs[(DATASET, "params")] = np.asarray(params, dtype=np.float64)[order]
    data.costs[(DATASET, "train_time")] = np.asarray(train_time, dtype=np.float64)[order]
    data.extras["adjacency"] = np.stack(adjacency)[order]
    data.extras["ops"] = np.stack(ops)[order]
    data.extras["num_vertices"] = np.asarray(num_vertices, dtype=np.int8)[order]
    data.provenance.update(
        source=str(path.resolve()),
        importer="nas.benchmarks.nb101.import_nb101_subset_csv",
        records=str(n),
        accuracy_unit="percent (file stores fractions; multiplied by 100)",
        ops_codes=_OPS_DOC,
    )
    return data


_HASH_METRIC = re.compile(r"^hp(\d+)_cifar10_(train|valid|test)$")


def import_nb101_hash_csv(path: str | os.PathLike, progress: bool = False, cells=None) -> TableData:
    """Accuracies keyed by module hash: columns ``hash``, ``params`` (optional) and
    ``hp<E>_cifar10_<split>`` in percent (means; ``nb101_all_test.csv.gz`` holds
    ``hp108_cifar10_test``, the mean of 3 runs).

    The graphs come from our enumeration of the space (:func:`~nas.searchspaces.nb101.iter_hashed_cells`,
    or ``cells``: (hash, cell) pairs), which stops once every row is found: every hash must be a
    NAS-Bench-101 cell, and every recorded parameter count must equal ours (an error names the
    line). NB101's parameter count depends on the order of the vertices (the output's channels
    split unevenly go to the first vertices that feed it), and a few non-isomorphic graphs share a
    hash: the order, or the graph, whose parameters match is taken. The rows are read streaming;
    the enumeration takes about 2-4 minutes for the whole space.
    """
    from nas.searchspaces.nb101 import NB101, iter_hashed_cells

    path = _check_file(path, "NAS-Bench-101 CSV file")
    name = str(path)
    keys: list[str] = []
    params: list[float] = []
    columns: dict[str, list[float]] = {}
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        metric_columns = [c for c in header if _HASH_METRIC.match(c)]
        for c in metric_columns:
            columns[c] = []
        try:
            for row in reader:
                try:
                    key = (row.get("hash") or "").strip()
                    if not re.fullmatch(r"[0-9a-f]{32}", key):
                        raise ValueError(f"hash {key!r} is not a module hash (32 hex digits)")
                    keys.append(key)
                    params.append(_csv_number(row, "params") if "params" in header else float("nan"))
                    for c in metric_columns:
                        columns[c].append(_csv_number(row, c))
                except ValueError as err:
                    raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r}, line {reader.line_num}: {err}") from None
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as err:
            raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} is not a readable CSV file: {err}") from None
    n = len(keys)
    if n == 0:
        raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} holds no rows")
    row_of = {k: i for i, k in enumerate(keys)}
    if len(row_of) != n:
        raise BenchmarkError(f"NAS-Bench-101 CSV file {name!r} lists a hash more than once")
    adjacency = np.zeros((n, MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    ops = np.full((n, MAX_VERTICES), OP_PAD, dtype=np.int8)
    num_vertices = np.zeros(n, dtype=np.int8)
    space = NB101()
    found = 0
    collisions = 0
    nearest: dict[int, int] = {}  # row -> our parameter count of a graph of its hash that did not match
    from tqdm.auto import tqdm

    with tqdm(total=n, disable=not progress, desc="joining hashes to the space", unit="cell") as bar:
        for module_hash, cell in cells if cells is not None else iter_hashed_cells(unique=False):
            i = row_of.get(module_hash)
            if i is None or num_vertices[i]:
                continue
            ours = space.num_params(cell)
            if not np.isnan(params[i]) and int(params[i]) != ours:
                # The benchmark's vertex order decides which vertices get the remainder channels
                # when the output's channels split unevenly: try the other orders of this graph.
                cell = _order_with_params(space, cell, int(params[i]))
                if cell is None:
                    nearest[i] = ours  # another graph of this hash may be the one the benchmark trained
                    continue
                collisions += 1
            collisions += i in nearest
            dim = len(cell.ops)
            adjacency[i, :dim, :dim] = cell.matrix
            ops[i, :dim] = [OP_CODES[o] for o in cell.ops]
            num_vertices[i] = dim
            found += 1
            bar.update(1)
            if found == n:
                break
    if found < n:
        lost = [i for i in range(n) if num_vertices[i] == 0]
        first = lost[0]
        if first in nearest:
            raise BenchmarkError(
                f"NAS-Bench-101 CSV file {name!r}, line {first + 2}: {int(params[first]):,} parameters recorded, "
                f"{nearest[first]:,} in our network of every graph with hash {keys[first]} "
                f"({len(lost):,} rows unmatched)"
            )
        raise BenchmarkError(
            f"NAS-Bench-101 CSV file {name!r}, line {first + 2}: hash {keys[first]} is not a "
            f"NAS-Bench-101 cell ({len(lost):,} such rows)"
        )
    order = np.argsort(np.array(keys), kind="stable")
    data = TableData(space=SPACE, keys=[keys[i] for i in order], indices=np.full(n, -1, dtype=np.int64))
    for column, values in columns.items():
        match = _HASH_METRIC.match(column)
        assert match is not None
        data.add_metric(
            (DATASET, match.group(2), int(match.group(1))), np.asarray(values)[order], f"nb101 hash csv {column}"
        )
    if "params" in header:
        data.costs[(DATASET, "params")] = np.asarray(params, dtype=np.float64)[order]
    data.extras["adjacency"] = adjacency[order]
    data.extras["ops"] = ops[order]
    data.extras["num_vertices"] = num_vertices[order]
    data.provenance.update(
        source=str(path.resolve()), importer="nas.benchmarks.nb101.import_nb101_hash_csv", records=str(n),
        graphs="joined by module hash to nas.searchspaces.nb101's enumeration; parameters checked",
        vertex_orders_or_graphs_chosen_by_parameters=str(collisions),
        ops_codes=_OPS_DOC,
    )  # fmt: skip
    return data


def _order_with_params(space, cell, params: int):
    """The vertex order of ``cell`` (same graph, so the same hash) whose network has ``params``
    parameters, or None. NB101 splits the output's channels among the vertices that feed it and
    gives the remainder to the first ones, so the count depends on the order of the vertices."""
    import itertools

    from nas.searchspaces.nb101 import make_cell

    n = len(cell.ops)
    for interior in itertools.permutations(range(1, n - 1)):
        order = (0, *interior, n - 1)
        where = {v: k for k, v in enumerate(order)}
        if any(cell.matrix[a][b] and where[a] > where[b] for a in range(n) for b in range(n)):
            continue  # not a topological order
        matrix = [[cell.matrix[order[a]][order[b]] for b in range(n)] for a in range(n)]
        candidate = make_cell(matrix, [cell.ops[v] for v in order])
        if space.num_params(candidate) == params:
            return candidate
    return None


def _csv_number(row: dict[str, str], column: str, required: bool = False) -> float:
    text = (row.get(column) or "").strip()
    if not text:
        if required:
            raise ValueError(f"column {column} is empty")
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"column {column} holds {text!r}, not a number") from None


def _csv_graph(row: dict[str, str]) -> tuple[np.ndarray, np.ndarray, int]:
    if not (row.get("hash") or "").strip():
        raise ValueError("column hash is empty")
    try:
        matrix = np.array(json.loads(row["adjacency"] or ""), dtype=np.int64)
        names = json.loads(row["ops"] or "")
        dim = int(row["num_vertices"])
    except (json.JSONDecodeError, ValueError, TypeError):
        raise ValueError("columns adjacency, ops and num_vertices must hold JSON lists and an integer") from None
    if not 2 <= dim <= MAX_VERTICES:
        raise ValueError(f"num_vertices {dim} is outside 2..7")
    if matrix.shape not in ((dim, dim), (MAX_VERTICES, MAX_VERTICES)) or not np.isin(matrix, (0, 1)).all():
        raise ValueError(f"adjacency is not a {dim}x{dim} (or zero-padded 7x7) 0/1 matrix")
    if matrix[dim:].any() or matrix[:, dim:].any():
        raise ValueError(f"adjacency has edges beyond its {dim} vertices")
    padded = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    padded[:dim, :dim] = matrix[:dim, :dim]
    if not isinstance(names, list) or len(names) != dim:
        raise ValueError(f"ops does not list {dim} operations")
    try:
        codes = [OP_CODES[str(op)] for op in names]
    except KeyError as err:
        raise ValueError(f"unknown operation {err.args[0]!r}") from None
    op_row = np.full(MAX_VERTICES, OP_PAD, dtype=np.int8)
    op_row[:dim] = codes
    return padded, op_row, dim


def spec_of_row(extras: dict[str, np.ndarray], row: int) -> tuple[list[list[int]], list[str]]:
    """The (adjacency, ops) of one row of an imported NB101 table, for building the cell."""
    n = int(extras["num_vertices"][row])
    matrix = extras["adjacency"][row][:n, :n].astype(int).tolist()
    ops = [OP_NAMES[int(code)] for code in extras["ops"][row][:n]]
    return matrix, ops
