"""The supernet experiment of docs/supernet.md: does isometry + strict fairness make a
weight-sharing supernet rank NATS-TSS cells, and does it add to the zero-cost ensemble?

Every (arm, seed) trains a supernet (resumable: rerun to go on), keeping a snapshot at each
quarter of its budget; each snapshot scores ``--curve-cells`` of the 500 reference cells (the
budget curve) and the last scores all 500, through the score store like any proxy. Then the
summary: Kendall tau (95% bootstrap CI) and Spearman against CIFAR-10 test accuracy (200 epochs),
top-10% precision, regret of the top-scored cell, tau against the number of convolutions in the
cell (the bias check), training-loss curves, beside NEAR, the default ensemble and ``params`` on
the same cells, and the pre-registered combination on the held-out cells. Timings: seconds per
training step against one forward+backward of a path, milliseconds per scored architecture.

    python scripts/bench_supernet.py --shared ../shared/data --out bench_supernet --jobs 2

``--jobs`` runs that many (arm, seed) jobs at once, each on one torch thread. ``--minutes`` stops
starting new work after that long; rerunning goes on. ``--summary-only`` skips training.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ARMS = {
    # name: (init, sampling, train_only, bn_affine, metric)
    "isometric+fair": ("isometric", "fair", "all", False, "accuracy"),
    "kaiming+fair": ("kaiming", "fair", "all", False, "accuracy"),
    "isometric+uniform": ("isometric", "uniform", "all", False, "accuracy"),
    "kaiming+uniform": ("kaiming", "uniform", "all", False, "accuracy"),
    "frozen-bn (isometric+fair)": ("isometric", "fair", "bn", True, "bn_scale"),
}
SLUG = {name: name.split(" ")[0].replace("+", "_") for name in ARMS}


def arm_configs(arm: str, seed: int, args):
    from nas.strategies.supernet import SupernetConfig, TrainConfig

    init, sampling, train_only, affine, metric = ARMS[arm]
    epochs = args.fair_epochs * (5 if sampling == "uniform" else 1)  # equal images seen per op
    config = SupernetConfig(channels=args.channels, cells_per_stage=args.cells, bn_every_op=True, bn_affine=affine)
    training = TrainConfig(init=init, sampling=sampling, epochs=epochs, train_only=train_only, seed=seed)
    return config, training, metric, epochs // 4


def data_dir(args) -> str:
    return str(Path(args.shared) / "cifar10" / "cifar-10-batches-py")


def reference_cells(args) -> list[int]:
    from nas.reproduce.plan import reference_cells as cells

    return cells(Path(args.shared))


def supernet_label(path: Path, metric: str, images: int) -> str:
    extra = "" if metric == "accuracy" else f",metric={metric}"
    return f"supernet(checkpoint={path},images={images}{extra})"


def run_job(job: tuple[str, int, dict]) -> dict:
    """Train one (arm, seed) and score its snapshots; returns its timings."""
    arm, seed, raw = job
    args = argparse.Namespace(**raw)
    import torch

    import nas
    from nas.data import load_images
    from nas.strategies.supernet import train_supernet

    torch.set_num_threads(1)
    config, training, metric, every = arm_configs(arm, seed, args)
    out = Path(args.out) / "checkpoints" / f"{SLUG[arm]}_s{seed}.pt"
    images, labels = load_images("cifar10", data_dir(args), "train")
    started = time.perf_counter()
    state = train_supernet(config, training, images, labels, out, snapshot_every=every)
    train_s = time.perf_counter() - started
    cells = reference_cells(args)
    store = f"sqlite:///{Path(args.out).resolve() / 'scores.db'}"
    scored = {}
    for epoch in range(every, training.epochs + 1, every):
        snap = out.with_name(f"{out.name}.epoch{epoch}")
        which = cells if epoch == training.epochs else cells[: args.curve_cells]
        start = time.perf_counter()
        nas.score(
            "nats-tss",
            supernet_label(snap, metric, args.eval_images),
            archs=which,
            data=f"cifar10:{data_dir(args)}",
            store=store,
        )
        scored[epoch] = (time.perf_counter() - start, len(which))
    return {"arm": arm, "seed": seed, "train_s": train_s, "history": state.history, "scored": scored}


# -- the summary ---------------------------------------------------------------------------------
def accuracies(args) -> dict[int, float]:
    import csv

    with open(Path(args.shared) / "nb201" / "nb201_accuracies.csv") as f:
        return {int(r["index"]): float(r["cifar10_test"]) for r in csv.DictReader(f)}


def num_convs(cell) -> int:
    return sum(op.startswith("nor_conv") for op in cell.ops)


def figures(scores: np.ndarray, acc: np.ndarray, convs: np.ndarray, seed: int = 0) -> dict:
    from nas.stats import bootstrap_tau_ci, kendall_tau, spearman, topk_precision

    ok = np.isfinite(scores)
    s, a = scores[ok], acc[ok]
    low, high = bootstrap_tau_ci(s, a, 1000, seed)
    return {
        "n": int(ok.sum()),
        "tau": kendall_tau(s, a),
        "tau_ci": [low, high],
        "spearman": spearman(s, a),
        "top10": topk_precision(s, a, 0.1),
        "regret": float(a.max() - a[np.argmax(s)]),
        "tau_convs": kendall_tau(s, convs[ok].astype(float)),
    }


def column(label: str, cells, data: str, store: str) -> np.ndarray:
    import nas

    table = nas.score("nats-tss", label, archs=cells, data=data, store=store)
    return np.array(table.values_of(table.labels[0]), dtype=float)


def summary(args) -> dict:
    import nas
    from nas.proxies.ensemble import DEFAULT_COMPONENTS, log_rank_aggregate
    from nas.reproduce.plan import holdout_cells
    from nas.scoring import select_archs

    tss = nas.get_space("nats-tss")
    cells = reference_cells(args)
    acc_of = accuracies(args)
    acc = np.array([acc_of[i] for i in cells])
    convs = np.array([num_convs(tss.from_index(i)) for i in cells])
    data = f"cifar10:{data_dir(args)}"
    store = f"sqlite:///{Path(args.out).resolve() / 'scores.db'}"
    out: dict = {"protocol": vars(args), "arms": {}, "baselines": {}, "curves": {}, "losses": {}}
    for label in ("near", "ensemble", "params"):
        out["baselines"][label] = figures(column(label, cells, data, store), acc, convs)
    for arm in ARMS:
        rows = []
        for seed in range(args.seeds):
            config, training, metric, every = arm_configs(arm, seed, args)
            ckpt = Path(args.out) / "checkpoints" / f"{SLUG[arm]}_s{seed}.pt"
            last = ckpt.with_name(f"{ckpt.name}.epoch{training.epochs}")
            if not last.exists():
                continue
            from nas.strategies.supernet import load_checkpoint

            out["losses"].setdefault(arm, []).append([h["loss"] for h in load_checkpoint(last).history])
            fig = figures(column(supernet_label(last, metric, args.eval_images), cells, data, store), acc, convs)
            fig["seed"] = seed
            rows.append(fig)
            curve = []
            for epoch in range(every, training.epochs + 1, every):
                snap = ckpt.with_name(f"{ckpt.name}.epoch{epoch}")
                k = args.curve_cells
                s = column(supernet_label(snap, metric, args.eval_images), cells[:k], data, store)
                passes = load_checkpoint(snap).history[-1]["images_per_op"]
                curve.append({"epoch": epoch, "images_per_op": passes, **figures(s, acc[:k], convs[:k])})
            out["curves"].setdefault(arm, []).append(curve)
        if rows:
            taus = [r["tau"] for r in rows]
            out["arms"][arm] = {
                "seeds": rows,
                "tau_mean": float(np.mean(taus)),
                "tau_sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else math.nan,
            }
    # the pre-registered combination, on held-out cells
    fair0 = Path(args.out) / "checkpoints" / "isometric_fair_s0.pt"
    cfg = arm_configs("isometric+fair", 0, args)[1]
    last = fair0.with_name(f"{fair0.name}.epoch{cfg.epochs}")
    if last.exists():
        ref = [tss.from_index(i) for i in cells]
        held = holdout_cells(tss, select_archs(tss, 1000, 0) + ref)
        hacc = np.array([acc_of[tss.index_of(c)] for c in held])
        keys = [tss.index_of(c) for c in held]
        members = [column(p, keys, data, store) for p in DEFAULT_COMPONENTS]
        directions = [nas.get_proxy(p).higher_is_better for p in DEFAULT_COMPONENTS]
        sup = column(supernet_label(last, "accuracy", args.eval_images), keys, data, store)
        base = log_rank_aggregate(members, directions)
        combo = log_rank_aggregate([*members, sup], [*directions, True])
        out["combination"] = paired_difference(combo, base, hacc)
        out["combination"]["supernet_alone"] = figures(sup, hacc, np.zeros(len(hacc)))["tau"]
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, acc: np.ndarray, resamples: int = 1000) -> dict:
    from nas.stats import kendall_tau, paired_tau_difference

    _, low, high = paired_tau_difference(a, b, acc, resamples)
    tau_a, tau_b = kendall_tau(a, acc), kendall_tau(b, acc)
    return {
        "tau_combination": tau_a,
        "tau_ensemble": tau_b,
        "difference": tau_a - tau_b,
        "difference_ci": [float(low), float(high)],
        "adds": bool(low > 0),
        "cells": len(acc),
    }


def logged_jobs(log: Path) -> dict[tuple[str, int], dict]:
    """Each finished (arm, seed) in the job log, as first logged (a later rerun found its scores stored)."""
    jobs: dict[tuple[str, int], dict] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        job = json.loads(line)
        jobs.setdefault((job["arm"], job["seed"]), job)
    return jobs


def scoring_times(log: Path) -> dict:
    """Seconds to score the 500 cells with a final checkpoint (through the store), over jobs."""
    runs = []
    for job in logged_jobs(log).values():
        seconds, n = job["scored"][max(job["scored"], key=int)]
        runs.append((seconds, n))
    if not runs:
        return {}
    seconds = float(np.median([s for s, _ in runs]))
    return {"score_500_s": seconds, "score_ms_per_arch": 1e3 * seconds / runs[0][1], "jobs": len(runs)}


def timings(args) -> dict:
    """A training step against its floor (1 torch thread): the forward+backward passes of the same
    paths on the same batch, one by one, against the step that runs them (with zero_grad and the
    SGD update). A fair step should cost its 5 passes and no more."""
    import torch
    import torch.nn.functional as F

    from nas.strategies.supernet import Supernet, SupernetConfig
    from nas.strategies.supernet.sampling import step_paths

    torch.set_num_threads(1)
    net = Supernet(SupernetConfig(channels=args.channels, cells_per_stage=args.cells))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    paths = step_paths("fair", np.random.default_rng(0))

    def passes(which):
        for path in which:
            F.cross_entropy(net(x, path), y).backward()

    def step(which):
        optimizer.zero_grad(set_to_none=True)
        passes(which)
        optimizer.step()

    def per(fn, n=10):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    floor = per(lambda: passes(paths))
    return {
        "floor_fwd_bwd_s": floor / len(paths),
        "fair_floor_s": floor,
        "fair_step_s": per(lambda: step(paths)),
        "uniform_floor_s": per(lambda: passes(paths[:1])),
        "uniform_step_s": per(lambda: step(paths[:1])),
    }


PUBLISHED = [  # METHODS 4.4: re-computed from released per-architecture results, all 15,625 cells, CIFAR-10
    ("one-shot, C=16 N=5, 600 epochs (few-shot-NAS repo)", "0.485"),
    ("few-shot, 5 sub-supernets x 300 epochs (same repo)", "0.551"),
    ("uniform single path, C=16, batch 64, 250 epochs (EFS-NAS logs, 3 seeds)", "0.592 +- 0.008"),
    ("same, 1,000 epochs, batch 128 (4 seeds)", "0.683 +- 0.017"),
    ("C=5, batch 128, 1,000 epochs (5 seeds)", "0.714 +- 0.006"),
]


def _f(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def render_markdown(result: dict) -> str:
    """The results section of docs/supernet.md from a summary."""
    p = result["protocol"]
    lines = [
        f"Protocol: NATS-TSS supernet C={p['channels']}, {p['cells']} cell(s) per stage; fair arms {p['fair_epochs']} "
        f"epochs of the 5,085 shared CIFAR-10 training images (uniform arms 5x as many: the same images per op); "
        f"scores on the first {p['eval_images']} of the 1,017 held-out (test-batch) images, batch-statistics BN; "
        "Kendall tau-b (95% bootstrap CI, 1,000 resamples) and Spearman against NB201 CIFAR-10 test accuracy "
        "(200 epochs) on the 500 reference cells (`peer_scores_nb201_500.csv`); top-10% precision; regret = best "
        "accuracy among the 500 minus that of the top-scored cell; `tau(convs)` = tau between the score and the "
        "number of convolutions in the cell (the bias check). One torch thread per job, two jobs at once.",
        "",
        "| arm | seeds | tau mean +- sd | per seed: tau [95% CI] | Spearman | top-10% | regret | tau(convs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, row in result["arms"].items():
        seeds = row["seeds"]
        per = "; ".join(f"{_f(r['tau'])} [{_f(r['tau_ci'][0], 2)}, {_f(r['tau_ci'][1], 2)}]" for r in seeds)
        mean = lambda k: float(np.mean([r[k] for r in seeds]))  # noqa: E731
        lines.append(
            f"| {arm} | {len(seeds)} | {_f(row['tau_mean'])} +- {_f(row['tau_sd'])} | {per} | {_f(mean('spearman'))} "
            f"| {_f(mean('top10'), 2)} | {_f(mean('regret'), 2)} | {_f(mean('tau_convs'))} |"
        )
    for label, fig in result["baselines"].items():
        lines.append(
            f"| `{label}` (zero-cost, same cells) | – | {_f(fig['tau'])} | [{_f(fig['tau_ci'][0], 2)}, "
            f"{_f(fig['tau_ci'][1], 2)}] | {_f(fig['spearman'])} | {_f(fig['top10'], 2)} | {_f(fig['regret'], 2)} "
            f"| {_f(fig['tau_convs'])} |"
        )
    lines += ["", f"Tau against the budget (the first {p['curve_cells']} of the 500 cells; mean over seeds):", ""]
    lines += ["| arm | " + " | ".join(f"{q}/4 budget" for q in (1, 2, 3, 4)) + " |", "|---|---|---|---|---|"]
    for arm, curves in result["curves"].items():
        cols = []
        for q in range(4):
            taus = [c[q]["tau"] for c in curves if len(c) > q]
            images = curves[0][q]["images_per_op"] if len(curves[0]) > q else None
            cols.append(f"{_f(float(np.mean(taus)))} ({images:,} img/op)" if taus else "–")
        lines.append(f"| {arm} | " + " | ".join(cols) + " |")
    lines += ["", "Training loss per epoch (each seed):", ""]
    for arm, losses in result["losses"].items():
        shown = "; ".join(", ".join(f"{v:.3f}" for v in seed[:: max(1, len(seed) // 8)]) for seed in losses)
        lines.append(f"- {arm}: {shown}")
    if "combination" in result:
        c = result["combination"]
        lines += [
            "",
            f"The pre-registered combination on {c['cells']} held-out cells: tau {_f(c['tau_combination'])} against "
            f"the default ensemble's {_f(c['tau_ensemble'])}, difference {c['difference']:+.3f} (95% paired "
            f"bootstrap [{c['difference_ci'][0]:+.3f}, {c['difference_ci'][1]:+.3f}]); the supernet alone "
            f"{_f(c['supernet_alone'])}. By the registered rule the supernet "
            + ("**adds** to the ensemble." if c["adds"] else "**does not add** to the ensemble."),
        ]
    t = result.get("timings")
    if t:
        lines += [
            "",
            f"Cost (one torch thread, this machine, busy with the experiment): a fair step's 5 paths, "
            f"forward+backward one by one on 64 images, {t['fair_floor_s'] * 1e3:.0f} ms "
            f"({t['floor_fwd_bwd_s'] * 1e3:.0f} ms a path); the fair step that runs them with its update "
            f"{t['fair_step_s'] * 1e3:.0f} ms ({t['fair_step_s'] / t['fair_floor_s']:.2f}x its floor); "
            f"a uniform step {t['uniform_step_s'] * 1e3:.0f} ms ({t['uniform_step_s'] / t['uniform_floor_s']:.2f}x).",
        ]
        if "score_500_s" in t:
            lines[-1] += (
                f" Scoring the 500 cells with a trained supernet ({p['eval_images']} images each, through the "
                f"store; median over {t['jobs']} jobs, two at once): {t['score_500_s']:.0f} s, "
                f"{t['score_ms_per_arch']:.0f} ms per architecture."
            )
    lines += ["", "Published one-shot supernets on NB201 (METHODS 4.4, all 15,625 cells, full CIFAR-10):", ""]
    lines += ["| supernet | Kendall tau |", "|---|---|"] + [f"| {a} | {b} |" for a, b in PUBLISHED]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", required=True, help="the shared data folder (cifar10/, nb201/, reference/)")
    p.add_argument("--out", default="bench_supernet", help="checkpoints, scores and results go here")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms (default: all)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--fair-epochs", type=int, default=8, help="epochs of the fair arms (uniform: 5x, equal images per op)"
    )
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--cells", type=int, default=1, help="searchable cells per stage")
    p.add_argument("--eval-images", type=int, default=500, help="held-out images per score")
    p.add_argument("--curve-cells", type=int, default=200, help="cells scored at the intermediate snapshots")
    p.add_argument("--jobs", type=int, default=2, help="(arm, seed) jobs at once, one torch thread each")
    p.add_argument("--minutes", type=float, default=None, help="start no new job after this long")
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--json", default=None, help="write the summary here (default OUT/summary.json)")
    args = p.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"unknown arm(s) {unknown}; expected {list(ARMS)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    raw = {k: v for k, v in vars(args).items()}
    if not args.summary_only:
        deadline = None if args.minutes is None else time.monotonic() + 60 * args.minutes
        log = Path(args.out) / "jobs.jsonl"
        finished = set(logged_jobs(log))  # a rerun goes on where the last one stopped
        jobs = [(arm, seed, raw) for seed in range(args.seeds) for arm in arms if (arm, seed) not in finished]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            pending = {}
            todo = list(jobs)
            while todo or pending:
                while todo and len(pending) < args.jobs and (deadline is None or time.monotonic() < deadline):
                    job = todo.pop(0)
                    pending[pool.submit(run_job, job)] = job
                if not pending:
                    break
                done = next(as_completed(pending))
                job = pending.pop(done)
                result = done.result()
                with open(log, "a") as f:
                    f.write(json.dumps(result) + "\n")
                print(f"done: {job[0]} seed {job[1]} ({result['train_s']:.0f} s training)", file=sys.stderr, flush=True)
    result = summary(args)
    result["timings"] = timings(args)
    result["timings"].update(scoring_times(Path(args.out) / "jobs.jsonl"))
    path = Path(args.json or Path(args.out) / "summary.json")
    path.write_text(json.dumps(result, indent=1, default=float))
    path.with_suffix(".md").write_text(render_markdown(result))
    print(json.dumps({k: result[k] for k in ("arms", "baselines", "timings")}, indent=1, default=float)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
