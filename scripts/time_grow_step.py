"""Time TINY growth steps on CIFAR-10: zcnas against GroMo, same start, same images (docs/grow.md).

Each run builds the cifar-cnn start of ``scripts/bench_grow.py`` (three 2-channel convolutions,
GroMo's initial weights), then takes ``--steps`` growth steps from it, each from a fresh copy of the
start: statistics on 512 training images, the choice between the two conv-to-conv layers (GroMo
grows only those), the amplitude on 512 training images (zcnas: its search; GroMo: its
``line_search``), and the change applied. Nothing is trained. Prints the in-process seconds per
step; for the ratio of whole processes, run both under farm-bench:

    farm-bench -n 3 --timeout 900 --vs 'python scripts/time_grow_step.py --impl gromo --shared ../shared/data' \\
        -- python scripts/time_grow_step.py --impl zcnas --shared ../shared/data
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


def _bench():
    spec = importlib.util.spec_from_file_location("bench_grow", Path(__file__).with_name("bench_grow.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zcnas_step(bench, x, y) -> None:
    from nas.strategies.grow import GrowableNet, candidate, choose_amplitude, collect_statistics

    model = bench.start_model("cifar-cnn", 0).eval()
    net = GrowableNet(model)
    stats = collect_statistics(net, x[:512], y[:512])
    best = max((candidate(net, stats, h, 4) for h in (0, 1)), key=lambda c: c.score("bottleneck"))
    step, *_ = choose_amplitude(net, best, x[512:1024], y[512:1024])
    net.grow(best.layer, best.neurons.alpha, best.neurons.omega, best.delta, step, moments=best.moments)


def gromo_step(bench, x, y) -> None:
    from gromo.utils.utils import line_search

    model = bench.gromo_model("cifar-cnn", 0).eval()
    model.init_computation()
    for i in range(0, 512, 256):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 256]), y[i : i + 256], reduction="sum").backward()
        model.update_computation()
    model.compute_optimal_updates(maximum_added_neurons=4)
    model.reset_computation()
    model.select_best_update()

    def cost(gamma):
        model.set_scaling_factor(gamma)
        with torch.no_grad():
            return float(F.cross_entropy(model.extended_forward(x[512:1024]), y[512:1024]))

    gamma, _ = line_search(cost)
    model.set_scaling_factor(gamma)
    model.apply_change()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=("zcnas", "gromo"), required=True)
    p.add_argument("--shared", required=True, help="the shared data folder (cifar10/)")
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nas.data import load_images

    x, y = load_images("cifar10", str(Path(args.shared) / "cifar10" / "cifar-10-batches-py"), "train")
    bench = _bench()
    step = zcnas_step if args.impl == "zcnas" else gromo_step
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step(bench, x, y)
        times.append(time.perf_counter() - started)
    print(f"{args.impl}: {args.steps} growth steps, seconds each: {', '.join(f'{t:.2f}' for t in times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
