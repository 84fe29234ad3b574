"""``nas correlate``: score a population (through the score store) and measure how well each
proxy ranks it against recorded accuracies. The computation is :mod:`nas.correlation`, the
Markdown/PNG report :mod:`nas.report`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from nas.cli.options import add_inputs, add_output, add_run, add_space, parse_inputs, read_archs
from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas correlate --space nats-tss --proxy near,nlc,synflow,params --dataset cifar10,cifar100,imagenet16 \\\n"
    "                --split test --epochs 200 --sample 1000 --seed 0 --data cifar10:DIR --report report/\n"
    "  nas correlate --space nats-tss --proxy params,flops --dataset cifar10 --split test --epochs 200 \\\n"
    "                --sample all --unique --out results.json      # the 9,445 unique cells\n"
    "  nas correlate --space nats-tss --proxy synflow --dataset cifar10 --split valid --epochs 200 \\\n"
    "                --sample 500 --failed worst --bootstrap 0 --json  # JSON on stdout\n"
    "\n"
    "Dataset, split and epochs are always named (the table's entries: `nas bench info`). Scores\n"
    "come from the score store (missing ones are computed first, then reused by every command);\n"
    "one score per architecture, from the --data inputs, is compared with each dataset's accuracies."
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from nas import correlation as defaults

    p = subparsers.add_parser(
        "correlate",
        help="rank agreement of proxies with recorded accuracies (tau, rho, top-k, nDCG)",
        description="Score architectures (reusing the score store) and report, per proxy and dataset, "
        "Kendall's tau-b with a bootstrap confidence interval, Spearman's rho, top-k "
        "precision and nDCG against the benchmark table's accuracies.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space(p)
    p.add_argument("--proxy", required=True, help="comma-separated proxies, e.g. near,nlc,synflow,params")
    p.add_argument("--dataset", help="required: comma-separated benchmark datasets, e.g. cifar10,cifar100,imagenet16")
    p.add_argument("--split", help="required: train, valid or test (what the table holds)")
    p.add_argument(
        "--epochs", help="required: the training schedule of the accuracies, e.g. 200 (TSS), 90 (SSS), 108 (NB101)"
    )
    p.add_argument("--sample", help="N random architectures (seeded) or 'all'")
    p.add_argument("--archs", help="explicit architectures: comma-separated indices, one arch string, or @FILE")
    p.add_argument(
        "--unique",
        nargs="?",
        const=defaults.DEFAULT_UNIQUE,
        metavar="READING",
        help="one cell per class of functionally equal cells (nats-tss): 'pruned' "
        "(9,445 classes, the set papers cite; the default reading) or 'isomorphic' "
        "(6,466, NAS-Bench-201's own count); the representative is the lowest index",
    )
    p.add_argument("--table", help="benchmark table file (default: the space's imported table)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the sample and the bootstrap, and of the scores unless --score-seed (default 0)",
    )
    add_inputs(p, score_seed_default="--seed")
    add_run(p, "worker processes for missing scores (default 1)")
    p.add_argument(
        "--failed",
        default="drop",
        choices=defaults.FAILED_POLICIES,
        help="failed scores: drop them (default) or rank them worst; counted either way",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=defaults.DEFAULT_RESAMPLES,
        metavar="N",
        help=f"bootstrap resamples for the tau CI (default {defaults.DEFAULT_RESAMPLES}, ~3 s per "
        f"proxy and dataset on all 15,625 cells; 0 = no CI)",
    )
    p.add_argument(
        "--ndcg-top",
        type=int,
        default=defaults.DEFAULT_NDCG_TOP,
        help=f"nDCG over the top N ranks by score (default {defaults.DEFAULT_NDCG_TOP})",
    )
    p.add_argument("--report", metavar="DIR", help="write report.md, results.json and PNG plots to DIR")
    add_output(p, "write the results as JSON to FILE", json_file_deprecated=True)
    p.set_defaults(func=run, parser=p)
    return p


def _datasets(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [d.strip() for d in text.split(",") if d.strip()]
    return names or None


def run(args: argparse.Namespace) -> int:
    from nas.benchmarks import open_table
    from nas.correlation import check_combinations, correlate, select_population
    from nas.devices import resolve_device
    from nas.proxies import get_proxy, parse_proxy_spec
    from nas.scoring import Scorer, proxy_label, score_many, score_table
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    to_stdout = args.json is True
    chatty = not args.quiet and not to_stdout
    space = get_space(args.space)
    table = open_table(args.table or space.name)
    if table.space_name != space.name:
        raise NasError(f"the benchmark table {str(table.path)!r} is a {table.space_name} table, not {space.name}")
    datasets = check_combinations(table, _datasets(args.dataset), args.split, args.epochs)
    if args.bootstrap < 0:
        raise NasError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.ndcg_top < 1:
        raise NasError(f"--ndcg-top must be >= 1, got {args.ndcg_top}")
    proxies = [get_proxy(name, **params) for name, params in parse_proxy_spec(args.proxy)]
    score_seed = args.seed if args.score_seed is None else args.score_seed
    inputs = parse_inputs(args, score_seed)
    archs, selection = select_population(space, args.sample, args.seed, read_archs(args.archs), args.unique)
    scorer = Scorer(space, proxies, inputs, seed=score_seed, device=resolve_device(args.device))
    _ = scorer.batch  # read the inputs now: a bad --data fails before any work starts
    store = ScoreStore(args.store)
    if chatty:
        unique = f", unique cells ({args.unique})" if args.unique else ""
        print(
            f"correlating {len(archs):,} {space.name} architectures{unique} with {', '.join(scorer.labels)} "
            f"against {', '.join(datasets)} {args.split}/{int(args.epochs)} accuracies ({table.path})",
            file=sys.stderr,
        )
        info = inputs.info
        print(
            f"inputs: {inputs.source}{':' + inputs.path if inputs.path else ''}, {info.name} "
            f"(3x{info.input_size}x{info.input_size}, {info.num_classes} classes), batch {inputs.batch_size}, "
            f"seed {inputs.seed}; store {store.url}",
            file=sys.stderr,
        )
    start = time.perf_counter()
    from nas.cluster import parse_cluster

    results = score_many(
        scorer,
        archs,
        store,
        workers=args.workers,
        progress=not args.quiet,
        threads=args.threads or None,
        cluster=parse_cluster(args.cluster),
    )
    scoring_seconds = time.perf_counter() - start
    extra: dict[str, Any] = {
        "archs": selection,
        "inputs": inputs.protocol(),
        "network_seed": score_seed,
        "num_classes": scorer.num_classes,
        "store": store.url,
        "proxy_protocols": {proxy_label(p): scorer.protocol(p) for p in proxies},
    }
    # the requested proxies' columns (not an ensemble's extra components), each with its direction
    requested = score_table(scorer, archs, results)
    corr = correlate(
        space,
        requested,
        table,
        datasets=datasets,
        split=args.split,
        epochs=args.epochs,
        keys=archs,
        failed=args.failed,
        resamples=args.bootstrap,
        seed=args.seed,
        ndcg_top=args.ndcg_top,
        protocol=extra,
    )
    wall = time.perf_counter() - start
    payload = corr.to_json()
    payload["wall_time_s"] = {"scoring": round(scoring_seconds, 2), "total": round(wall, 2)}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=1)
            f.write("\n")
    report_path = None
    if args.report:
        from nas.report import write_report

        report_path = write_report(corr, args.report, payload=payload)
    if to_stdout:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(format_table(corr))
    for label in corr.labels:
        reasons = corr.failures.get(label) or []
        for key, reason in reasons[:3]:
            print(f"  failed: {label} on {key}: {reason}")
    print(
        f"wall time {wall:.1f} s (scoring {scoring_seconds:.1f} s)"
        + (f"; wrote {args.out}" if args.out else "")
        + (f"; report {report_path}" if report_path else "")
    )
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(corr) -> str:
    """The results as a fixed-width table, one row per (proxy, dataset)."""
    fractions = list(corr.records[0]["topk_precision"]) if corr.records else []
    p = corr.protocol
    sel = p.get("archs", {})
    unique = f", unique ({sel['unique']})" if sel.get("unique") else ""
    lines = [
        (
            f"{p['space']}: {p['n_archs']:,} architectures{unique}; accuracies {corr.split} split, "
            f"{corr.epochs} epochs; failed scores: {p['failed_policy']}; "
            f"tau CI: {p['statistics']['bootstrap']['resamples']} bootstrap resamples"
        )
    ]
    width = max([len("proxy")] + [len(label) for label in corr.labels]) + 2
    dwidth = max([len("dataset")] + [len(d) for d in corr.datasets]) + 2
    head = (
        f"{'proxy':<{width}}{'dataset':<{dwidth}}{'n':>7}{'failed':>8}{'no acc':>8}"
        f"{'tau-b':>8}  {'95% CI':<16}{'rho':>7}"
        + "".join(f"{'P@' + f:>8}" for f in fractions)
        + f"{'nDCG@' + str(p['statistics']['ndcg']['top']):>10}"
    )
    lines += [head, "-" * len(head)]
    for r in corr.records:
        ci = r.get("kendall_tau_ci")
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        lines.append(
            f"{r['proxy']:<{width}}{r['dataset']:<{dwidth}}{r['n']:>7,}{r['n_failed']:>8,}{r['n_no_accuracy']:>8,}"
            f"{_fmt(r['kendall_tau']):>8}  {ci_text:<16}{_fmt(r['spearman']):>7}"
            + "".join(f"{_fmt(r['topk_precision'][f]):>8}" for f in fractions)
            + f"{_fmt(r['ndcg']):>10}"
        )
    return "\n".join(lines)
