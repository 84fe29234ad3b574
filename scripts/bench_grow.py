"""The growth experiment of docs/grow.md: zcnas's TINY against GroMo, training from scratch and random neurons.

Tasks (``--task``):

- ``digits-mlp``: scikit-learn's digits (1,347 training / 450 test images, a fixed split), an MLP
  with two hidden layers of 1 neuron each and SELU (GroMo's default activation): GroMo's
  ``GrowingMLP``, and ours with the same initial weights.
- ``cifar-cnn``: the shared CIFAR-10 images (5,085 training / 1,017 test), three 3x3 convolutions
  of 2 channels (stride 1, BatchNorm, ReLU), a global average pool and a Linear classifier:
  GroMo's ``VGG([2, 2, 2])`` with one classifier layer, and ours with the same initial weights.
  GroMo grows only between convolutions (its conv-to-linear growth is not implemented), so
  ``zcnas-convconv`` grows only those two layers too, and ``zcnas`` may grow all three.

Every arm has the same schedule: Adam (``--lr``), batch 64, ``--epochs-per-step`` epochs before
the first growth step and after each, at most ``--neurons-per-step`` neurons per step, grown to
``--budget`` parameters, then ``--final-epochs`` epochs. Arms, on each seed:

- ``zcnas``: ``nas.strategies.grow.grow`` (statistics on ``--stat-samples`` training images,
  where to grow by the bottleneck, amplitude searched on 512 training images);
- ``zcnas-total``: the same, choosing the layer by GroMo's criterion (bottleneck + weight update);
- ``gromo``: GroMo's own loop (``compute_statistics``-style pass with a summed loss,
  ``compute_optimal_updates``, ``select_best_update``, its ``line_search`` over the amplitude,
  ``apply_change``; a new Adam after each change, as GroMo requires). The statistics use the
  same images as ours; the line search the whole training split on digits, and 512 training
  images on CIFAR (its full-split search would take hours per step here);
- ``random``: the zcnas run's layers and sizes, with random neurons (GroMo's copy-uniform);
- ``scratch`` / ``scratch-gromo``: the final architecture of zcnas / GroMo, trained from a fresh
  initialisation (the same scheme) for the same total number of epochs;
- ``scratch-uniform``: equal widths, the widest within zcnas's final parameter count, trained
  the same way (what one would train without a width search).

    python scripts/bench_grow.py --task digits-mlp --out bench_grow --seeds 10
    python scripts/bench_grow.py --task cifar-cnn --shared ../shared/data --out bench_grow --seeds 3
    python scripts/bench_grow.py --task digits-mlp --out bench_grow --summary-only

Rows go to OUT/TASK.jsonl as they finish (rerun to go on); OUT/TASK-summary.json and
OUT/TASK.png are written at the end. One torch thread.
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

ARMS = {
    "digits-mlp": ("zcnas", "zcnas-total", "gromo", "random", "scratch", "scratch-gromo", "scratch-uniform"),
    "cifar-cnn": ("zcnas", "zcnas-convconv", "gromo", "random", "scratch", "scratch-gromo", "scratch-uniform"),
}


def mlp(widths, in_features=64, classes=10) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_features
    for w in widths:
        layers += [nn.Linear(prev, w), nn.SELU()]
        prev = w
    return nn.Sequential(*layers, nn.Linear(prev, classes))


def cnn(widths, classes=10) -> nn.Sequential:
    """GroMo's VGG layout: conv 3x3 (bias) -> BatchNorm -> ReLU, then a global pool and a Linear."""
    layers: list[nn.Module] = []
    prev = 3
    for w in widths:
        layers += [nn.Conv2d(prev, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        prev = w
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, classes))
    for m in model.modules():  # VGG's initialisation scheme
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


def gromo_model(task: str, seed: int):
    from gromo.containers.growing_mlp import GrowingMLP
    from gromo.containers.vgg import VGG

    torch.manual_seed(seed)
    if task == "digits-mlp":
        return GrowingMLP(64, 10, hidden_size=1, number_hidden_layers=2, activation=nn.SELU())
    return VGG([2, 2, 2], target_cfg=[1024] * 3, in_features=3, num_classes=10, number_of_fc_layers=1,
               input_spatial_shape=(1, 1), dropout=0.0)  # fmt: skip


def gromo_weight_layers(model) -> list[nn.Module]:
    if hasattr(model, "layers"):  # GrowingMLP
        return [m.layer for m in model.layers]
    return [m.layer for m in model._feature_growing_modules] + [model.classifier[0].layer]


def start_model(task: str, seed: int) -> nn.Sequential:
    """Our network with GroMo's initial weights for this seed: both arms start from the same function."""
    peer = gromo_model(task, seed)
    ours = mlp([1, 1]) if task == "digits-mlp" else cnn([2, 2, 2])
    mine = [m for m in ours.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    norms = [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    peer_norms = [m for m in peer.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for a, b in zip(mine, gromo_weight_layers(peer), strict=True):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        for a, b in zip(norms, peer_norms, strict=True):
            a.load_state_dict(b.state_dict())
    return ours


def config(args, seed, **kw):
    from nas.strategies.grow import GrowthConfig

    return GrowthConfig(
        max_params=args.budget, epochs_per_step=args.epochs_per_step, final_epochs=args.final_epochs,
        neurons_per_step=args.neurons_per_step, lr=args.lr, stat_samples=args.stat_samples,
        amplitude_samples=512, seed=seed, **kw,
    )  # fmt: skip


def run_zcnas(args, data, seed, **kw) -> dict:
    from nas.strategies.grow import grow

    model = start_model(args.task, seed)
    started, cpu = time.perf_counter(), time.process_time()
    result = grow(model, *data, config(args, seed, **kw))
    return {"history": result.history, "widths": result.widths, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu}  # fmt: skip


def _forget_statistic_shapes(model) -> None:
    """Work around a GroMo 0.1.0 bug: after a convolution grows, it re-creates its statistics with
    wrong expected shapes ((in_channels + use_bias)·kh·kw instead of in_channels·kh·kw + use_bias
    for S, (in_channels + use_bias, out) for M), so the next statistics pass fails an assertion.
    Dropping the expected shape lets the statistics take the shape their update computes."""
    from gromo.utils.tensor_statistic import TensorStatistic

    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, TensorStatistic):
                value._shape = None


def run_gromo(args, data, seed) -> dict:
    """GroMo's growth loop, written with its public API as its tutorial does."""

    from nas.strategies.grow.loop import evaluate, train_epochs

    (x, y), test = data
    gen = torch.Generator().manual_seed(seed)
    model = gromo_model(args.task, seed)
    started, cpu = time.perf_counter(), time.process_time()
    history = []

    def record(row):
        row["params"] = sum(p.numel() for p in model.parameters())
        row["widths"] = [getattr(m, "out_features", None) or m.out_channels for m in gromo_weight_layers(model)[:-1]]
        row["train_loss"], row["train_acc"] = evaluate(model, x, y)
        row["test_loss"], row["test_acc"] = evaluate(model, *test)
        history.append(row)

    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_epochs(model, opt, x, y, args.epochs_per_step, 64, gen)
    record({"step": 0, "event": "start"})
    try:
        _gromo_steps(args, model, x, y, gen, history, record)
    except Exception as exc:  # noqa: BLE001 - the peer's failure is a result: logged, not hidden
        first = (str(exc).splitlines() or [""])[0]
        return {"history": history, "widths": history[-1]["widths"], "wall_s": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu, "error": f"{type(exc).__name__}: {first}",
                "failed_at_step": len(history)}  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_epochs(model, opt, x, y, args.final_epochs, 64, gen)
    record({"step": len(history), "event": "final"})
    widths = history[-1]["widths"]
    return {"history": history, "widths": widths, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu}  # fmt: skip


def _gromo_steps(args, model, x, y, gen, history, record) -> None:
    from gromo.utils.utils import line_search

    from nas.strategies.grow.loop import train_epochs

    while True:
        w0, c0 = time.perf_counter(), time.process_time()
        _forget_statistic_shapes(model)
        model.eval()
        pick = torch.randperm(len(x), generator=gen)
        stat, amp = pick[: args.stat_samples], pick[:512] if args.task == "cifar-cnn" else torch.arange(len(x))
        model.init_computation()
        for i in range(0, len(stat), 256):
            model.zero_grad()
            F.cross_entropy(model(x[stat[i : i + 256]]), y[stat[i : i + 256]], reduction="sum").backward()
            model.update_computation()
        model.compute_optimal_updates(maximum_added_neurons=args.neurons_per_step)
        model.reset_computation()
        best = model.select_best_update()
        layer = model.currently_updated_layer
        k = int(layer.eigenvalues_extension.shape[0])
        with torch.no_grad():
            # one more output of the previous layer (weights, bias, its BatchNorm) and input of this one
            per_neuron = sum(p[:1].numel() for p in layer.previous_module.parameters())
            per_neuron += layer.weight[:, :1].numel()
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
                return float(F.cross_entropy(model.extended_forward(x[amp]), y[amp]))

        gamma, _ = line_search(cost)
        model.set_scaling_factor(gamma)
        model.apply_change()
        growth_wall, growth_cpu = time.perf_counter() - w0, time.process_time() - c0
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        train_epochs(model, opt, x, y, args.epochs_per_step, 64, gen)
        record({"step": len(history), "event": "grow", "layer": best, "added": k, "amplitude": gamma**2,
                "loss_evaluations": evaluations, "growth_wall_s": growth_wall, "growth_cpu_s": growth_cpu})  # fmt: skip


def run_scratch(args, data, seed, widths, epochs) -> dict:
    from nas.strategies.grow.loop import evaluate, train_epochs

    (x, y), test = data
    torch.manual_seed(1000 + seed)
    model = mlp(widths) if args.task == "digits-mlp" else cnn(widths)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    train_epochs(model, torch.optim.Adam(model.parameters(), lr=args.lr), x, y, epochs, 64, gen)
    row = {"params": sum(p.numel() for p in model.parameters()), "widths": widths, "epochs": epochs}
    row["train_loss"], row["train_acc"] = evaluate(model, x, y)
    row["test_loss"], row["test_acc"] = evaluate(model, *test)
    return {"history": [row], "widths": widths, "wall_s": time.perf_counter() - started}


def uniform_widths(task: str, layers: int, budget: int) -> list[int]:
    """The widest equal widths whose network has at most ``budget`` parameters."""
    build = mlp if task == "digits-mlp" else cnn
    width = 1
    while sum(p.numel() for p in build([width + 1] * layers).parameters()) <= budget:
        width += 1
    return [width] * layers


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


def summary(rows: dict, task: str) -> dict:
    out: dict = {}
    for arm in ARMS[task]:
        runs = [r for (a, _), r in sorted(rows.items()) if a == arm]
        if not runs:
            continue
        final = [r["history"][-1] for r in runs]
        failed = [r for r in runs if r.get("error")]
        if failed:
            steps = [s for r in failed for s in r["history"] if s.get("event") == "grow"]
            out[arm] = {"failed_runs": len(failed), "runs": len(runs), "errors": sorted({r["error"] for r in failed}),
                        "failed_at_step": [r["failed_at_step"] for r in failed]}  # fmt: skip
            if steps:
                out[arm]["growth_step_wall_s"] = mean_ci([s["growth_wall_s"] for s in steps])
                out[arm]["growth_step_cpu_s"] = mean_ci([s["growth_cpu_s"] for s in steps])
                out[arm]["loss_evaluations_per_step"] = mean_ci([s["loss_evaluations"] for s in steps])
            continue
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
    pairs = [("zcnas", "gromo"), ("zcnas-convconv", "gromo"), ("zcnas", "scratch"), ("zcnas", "random"),
             ("gromo", "scratch-gromo"), ("scratch", "scratch-uniform"), ("zcnas", "scratch-uniform")]  # fmt: skip
    for a, b in pairs:
        seeds = sorted({s for (arm, s) in rows if arm == a} & {s for (arm, s) in rows if arm == b})
        if seeds:
            seeds = [s for s in seeds if not rows[(a, s)].get("error") and not rows[(b, s)].get("error")]
            diff = [rows[(a, s)]["history"][-1]["test_acc"] - rows[(b, s)]["history"][-1]["test_acc"] for s in seeds]
            paired[f"{a} - {b}"] = mean_ci(diff)
    out["paired_test_acc_difference"] = paired
    # along the way: the same steps and sizes (random replays zcnas), before the final training
    path = []
    for (arm, seed), r in sorted(rows.items()):
        other = rows.get(("random", seed))
        if arm == "zcnas" and other and not other.get("error"):
            a = [h["test_acc"] for h in r["history"] if h.get("event") == "grow"]
            b = [h["test_acc"] for h in other["history"] if h.get("event") == "grow"]
            if a and len(a) == len(b):
                path.append(float(np.mean(np.subtract(a, b))))
    if path:
        out["growth_path_test_acc_difference"] = {"zcnas - random": mean_ci(path)}
    if "growth_step_wall_s" in out.get("zcnas", {}) and "growth_step_wall_s" in out.get("gromo", {}):
        out["gromo_over_zcnas_growth_step_time"] = (
            out["gromo"]["growth_step_wall_s"]["mean"] / out["zcnas"]["growth_step_wall_s"]["mean"]
        )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", choices=sorted(ARMS), required=True)
    p.add_argument("--shared", help="the shared data folder (cifar-cnn)")
    p.add_argument("--out", default="bench_grow")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, help="parameters to grow to (digits 3000, cifar 1500)")
    p.add_argument("--epochs-per-step", type=int, help="(digits 2, cifar 1)")
    p.add_argument("--final-epochs", type=int, help="(digits 20, cifar 5)")
    p.add_argument("--neurons-per-step", type=int, default=4)
    p.add_argument("--stat-samples", type=int, help="images for the statistics (digits: all 1,347; cifar 512)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--arms", help="comma-separated arms (default all of the task's)")
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args(argv)
    defaults = {"digits-mlp": (3000, 2, 20, 4096), "cifar-cnn": (1500, 1, 5, 512)}[args.task]
    for name, value in zip(("budget", "epochs_per_step", "final_epochs", "stat_samples"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.task == "cifar-cnn" and not args.shared:
        p.error("--task cifar-cnn needs --shared (the folder with cifar10/)")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nas.data import load_digits, load_images

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{args.task}.jsonl"
    rows = read(log)
    if args.task == "digits-mlp":
        data = (load_digits("train"), load_digits("test"))
    else:
        folder = str(Path(args.shared) / "cifar10" / "cifar-10-batches-py")
        data = (load_images("cifar10", folder, "train"), load_images("cifar10", folder, "test"))
    arms = args.arms.split(",") if args.arms else list(ARMS[args.task])
    for seed in range(args.seeds) if not args.summary_only else []:
        for arm in arms:
            if (arm, seed) in rows:
                continue
            if arm == "zcnas":
                r = run_zcnas(args, data, seed)
            elif arm == "zcnas-total":
                r = run_zcnas(args, data, seed, select="total")
            elif arm == "zcnas-convconv":
                r = run_zcnas(args, data, seed, layers=[0, 1])
            elif arm == "gromo":
                r = run_gromo(args, data, seed)
            elif arm == "random":
                base = rows[("zcnas", seed)]["history"]
                schedule = [[s["layer"], s["added"]] for s in base if s.get("event") == "grow"]
                r = run_zcnas(args, data, seed, addition="random", schedule=schedule)
            else:
                source = rows[("gromo" if arm == "scratch-gromo" else "zcnas", seed)]
                if source.get("error"):
                    print(f"{arm} seed {seed}: skipped, GroMo failed ({source['error']})", file=sys.stderr)
                    continue
                grown_steps = sum(1 for s in source["history"] if s.get("event") in ("start", "grow"))
                epochs = grown_steps * args.epochs_per_step + args.final_epochs
                widths = source["widths"]
                if arm == "scratch-uniform":
                    widths = uniform_widths(args.task, len(widths), source["history"][-1]["params"])
                r = run_scratch(args, data, seed, widths, epochs)
            r.update(arm=arm, seed=seed, args=vars(args))
            rows[(arm, seed)] = r
            with open(log, "a") as f:
                f.write(json.dumps(r) + "\n")
            last = r["history"][-1]
            print(f"{arm} seed {seed}: widths {r['widths']}, {last['params']} params, test {last['test_acc']:.2f}%, "
                  f"{r['wall_s']:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    result = summary(rows, args.task)
    result["protocol"] = {k: v for k, v in vars(args).items() if k not in ("summary_only", "arms")}
    (out / f"{args.task}-summary.json").write_text(json.dumps(result, indent=1))
    from nas.strategies.grow import plot_growth

    seed0 = {arm: rows[(arm, 0)]["history"] for arm in ("zcnas", "zcnas-convconv", "gromo", "random")
             if (arm, 0) in rows and not rows[(arm, 0)].get("error")}  # fmt: skip
    points = {f"{arm} (seed 0)": (rows[(arm, 0)]["history"][-1]["params"], rows[(arm, 0)]["history"][-1]["test_acc"])
              for arm in ("scratch", "scratch-gromo", "scratch-uniform") if (arm, 0) in rows}  # fmt: skip
    if seed0:
        plot_growth(seed0, out / f"{args.task}.png", points)
    print(json.dumps({k: v for k, v in result.items() if k != "protocol"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
