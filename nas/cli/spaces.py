"""``nas spaces``: the registered search spaces (built-ins and plugins)."""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli.options import print_json

EXAMPLES = "examples:\n  nas spaces\n  nas spaces --json"


def cmd_spaces(args: argparse.Namespace) -> int:
    from nas.benchmarks import default_table_path
    from nas.searchspaces import get_space, list_spaces

    rows = []
    for name in list_spaces():
        space = get_space(name)
        table = default_table_path(name)
        rows.append(
            {
                "name": name,
                "size": space.size,
                "description": space.description,
                "table": str(table) if table.is_file() else None,
            }
        )
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        status = "table imported" if r["table"] else "no table imported"
        print(f"{r['name']:<10} {r['size']:>8,}  {r['description']}  [{status}]")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "spaces", help="list the search spaces", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of text")
    p.set_defaults(func=cmd_spaces, parser=p)
    return p
