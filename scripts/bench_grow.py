"""The growth experiment of docs/grow.md: zcnas's TINY against GroMo, training from scratch and random neurons.

Task ``digits-mlp``: scikit-learn's digits (1,347 training / 450 test images, a fixed split), an
MLP with two hidden layers of 1 neuron each and SELU (GroMo's default activation), grown to
``--budget`` parameters. Every arm has the same schedule: Adam (``--lr``), batch 64,
``--epochs-per-step`` epochs before the first growth step and after each, at most
``--neurons-per-step`` neurons per step, then ``--final-epochs`` epochs. Arms, on each seed:

- ``zcnas``: ``nas.strategies.grow.grow`` (statistics on the whole training split, where to grow
  by the bottleneck, amplitude searched on 512 training images);
- ``zcnas-total``: the same, choosing the layer by GroMo's criterion (bottleneck + weight update);
- ``gromo``: GroMo's own loop (``GrowingMLP``, ``compute_statistics`` with a summed loss,
  ``compute_optimal_updates``, ``select_best_update``, its ``line_search`` over the amplitude on
  the full training loss, ``apply_change``; a new Adam after each change, as GroMo requires);
- ``random``: the zcnas run's layers and sizes, with random neurons (GroMo's copy-uniform);
- ``scratch`` / ``scratch-gromo``: the final architecture of zcnas / GroMo, trained from a fresh
  initialisation for the same total number of epochs.

    python scripts/bench_grow.py --out bench_grow --seeds 5
    python scripts/bench_grow.py --out bench_grow --summary-only

Rows go to OUT/runs.jsonl as they finish (rerun to go on); OUT/summary.json and OUT/growth.png
are written at the end. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ARMS = ("zcnas", "zcnas-total", "gromo", "random", "scratch", "scratch-gromo")


def mlp(widths, in_features=64, classes=10, seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    prev = in_features
    for w in widths:
        layers += [nn.Linear(prev, w), nn.SELU()]
        prev = w
    return nn.Sequential(*layers, nn.Linear(prev, classes))


def config(args, seed, **kw):
    from nas.strategies.grow import GrowthConfig

    return GrowthConfig(
        max_params=args.budget, epochs_per_step=args.epochs_per_step, final_epochs=args.final_epochs,
        neurons_per_step=args.neurons_per_step, lr=args.lr, stat_samples=4096, seed=seed, **kw,
    )  # fmt: skip


def run_zcnas(args, data, seed, **kw) -> dict:
    from nas.strategies.grow import grow

    model = mlp([1, 1], seed=seed)
    started, cpu = time.perf_counter(), time.process_time()
    result = grow(model, *data, config(args, seed, **kw))
    return {"history": result.history, "widths": result.widths, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu}  # fmt: skip


def run_gromo(args, data, seed) -> dict:
    """GroMo's growth loop, written with its public API as its tutorial does."""
    from gromo.containers.growing_mlp import GrowingMLP
    from gromo.utils.utils import line_search

    from nas.strategies.grow.loop import evaluate, train_epochs

    (x, y), test = data
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GrowingMLP(64, 10, hidden_size=1, number_hidden_layers=2, activation=nn.SELU())
    started, cpu = time.perf_counter(), time.process_time()
    history = []

    def record(row):
        row["params"] = sum(p.numel() for p in model.parameters())
        row["widths"] = [layer.out_features for layer in model.layers[:-1]]
        row["train_loss"], row["train_acc"] = evaluate(model, x, y)
        row["test_loss"], row["test_acc"] = evaluate(model, *test)
        history.append(row)

    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_epochs(model, opt, x, y, args.epochs_per_step, 64, gen)
    record({"step": 0, "event": "start"})
    while True:
        w0, c0 = time.perf_counter(), time.process_time()
        model.init_computation()
        model.zero_grad()
        F.cross_entropy(model(x), y, reduction="sum").backward()
        model.update_computation()
        model.compute_optimal_updates(maximum_added_neurons=args.neurons_per_step)
        model.reset_computation()
        best = model.select_best_update()
        layer = model.currently_updated_layer
        k = int(layer.eigenvalues_extension.shape[0])
        per_neuron = layer.previous_module.in_features + 1 + layer.out_features
        if history[-1]["params"] + k * per_neuron > args.budget:
            k = (args.budget - history[-1]["params"]) // per_neuron
            if k < 1:
                model.currently_updated_layer.delete_update()
                break
            layer.sub_select_optimal_added_parameters(k)
        evaluations = 0

        def cost(gamma):
            nonlocal evaluations
            evaluations += 1
            model.set_scaling_factor(gamma)
            with torch.no_grad():
                return float(F.cross_entropy(model.extended_forward(x), y))

        gamma, _ = line_search(cost)
        model.set_scaling_factor(gamma)
        model.apply_change()
        growth_wall, growth_cpu = time.perf_counter() - w0, time.process_time() - c0
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        train_epochs(model, opt, x, y, args.epochs_per_step, 64, gen)
        record({"step": len(history), "event": "grow", "layer": best, "added": k, "amplitude": gamma**2,
                "loss_evaluations": evaluations, "growth_wall_s": growth_wall, "growth_cpu_s": growth_cpu})  # fmt: skip
    train_epochs(model, opt, x, y, args.final_epochs, 64, gen)
    record({"step": len(history), "event": "final"})
    widths = history[-1]["widths"]
    return {"history": history, "widths": widths, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu}  # fmt: skip


def run_scratch(args, data, seed, widths, epochs) -> dict:
    from nas.strategies.grow.loop import evaluate, train_epochs

    (x, y), test = data
    model = mlp(widths, seed=1000 + seed)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    train_epochs(model, torch.optim.Adam(model.parameters(), lr=args.lr), x, y, epochs, 64, gen)
    row = {"params": sum(p.numel() for p in model.parameters()), "widths": widths, "epochs": epochs}
    row["train_loss"], row["train_acc"] = evaluate(model, x, y)
    row["test_loss"], row["test_acc"] = evaluate(model, *test)
    return {"history": [row], "widths": widths, "wall_s": time.perf_counter() - started}


def read(path: Path) -> dict:
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[(r["arm"], r["seed"])] = r
    return rows


def mean_ci(values) -> dict:
    a = np.asarray(values, dtype=float)
    half = 1.96 * a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "ci95": float(half), "n": int(len(a))}


def summary(rows: dict) -> dict:
    out: dict = {}
    for arm in ARMS:
        runs = [r for (a, _), r in sorted(rows.items()) if a == arm]
        if not runs:
            continue
        final = [r["history"][-1] for r in runs]
        entry = {
            "test_acc": mean_ci([f["test_acc"] for f in final]),
            "train_acc": mean_ci([f["train_acc"] for f in final]),
            "params": mean_ci([f["params"] for f in final]),
            "widths": [r["widths"] for r in runs],
            "wall_s": mean_ci([r["wall_s"] for r in runs]),
        }
        steps = [s for r in runs for s in r["history"] if s.get("event") == "grow"]
        if steps and "growth_wall_s" in steps[0]:
            entry["growth_step_wall_s"] = mean_ci([s["growth_wall_s"] for s in steps])
            entry["growth_step_cpu_s"] = mean_ci([s["growth_cpu_s"] for s in steps])
            entry["growth_steps"] = len(steps)
        if steps and "loss_evaluations" in steps[0]:
            entry["loss_evaluations_per_step"] = mean_ci([s["loss_evaluations"] for s in steps])
        checks = [s for s in steps if s.get("first_order")]
        if checks:
            ratio = [s["measured_slope"] / s["first_order"] for s in checks]
            entry["slope_measured_over_predicted"] = {**mean_ci(ratio), "median": float(np.median(ratio))}
            entry["decrease_at_amplitude_over_first_order"] = float(
                np.median([s["actual_decrease"] / s["predicted_decrease"] for s in checks])
            )
        out[arm] = entry
    paired = {}
    for a, b in (("zcnas", "gromo"), ("zcnas", "scratch"), ("zcnas", "random"), ("gromo", "scratch-gromo")):
        seeds = sorted({s for (arm, s) in rows if arm == a} & {s for (arm, s) in rows if arm == b})
        if seeds:
            diff = [rows[(a, s)]["history"][-1]["test_acc"] - rows[(b, s)]["history"][-1]["test_acc"] for s in seeds]
            paired[f"{a} - {b}"] = mean_ci(diff)
    out["paired_test_acc_difference"] = paired
    if "zcnas" in out and "gromo" in out and "growth_step_wall_s" in out["gromo"]:
        out["gromo_over_zcnas_growth_step_time"] = (
            out["gromo"]["growth_step_wall_s"]["mean"] / out["zcnas"]["growth_step_wall_s"]["mean"]
        )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="bench_grow")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, default=3000, help="parameters to grow to (default 3000)")
    p.add_argument("--epochs-per-step", type=int, default=2)
    p.add_argument("--final-epochs", type=int, default=20)
    p.add_argument("--neurons-per-step", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nas.data import load_digits

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    rows = read(log)
    data = (load_digits("train"), load_digits("test"))
    arms = args.arms.split(",")
    for seed in range(args.seeds) if not args.summary_only else []:
        for arm in arms:
            if (arm, seed) in rows:
                continue
            if arm == "zcnas":
                r = run_zcnas(args, data, seed)
            elif arm == "zcnas-total":
                r = run_zcnas(args, data, seed, select="total")
            elif arm == "gromo":
                r = run_gromo(args, data, seed)
            elif arm == "random":
                base = rows[("zcnas", seed)]["history"]
                schedule = [[s["layer"], s["added"]] for s in base if s.get("event") == "grow"]
                r = run_zcnas(args, data, seed, addition="random", schedule=schedule)
            else:
                source = rows[("zcnas" if arm == "scratch" else "gromo", seed)]
                grown_steps = sum(1 for s in source["history"] if s.get("event") in ("start", "grow"))
                epochs = grown_steps * args.epochs_per_step + args.final_epochs
                r = run_scratch(args, data, seed, source["widths"], epochs)
            r.update(arm=arm, seed=seed, args=vars(args))
            rows[(arm, seed)] = r
            with open(log, "a") as f:
                f.write(json.dumps(r) + "\n")
            last = r["history"][-1]
            print(f"{arm} seed {seed}: widths {r['widths']}, {last['params']} params, test {last['test_acc']:.2f}%, "
                  f"{r['wall_s']:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    result = summary(rows)
    result["protocol"] = {k: v for k, v in vars(args).items() if k != "summary_only"}
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    from nas.strategies.grow import plot_growth

    seed0 = {arm: rows[(arm, 0)]["history"] for arm in ("zcnas", "gromo", "random") if (arm, 0) in rows}
    points = {f"{arm} (seed 0)": (rows[(arm, 0)]["history"][-1]["params"], rows[(arm, 0)]["history"][-1]["test_acc"])
              for arm in ("scratch", "scratch-gromo") if (arm, 0) in rows}  # fmt: skip
    if seed0:
        plot_growth(seed0, out / "growth.png", points)
    print(json.dumps({k: v for k, v in result.items() if k != "protocol"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
