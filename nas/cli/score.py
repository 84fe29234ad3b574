"""``nas score``: score architectures with zero-cost proxies (stored, resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nas.cli.options import Deprecated, add_inputs, add_output, add_run, add_space, parse_inputs, print_json, read_archs

EXAMPLES = (
    "examples:\n"
    "  nas score --space nats-tss --proxy near,synflow --sample 1000 --seed 0 --data cifar10:DIR\n"
    "  nas score --space nats-tss --proxy params,flops --sample all --workers 2 --out scores.csv\n"
    "  nas score --space nats-tss --proxy 'near(repetitions=8)' --archs 9930,13714\n"
    "  nas score --space nats-sss --proxy params --sample 100 --input-dataset imagenet16-120"
)


def cmd_score(args: argparse.Namespace) -> int:
    import csv
    import statistics

    from nas.api import score
    from nas.devices import resolve_device
    from nas.proxies import get_proxy, parse_proxy_spec
    from nas.scoring import select_archs
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    space = get_space(args.space)
    proxies = [get_proxy(name, **params) for name, params in parse_proxy_spec(args.proxy)]
    score_seed = args.seed if args.score_seed is None else args.score_seed
    inputs = parse_inputs(args, score_seed)
    archs = select_archs(space, args.sample, args.seed, read_archs(args.archs))
    device = resolve_device(args.device)
    chatty = not args.quiet and not args.json
    if chatty:
        info = inputs.info
        print(
            f"scoring {len(archs):,} {space.name} architectures with {', '.join(p.label() for p in proxies)}",
            file=sys.stderr,
        )
        print(
            f"inputs: {inputs.source}{':' + inputs.path if inputs.path else ''}, {info.name} "
            f"(3x{info.input_size}x{info.input_size}, {info.num_classes} classes), batch {inputs.batch_size}, "
            f"seed {inputs.seed}; networks built after torch.manual_seed({score_seed}) on {device}; "
            f"store {ScoreStore(args.store).url}",
            file=sys.stderr,
        )
    table = score(
        space,
        proxies,
        archs=archs,
        seed=score_seed,
        data=inputs,
        workers=args.workers,
        threads=args.threads or None,
        store=args.store,
        device=device,
        progress=not args.quiet,
        cluster=args.cluster,
    )
    rows = table.rows()
    if args.out:
        if args.out.endswith(".json"):
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
        else:
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(
                    f, ["space", "index", "arch", "proxy", "score", "seconds", "status"], extrasaction="ignore"
                )
                writer.writeheader()
                writer.writerows(rows)
    summary = []
    for label, column in table.columns.items():  # each label's own protocol, never a namesake's
        mine = [r for r in rows if r["proxy"] == label]
        ok = [r for r in mine if r["status"] == "ok"]
        summary.append(
            {
                "proxy": label,
                "n": len(mine),
                "ok": len(ok),
                "failed": len(mine) - len(ok),
                "median_seconds": statistics.median(r["seconds"] for r in ok) if ok else None,
                "higher_is_better": column.higher_is_better,
                "protocol": column.protocol,
            }
        )
    if args.json:
        print_json(
            {
                "space": space.name,
                "archs": len(archs),
                "wall_time_s": round(table.wall_time_s, 2),
                "device": device,
                "summary": summary,
                "scores": rows,
            }
        )
        return 0
    print(f"{'proxy':<28}{'scored':>8}{'failed':>8}{'s/arch':>10}")
    for row in summary:
        seconds = "-" if row["median_seconds"] is None else f"{row['median_seconds']:.4f}"
        print(f"{row['proxy']:<28}{row['ok']:>8,}{row['failed']:>8,}{seconds:>10}")
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed[:5]:
        print(f"  failed: {r['proxy']} on {r['arch']}: {r['reason']}")
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5} more failed scores (see --out)")
    print(f"wall time {table.wall_time_s:.1f} s" + (f"; wrote {args.out}" if args.out else ""))
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "score",
        help="score architectures with zero-cost proxies (stored, resumable)",
        description="Score architectures at initialisation. Scores go to a store keyed by "
        "(space, architecture, protocol), so a rerun scores only what is missing and "
        "`nas correlate` / `nas search` reuse them.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space(p)
    p.add_argument(
        "--proxy", required=True, help="comma-separated proxies, e.g. near,nlc,synflow or near(repetitions=8)"
    )
    p.add_argument("--sample", help="N random architectures (seeded) or 'all'")
    p.add_argument("--archs", help="explicit architectures: comma-separated indices, one arch string, or @FILE")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the sample, and of the scores unless --score-seed (default 0)"
    )
    add_inputs(p, score_seed_default="--seed")
    p.add_argument("--dataset", dest="input_dataset", action=Deprecated, new="--input-dataset", help=argparse.SUPPRESS)
    add_run(p)
    add_output(p, "write one row per (architecture, proxy) to FILE.csv or FILE.json")
    p.set_defaults(func=cmd_score, parser=p)
    return p
