"""``nas arch``: one architecture: its string, index, parameters, FLOPs and recorded accuracies."""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli.options import print_json
from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas arch nats-tss 9930\n"
    "  nas arch nats-tss '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'\n"  # noqa: E501
    "  nas arch nats-sss 8:16:32:64:64 --num-classes 100\n"
    "  nas arch nb101 8d3f1b5ff3b2bbbbe39e6dfb3cd4f4a3   # a hash needs an imported NB101 table"
)


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
        print_json(out)
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
        raise NasError(
            f"nb101: hash {ref.strip()!r} is not in the imported table {str(table.path)!r} ({len(table):,} cells)"
        )
    return space.resolve(ref)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "arch",
        help="describe one architecture: string, index, params, FLOPs, recorded accuracies",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("space", help="nats-tss, nats-sss or nb101")
    p.add_argument("arch", help="canonical string, official index, or NB101 hash")
    p.add_argument("--num-classes", type=int, default=10, help="classifier width for params/FLOPs (default 10)")
    p.add_argument("--input-size", type=int, default=32, help="image side for FLOPs (default 32; ImageNet16-120: 16)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_arch, parser=p)
    return p
