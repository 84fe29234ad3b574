"""Search quality: the recorded accuracy of the cell a proxy-guided search chooses, over seeds.

For every (proxy, sampler, seed): a fresh study runs ``--evaluations`` unique evaluations on
NATS-TSS (one worker, one torch thread), the cell with the best proxy score is chosen, and its
recorded accuracy is read from the benchmark table afterwards (the search never sees it). Prints
mean +- std of the chosen cells' accuracy per (proxy, sampler), the regret to the space optimum,
and wall and CPU seconds per seed, beside published figures; ``--json`` writes every run.

    python scripts/bench_search.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py \\
        --accuracy-csv ../shared/data/nb201/nb201_accuracies.csv \\
        --proxies near,ensemble --samplers random,tpe,evolution --seeds 10 --evaluations 100

An ensemble ranks against a reference sample of the space (``docs/search.md``): it is scored once
per (proxy, score seed) into a template store, timed and reported apart (``reference_s``), and each
run's fresh store starts as a copy of it, as a user's store would hold it after the first search.

Each run scores into its own store unless ``--store URL`` is given (then scores are shared across
runs and seeds, and the times no longer measure the proxy's cost). ``--seeds 10`` means seeds
0..9; the sampler seed varies, the proxy's inputs and network initialisation stay at
``--score-seed`` (use ``--vary-score-seed`` to draw them from the seed as well).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nas.benchmarks import BenchmarkTable, default_table_path, import_benchmark
from nas.data import parse_data_arg
from nas.proxies import get_proxy, parse_proxy_spec, protocol_digest
from nas.strategies import RunOptions, SearchConfig, best, parse_objectives, run_search

PUBLISHED = [
    ("NASWOT, random search N=100 (Mellor et al. 2021)", "91.6 +- 1.7"),
    ("AZ-NAS, top-1 of the whole space", "93.63"),
    ("TE-NAS", "93.9"),
    ("space optimum (CIFAR-10 test, 200 epochs)", "94.37"),
]


def proxy_list(text: str) -> list[str]:
    """``near,ensemble(near,zico)`` -> ["near", "ensemble(near,zico)"]: proxy specs, as labels."""
    return [get_proxy(name, **params).label() for name, params in parse_proxy_spec(text)]


def open_table(args: argparse.Namespace, workdir: Path) -> BenchmarkTable:
    if args.table:
        return BenchmarkTable(args.table)
    if args.accuracy_csv:
        path = workdir / "table.h5"
        if not path.is_file():
            import_benchmark("nats-tss", args.accuracy_csv, epochs=args.epochs, out=path)
        return BenchmarkTable(path)
    return BenchmarkTable(default_table_path("nats-tss"))


def one_run(
    args: argparse.Namespace, proxy: str, sampler: str, seed: int, workdir: Path, table: BenchmarkTable
) -> dict:
    options = {}
    if sampler == "evolution":
        options = {"population": args.population, "tournament": args.tournament}
    score_seed = seed if args.vary_score_seed else args.score_seed
    inputs = parse_data_arg(args.data, batch_size=args.batch_size, seed=score_seed)
    config = SearchConfig(
        "nats-tss",
        tuple(parse_objectives(None, proxy)),
        sampler=sampler,
        sampler_options=tuple(options.items()),
        seed=seed,
        inputs=inputs,
        score_seed=score_seed,
    )
    tag = f"{len(list(workdir.glob('run-*')))}"
    run_dir = workdir / f"run-{tag}"
    run_dir.mkdir()
    store = args.store or f"sqlite:///{run_dir / 'scores.db'}"
    reference_s = None
    if not args.store and any(get_proxy(n, **p).population for n, p in parse_proxy_spec(proxy)):
        template, reference_s = reference_template(config, workdir)
        shutil.copy(template, run_dir / "scores.db")
    run_options = RunOptions(
        trials=args.evaluations, storage=f"sqlite:///{run_dir / 'study.db'}", store=store, threads=1
    )
    cpu = time.process_time()
    run = run_search(config, run_options)
    cpu = time.process_time() - cpu
    (chosen,) = best(run.evaluations, run.directions, k=1)
    accuracy = table.accuracy(chosen.key, dataset=args.dataset, split=args.split, epochs=args.epochs)
    _, optimum = table.optimum(dataset=args.dataset, split=args.split, epochs=args.epochs)
    return {
        "proxy": proxy,
        "sampler": sampler,
        "seed": seed,
        "evaluations": len(run.evaluations),
        "repeats": run.repeats,
        "arch": chosen.arch,
        "index": chosen.index,
        "score": chosen.values[0],
        "accuracy": accuracy,
        "regret": optimum - accuracy,
        "wall_s": run.wall_time_s,
        "cpu_s": cpu,
        "complete": run.complete,
        "reference_s": reference_s,
    }


_TEMPLATES: dict[str, tuple[Path, float]] = {}


def reference_template(config: SearchConfig, workdir: Path) -> tuple[Path, float]:
    """A store holding the ensemble's reference scores (scored once per protocol), and the seconds
    that took."""
    key = protocol_digest(
        {
            "objectives": [o.as_dict() for o in config.objectives],
            "inputs": config.inputs.protocol(),
            "score_seed": config.score_seed,
        }
    )
    path = workdir / f"reference-{key}.db"
    done = path.with_suffix(".seconds")
    if key not in _TEMPLATES and done.is_file():  # scored by an earlier run in this workdir
        _TEMPLATES[key] = (path, float(done.read_text()))
    if key not in _TEMPLATES:
        from nas.searchspaces import get_space
        from nas.store import ScoreStore
        from nas.strategies import ProxyObjective

        start = time.perf_counter()
        objective = ProxyObjective(
            get_space(config.space),
            config.objectives,
            config.inputs,
            budget=1,
            store=ScoreStore(f"sqlite:///{path}"),
            score_seed=config.score_seed,
        )
        objective.prepare(progress=True)
        seconds = time.perf_counter() - start
        with sqlite3.connect(path) as db:  # fold the write-ahead log in, so one file is the store
            db.execute("pragma wal_checkpoint(TRUNCATE)")
        _TEMPLATES[key] = (path, seconds)
        done.write_text(f"{seconds:.3f}")
        print(f"reference sample of {config.labels[0]}: {seconds:.1f} s (once)", file=sys.stderr, flush=True)
    return _TEMPLATES[key]


def summarise(runs: list[dict], args: argparse.Namespace) -> str:
    title = (
        f"NATS-TSS, {args.dataset} {args.split} accuracy ({args.epochs} epochs) of the cell chosen after "
        f"{args.evaluations} unique evaluations; inputs {args.data}"
    )
    lines = [
        title,
        "",
        "| proxy | sampler | seeds | accuracy (mean +- std) | min | max | regret | wall s/seed | CPU s/seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["proxy"], r["sampler"]), []).append(r)
    for (proxy, sampler), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(
            f"| {proxy} | {sampler} | {len(rs)} | {statistics.mean(acc):.2f} +- {std:.2f} | "
            f"{min(acc):.2f} | {max(acc):.2f} | {statistics.mean(r['regret'] for r in rs):.2f} | "
            f"{statistics.mean(r['wall_s'] for r in rs):.1f} | {statistics.mean(r['cpu_s'] for r in rs):.1f} |"
        )
    once = {r["proxy"]: r["reference_s"] for r in runs if r.get("reference_s")}
    for proxy, seconds in once.items():
        lines.append(f"{proxy}: its reference sample was scored once in {seconds:.0f} s (not in the per-seed times)")
    lines += [
        "",
        "published (CIFAR-10 test): " + "; ".join(f"{n}: {v}" for n, v in PUBLISHED),
        "target: >= 93.5 mean in under 5 minutes of CPU per seed",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxies", default="near", help="comma-separated proxies (default near)")
    parser.add_argument("--samplers", default="random,tpe,evolution", help="comma-separated samplers")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--evaluations", type=int, default=100, help="unique evaluations per search (default 100)")
    parser.add_argument("--data", default="gaussian", help="proxy inputs, e.g. cifar10:DIR (default gaussian)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--score-seed", type=int, default=0)
    parser.add_argument("--vary-score-seed", action="store_true", help="inputs and init seeded by the run's seed")
    parser.add_argument("--population", type=int, default=20, help="evolution population (default 20)")
    parser.add_argument("--tournament", type=int, default=5, help="evolution tournament (default 5)")
    parser.add_argument("--table", help="benchmark table (.h5) with the accuracies")
    parser.add_argument("--accuracy-csv", help="or a CSV of accuracies to import (e.g. shared nb201_accuracies.csv)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--split", default="test")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--store", help="one score store for every run (default: a fresh store per run)")
    parser.add_argument("--workdir", help="where studies and stores go (default: a temporary folder)")
    parser.add_argument("--json", help="write every run here")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    table = open_table(args, workdir)
    table.optimum(dataset=args.dataset, split=args.split, epochs=args.epochs)  # fail early if missing
    runs = []
    for proxy in proxy_list(args.proxies):
        for sampler in [s.strip() for s in args.samplers.split(",") if s.strip()]:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = one_run(args, proxy, sampler, seed, workdir, table)
                runs.append(r)
                print(
                    f"{proxy:<10} {sampler:<10} seed {seed:>2}: {r['accuracy']:.2f} (index {r['index']}, "
                    f"{r['evaluations']} evaluations, {r['repeats']} repeats) {r['wall_s']:.1f} s wall, "
                    f"{r['cpu_s']:.1f} s CPU",
                    file=sys.stderr,
                    flush=True,
                )
    print(summarise(runs, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
