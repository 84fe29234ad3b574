"""Capacity allocation experiments (docs/design.md, "Capacity allocation"): registered before running.

A. Which architecture puts its capacity where a task needs it, and does that predict the trained
   error? 1-D inputs x of 64 white Gaussian coordinates; targets ``y = Σ_{i∈D} x_i + ε`` (ε of
   std 0.1) with the dependency positions D of four tasks; seven linear architectures whose
   output is position 32 (or a dense readout). Capacity at the initial weights (zero-shot,
   metric Σ = I). Registered predictor of the excess test error:
   ``Σ_{i∈D} (1 − c_i) + σ² R / (n − R)`` (the target outside the reachable directions, plus
   least-squares variance with R effective parameters), against the measured test MSE minus σ²
   after full-batch Adam training on n = 256 samples (1,500 steps, lr 1e-2), 5 seeds. Reported:
   Kendall tau over the 28 (architecture, task) cells with a bootstrap CI over seeds, and the
   parameter count as the baseline predictor.
B. The known answer of the nonlinear reading: in a deep 1-D ResNet (``x + conv3(relu(x))``,
   4 channels, 129 positions, PyTorch's initialisation), the width of the effective receptive
   field should grow like a diffusion, ``∝ √depth``. Measured two ways, the exact input-gradient
   energy and the layer-decoupled Markov chain of :func:`nas.design.capacity.layer_transfer`;
   depths 2-32, 3 seeds, 16 inputs; the slope of log width on log depth (depth >= 4) should be 0.5.

    python scripts/bench_capacity.py --out bench_capacity
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

N, CENTER, NOISE, TRAIN, TEST = 64, 32, 0.1, 256, 2000
TASKS = {
    "local": [31, 32, 33],
    "wide": [20, 32, 44],
    "far": [2, 62],
    "spread": list(range(0, 64, 8)),
}


class Readout(nn.Module):
    """The output is one position of the last feature map."""

    def __init__(self, body: nn.Module, position: int):
        super().__init__()
        self.body, self.position = body, position

    def forward(self, x):
        return self.body(x)[:, 0, self.position]


class Residual(nn.Module):
    def __init__(self, c: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel, padding=kernel // 2)

    def forward(self, x):
        return x + self.conv(x)


def convs(kernels, dilations=None, c=4):
    dilations = dilations or [1] * len(kernels)
    layers, prev = [], 1
    for i, (k, d) in enumerate(zip(kernels, dilations)):
        out = 1 if i == len(kernels) - 1 else c
        layers.append(nn.Conv1d(prev, out, k, padding=d * (k // 2), dilation=d))
        prev = out
    return nn.Sequential(*layers)


def architectures() -> dict:
    return {
        "dense": lambda: nn.Sequential(nn.Flatten(), nn.Linear(N, 1), nn.Flatten(0)),
        "conv3x4": lambda: Readout(convs([3] * 4), CENTER),
        "conv3x8": lambda: Readout(convs([3] * 8), CENTER),
        "conv9x2": lambda: Readout(convs([9, 9]), CENTER),
        "dilated": lambda: Readout(convs([3] * 5, [1, 2, 4, 8, 16]), CENTER),
        "pool": lambda: Readout(
            nn.Sequential(
                nn.Conv1d(1, 4, 3, padding=1),
                nn.AvgPool1d(2),
                nn.Conv1d(4, 4, 3, padding=1),
                nn.AvgPool1d(2),
                nn.Conv1d(4, 1, 3, padding=1),
            ),
            CENTER // 4,
        ),  # fmt: skip
        "residual": lambda: Readout(
            nn.Sequential(
                nn.Conv1d(1, 4, 3, padding=1), *[Residual(4) for _ in range(4)], nn.Conv1d(4, 1, 3, padding=1)
            ),
            CENTER,
        ),  # fmt: skip
    }


def experiment_a(seeds: int) -> dict:
    from nas.design.capacity import capacity_allocation
    from nas.stats import kendall_tau

    rows = []
    for name, make in architectures().items():
        for task, dep in TASKS.items():
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = make().double()
                cap = capacity_allocation(model, torch.zeros(1, 1, N)).per_input.ravel()
                covered = float(np.clip(cap[dep], 0, 1).sum())
                rank = float(cap.sum())
                predicted = (len(dep) - covered) + NOISE**2 * rank / max(TRAIN - rank, 1.0)
                g = torch.Generator().manual_seed(100 + seed)
                x = torch.randn(TRAIN + TEST, 1, N, generator=g, dtype=torch.float64)
                y = x[:, 0, dep].sum(1) + NOISE * torch.randn(TRAIN + TEST, generator=g, dtype=torch.float64)
                opt = torch.optim.Adam(model.parameters(), lr=1e-2)
                for _ in range(1500):
                    opt.zero_grad()
                    loss = ((model(x[:TRAIN]) - y[:TRAIN]) ** 2).mean()
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    test = float(((model(x[TRAIN:]) - y[TRAIN:]) ** 2).mean())
                params = sum(p.numel() for p in model.parameters())
                rows.append({"arch": name, "task": task, "seed": seed, "coverage": covered / len(dep),
                             "capacity": rank, "params": params, "predicted": predicted,
                             "excess_test_mse": test - NOISE**2, "train_mse": float(loss)})  # fmt: skip
            print(f"A {name} {task}: coverage {np.mean([r['coverage'] for r in rows[-seeds:]]):.2f}, "
                  f"excess test MSE {np.mean([r['excess_test_mse'] for r in rows[-seeds:]]):.4f}",
                  file=sys.stderr, flush=True)  # fmt: skip
    cells = sorted({(r["arch"], r["task"]) for r in rows})

    def cell_means(pick):
        return [np.mean([r[pick] for r in rows if (r["arch"], r["task"]) == c]) for c in cells]

    measured, predicted, params = cell_means("excess_test_mse"), cell_means("predicted"), cell_means("params")
    rng = np.random.default_rng(0)
    boots, boots_p = [], []
    for _ in range(1000):  # resample seeds within each cell
        pick = rng.integers(0, seeds, seeds)
        m = [
            np.mean([[r for r in rows if (r["arch"], r["task"]) == c][i]["excess_test_mse"] for i in pick])
            for c in cells
        ]
        boots.append(kendall_tau(predicted, m))
        boots_p.append(kendall_tau([-p for p in params], m))
    table = {f"{a}/{t}": {"coverage": float(np.mean([r["coverage"] for r in rows if (r["arch"], r["task"]) == (a, t)])),
                          "capacity": float(np.mean([r["capacity"] for r in rows if (r["arch"], r["task"]) == (a, t)])),
                          "predicted": p, "excess_test_mse": m}
             for (a, t), p, m in zip(cells, predicted, measured)}  # fmt: skip
    return {
        "tau_predicted_vs_measured": kendall_tau(predicted, measured),
        "tau_ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "tau_minus_params_vs_measured": kendall_tau([-p for p in params], measured),
        "tau_params_ci95": [float(np.percentile(boots_p, 2.5)), float(np.percentile(boots_p, 97.5))],
        "cells": table,
        "runs": rows,
    }


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv(torch.relu(x))


def experiment_b(seeds: int) -> dict:
    from nas.design.capacity import input_gradient_energy, layer_transfer, markov_allocation, spread

    n, c, depths = 129, 4, [2, 4, 8, 16, 32]
    widths: dict = {"exact": {}, "markov": {}}
    for depth in depths:
        for kind in widths:
            widths[kind][depth] = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            blocks = [Block(c).double() for _ in range(depth)]
            x = torch.randn(16, c, n, dtype=torch.float64)
            widths["exact"][depth].append(spread(input_gradient_energy(nn.Sequential(*blocks), x, n // 2)))
            transfers, h = [], x
            with torch.no_grad():
                for b in blocks:
                    transfers.append(layer_transfer(b, h))
                    h = b(h)
            widths["markov"][depth].append(spread(markov_allocation(transfers, n // 2)))
        exact, markov = np.mean(widths["exact"][depth]), np.mean(widths["markov"][depth])
        print(f"B depth {depth}: exact {exact:.3f}, markov {markov:.3f}", file=sys.stderr, flush=True)
    out: dict = {"depths": depths, "widths": {k: {d: v for d, v in w.items()} for k, w in widths.items()}}
    rng = np.random.default_rng(0)
    fit_depths = [d for d in depths if d >= 4]
    for kind, w in widths.items():

        def slope(pick):
            ys = [math.log(np.mean([w[d][i] for i in pick])) for d in fit_depths]
            return float(np.polyfit([math.log(d) for d in fit_depths], ys, 1)[0])

        boots = [slope(rng.integers(0, seeds, seeds)) for _ in range(1000)]
        out[f"slope_{kind}"] = slope(range(seeds))
        out[f"slope_{kind}_ci95"] = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="bench_capacity")
    p.add_argument("--seeds", type=int, default=5, help="seeds of experiment A (B uses 3)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {"A": experiment_a(args.seeds), "B": experiment_b(3)}
    result["seconds"] = time.perf_counter() - started
    (out / "capacity.json").write_text(json.dumps(result, indent=1))
    from nas.design.capacity import capacity_allocation, plot_capacity

    torch.manual_seed(0)
    reports = {
        name: capacity_allocation(make().double(), torch.zeros(1, 1, N)) for name, make in architectures().items()
    }
    plot_capacity(reports, out / "capacity_by_architecture.png", marks=TASKS["wide"])
    print(json.dumps({"A": {k: v for k, v in result["A"].items() if k not in ("runs", "cells")},
                      "B": {k: v for k, v in result["B"].items() if k.startswith("slope")}}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
