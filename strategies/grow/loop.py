"""The growth loop: train, measure, add the best neurons where the bottleneck is, choose their amplitude, repeat.

:func:`grow` takes the user's own sequential MLP and grows it in place. Every growth step is a
row of the returned history (and of the checkpoint, which is written after each step, so a rerun
with the same checkpoint path resumes). The amplitude is chosen by a coarse-to-fine search on
the loss of a batch of training images, evaluating only the layers after the grown one (their
inputs are cached): a few dozen partial forward passes instead of GroMo's hundreds of full ones.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError
from nas.strategies.grow.network import GrowableNet
from nas.strategies.grow.statistics import Candidate, candidate, collect_statistics, neuron_moments

log = logging.getLogger("nas")
SELECTIONS = ("bottleneck", "total")
ADDITIONS = ("optimal", "random")
#: Checkpoint fields that may differ on resume (how long to go on, not what was grown).
_RESUMABLE = {"max_steps", "max_params", "final_epochs"}


@dataclass
class GrowthConfig:
    """The schedule of one growth run (every field is in the checkpoint; see docs/grow.md).

    - ``max_params``: the budget; no step adds neurons past it.
    - ``max_steps``: growth steps at most.
    - ``neurons_per_step``: neurons added per step at most (TINY keeps only singular values above
      ``statistical_threshold``, so a step may add fewer).
    - ``epochs_per_step``: training after each growth step (and before the first).
    - ``final_epochs``: training once growth is over.
    - ``select``: where to grow: ``bottleneck`` ranks hidden layers by what their new neurons
      remove of the expressivity bottleneck, σ'(0)·Σσ²; ``total`` adds the next layer's weight
      update, tr(M dW*) (GroMo's ``first_order_improvement``).
    - ``addition``: ``optimal`` (TINY) or ``random`` neurons (the baseline; with ``schedule``, the
      same layers and sizes as another run).
    - ``stat_samples`` / ``amplitude_samples``: training samples for the statistics and for the
      amplitude search, drawn afresh each step.
    - ``layers``: the hidden layers that may grow (default all).
    """

    max_params: int
    epochs_per_step: int
    final_epochs: int
    max_steps: int = 1000
    neurons_per_step: int = 4
    select: str = "bottleneck"
    addition: str = "optimal"
    lr: float = 1e-3
    batch_size: int = 64
    stat_samples: int = 2048
    amplitude_samples: int = 512
    statistical_threshold: float = 1e-3
    seed: int = 0
    schedule: list[list[int]] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise NasError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        if self.addition not in ADDITIONS:
            raise NasError(f"addition must be one of {ADDITIONS}, got {self.addition!r}")
        for name in ("max_params", "neurons_per_step", "batch_size", "stat_samples", "amplitude_samples"):
            if getattr(self, name) < 1:
                raise NasError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs_per_step", "final_epochs", "max_steps"):
            if getattr(self, name) < 0:
                raise NasError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class GrowthResult:
    model: nn.Module
    widths: list[int]
    history: list[dict[str, Any]]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in %)."""
    was = model.training
    model.eval()
    loss, right = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i : i + batch])
            loss += float(F.cross_entropy(out, y[i : i + batch], reduction="sum"))
            right += int((out.argmax(1) == y[i : i + batch]).sum())
    model.train(was)
    return loss / len(x), 100.0 * right / len(x)


def train_epochs(model, optimizer, x, y, epochs: int, batch_size: int, generator: torch.Generator) -> None:
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            pick = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[pick]), y[pick]).backward()
            optimizer.step()


def _layer_loss(net: GrowableNet, cand: Candidate, ins: list[torch.Tensor], y: torch.Tensor, step: float) -> float:
    """The mean loss after growing ``cand`` at amplitude ``step``: only the layers from the grown one on run."""
    layer = cand.layer
    k = cand.neurons.count
    tensors = net.grown_tensors(layer, cand.neurons.alpha, cand.neurons.omega, cand.delta, step, cand.moments)
    second = net.stages[layer + 1].weight
    h = torch.cat([ins[layer + 1], net.new_features(layer, ins[layer], tensors, k)], 1)
    bias = tensors.get(second.bias, second.bias)
    if isinstance(second, nn.Conv2d):
        pre = F.conv2d(h, tensors[second.weight], bias, second.stride, second.padding, second.dilation)
    else:
        pre = F.linear(h, tensors[second.weight], bias)
    return float(F.cross_entropy(net.tail(pre, layer + 1), y).detach())


def _check_first_order(net: GrowableNet, cand: Candidate, x, y, step: float) -> tuple[float, float]:
    """On the statistics' own sample, where the prediction was made: the loss decrease at ``step``,
    and the loss slope along the growth direction at 0, by a float64 finite difference (the
    first-order claim itself; float32 cannot resolve it)."""
    with torch.no_grad():
        _, ins, _ = net.record(x)
        base = _layer_loss(net, cand, ins, y, 0.0)
        actual = base - _layer_loss(net, cand, ins, y, step)
        exact = GrowableNet(copy.deepcopy(net.model).double().eval())
        _, ins64, _ = exact.record(x.double())
        eps = 1e-6 * max(base, 1e-3) / max(abs(cand.first_order), 1e-12)  # a predicted change of 1e-6 x the loss
        slope = (_layer_loss(exact, cand, ins64, y, 0.0) - _layer_loss(exact, cand, ins64, y, eps)) / eps
    return actual, slope


def choose_amplitude(
    net: GrowableNet, cand: Candidate, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float, float, int]:
    """(step, loss at 0, loss at step, losses evaluated): a log grid over 1e-4..1e3, then 8 golden
    sections (each reuses one inner point: 9 evaluations)."""
    with torch.no_grad():
        _, ins, _ = net.record(x)
        ins = [t.detach() for t in ins]
        f = lambda s: _layer_loss(net, cand, ins, y, s)  # noqa: E731
        base = f(0.0)
        grid = np.logspace(-4, 3, 29)
        losses = [f(float(s)) for s in grid]
        best = int(np.argmin(losses))
        lo, hi = math.log(grid[max(best - 1, 0)]), math.log(grid[min(best + 1, len(grid) - 1)])
        ratio = (math.sqrt(5) - 1) / 2
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        fa, fb = f(math.exp(a)), f(math.exp(b))
        rounds = 8
        for _ in range(rounds - 1):  # the loss is unimodal in log-step near its minimum
            if fa < fb:  # keep [lo, b]; the old a is the new b
                hi, b, fb = b, a, fa
                a = hi - ratio * (hi - lo)
                fa = f(math.exp(a))
            else:  # keep [a, hi]; the old b is the new a
                lo, a, fa = a, b, fb
                b = lo + ratio * (hi - lo)
                fb = f(math.exp(b))
        lo, hi = (lo, b) if fa < fb else (a, hi)
        step = math.exp((lo + hi) / 2)
        at_step = f(step)
        if at_step > losses[best]:
            step, at_step = float(grid[best]), losses[best]
    return step, base, at_step, 1 + len(grid) + (rounds + 1) + 1


def _random_neurons(net: GrowableNet, layer: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """GroMo's "copy_uniform": uniform weights with the standard deviation of the existing ones."""
    first, second = net.stages[layer], net.stages[layer + 1]

    def draw(shape, like):
        std = float(like.detach().std()) if like.numel() > 1 else 1.0 / math.sqrt(like.shape[-1])
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(3) * std

    alpha = draw((k, first.weight.weight[0].numel() + int(first.bias)), first.weight.weight)
    omega = draw((second.weight.weight.shape[0] * net.slots(layer), k), second.weight.weight)
    return alpha, omega


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _network(net: GrowableNet) -> dict:
    """What must match to resume: the layers' kinds, the input and output sizes, the starting widths."""
    return {
        "layers": [" ".join(type(m).__name__ for m in (s.weight, s.norm, s.act, *s.post) if m is not None)
                   for s in net.stages],
        "in": net.stages[0].weight.weight.shape[1], "out": net.stages[-1].weight.weight.shape[0],
    }  # fmt: skip


def _load(path: Path, config: GrowthConfig, net: GrowableNet, optimizer) -> dict:
    try:
        payload = torch.load(path, weights_only=True)
        saved = payload["config"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one-line error
        first = (str(exc).splitlines() or [""])[0]
        raise NasError(f"{path} is not a growth checkpoint ({type(exc).__name__}: {first})") from None
    if payload.get("network") != _network(net) or payload["history"][0]["widths"] != net.widths:
        raise NasError(f"{path} grew another network (start, activations or data); use another --out")
    differ = {k for k, v in asdict(config).items() if saved.get(k) != v and k not in _RESUMABLE}
    if differ:
        raise NasError(f"{path} was grown with other settings ({', '.join(sorted(differ))}); use another --out")
    net.resize(payload["widths"])
    net.model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    return payload


def grow(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: GrowthConfig,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    on_step: Callable[[dict], None] | None = None,
) -> GrowthResult:
    """Grow ``model`` (in place) on ``train``; ``test`` is only evaluated, never used to decide.

    Returns the grown model, its hidden widths and one history row per step: the layer, neurons
    added, the first-order predicted and the actual loss decrease, the amplitude, parameters,
    train/test loss and accuracy, and the wall and CPU seconds of the growth computation.
    """
    from tqdm.auto import tqdm

    net = GrowableNet(model)
    if net.num_params > config.max_params:
        raise NasError(
            f"the starting network has {net.num_params:,} parameters, above the budget of {config.max_params:,}"
        )
    network = _network(net)
    wrong = [h for h in [*config.layers, *(s[0] for s in config.schedule)] if not 0 <= h < len(net.widths)]
    if wrong:
        raise NasError(
            f"hidden layer {wrong[0]} does not exist: this network has hidden layers 0..{len(net.widths) - 1}"
        )
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, Any]] = []
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        payload = _load(path, config, net, optimizer)
        history = payload["history"]
        gen.set_state(payload["generator"])
        log.info("resumed %s after growth step %d", path, len(history) - 1)
    x, y = train

    def record(row: dict) -> None:
        row.update(widths=list(net.widths), params=net.num_params)
        row["train_loss"], row["train_acc"] = evaluate(model, x, y)
        row["test_loss"], row["test_acc"] = evaluate(model, *test)
        history.append(row)
        if on_step:
            on_step(row)
        if path is not None:
            _save(path, {
                "config": asdict(config), "network": network, "widths": list(net.widths), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "history": history, "generator": gen.get_state(),
            })  # fmt: skip

    if not history:
        train_epochs(model, optimizer, x, y, config.epochs_per_step, config.batch_size, gen)
        record({"step": 0, "event": "start"})
    # the budget, not the step limit, usually ends growth: the bar counts steps and shows the parameters
    bar = tqdm(initial=len(history) - 1, disable=not progress, desc="growing", unit="step")
    done = history[-1]["event"] == "final"
    while not done and len(history) - 1 < config.max_steps:
        step_no = len(history)
        wall, cpu = time.perf_counter(), time.process_time()
        forced = config.schedule[step_no - 1] if step_no - 1 < len(config.schedule) else None
        if config.schedule and forced is None:
            break
        layers = [forced[0]] if forced else (config.layers or range(len(net.widths)))
        wanted = forced[1] if forced else config.neurons_per_step
        limit = {h: min(wanted, (config.max_params - net.num_params) // net.neuron_params(h)) for h in layers}
        if all(k < 1 for k in limit.values()):
            history[-1]["stop"] = "budget"
            break
        model.eval()  # statistics and amplitude with BatchNorm's running statistics, nothing updated
        pick = torch.randperm(len(x), generator=gen)
        stats = collect_statistics(net, x[pick[: config.stat_samples]], y[pick[: config.stat_samples]])
        cands = [candidate(net, stats, h, limit[h], config.statistical_threshold) for h in layers if limit[h] >= 1]
        best = max(cands, key=lambda c: c.score(config.select))
        row: dict[str, Any] = {"step": step_no, "event": "grow", "layer": best.layer, "select": config.select}
        amp = torch.randperm(len(x), generator=gen)[: config.amplitude_samples]
        if config.addition == "optimal":
            amplitude, before, after, evaluations = choose_amplitude(net, best, x[amp], y[amp])
            sample = (x[pick[: config.stat_samples]], y[pick[: config.stat_samples]])
            actual, slope = _check_first_order(net, best, *sample, amplitude)
            alpha, omega, delta, moments = best.neurons.alpha, best.neurons.omega, best.delta, best.moments
            row.update(
                amplitude=amplitude, predicted_decrease=amplitude * best.first_order, actual_decrease=actual,
                amplitude_batch_decrease=before - after, loss_evaluations=evaluations,
                first_order=best.first_order, measured_slope=slope,
                bottleneck=best.bottleneck, parameter_decrease=best.parameter_decrease,
                candidates={c.layer: round(c.score(config.select), 8) for c in cands},
            )  # fmt: skip
        else:
            k = forced[1] if forced else best.neurons.count
            alpha, omega = _random_neurons(net, best.layer, k, gen)
            delta, amplitude, moments = None, 1.0, neuron_moments(stats, best.layer, alpha)
        net.grow(best.layer, alpha, omega, delta, amplitude, optimizer, moments)
        row.update(added=int(alpha.shape[0]), growth_wall_s=time.perf_counter() - wall,
                   growth_cpu_s=time.process_time() - cpu)  # fmt: skip
        t0 = time.perf_counter()
        train_epochs(model, optimizer, x, y, config.epochs_per_step, config.batch_size, gen)
        row["train_wall_s"] = time.perf_counter() - t0
        record(row)
        bar.update(1)
        bar.set_postfix(
            widths="-".join(map(str, net.widths)), params=f"{net.num_params}/{config.max_params}",
            test_acc=f"{row['test_acc']:.1f}",
        )  # fmt: skip
    bar.close()
    if history[-1]["event"] != "final":
        train_epochs(model, optimizer, x, y, config.final_epochs, config.batch_size, gen)
        record({"step": len(history), "event": "final", "epochs": config.final_epochs})
    return GrowthResult(model=model, widths=list(net.widths), history=history)
