"""Nonlinearity normalisation: bring a network's NLC to a target by softening its activations.

Philipp's thesis says the NLC "can be easily controlled via our 'nonlinearity normalization'
algorithm" and gives no algorithm we could retrieve (METHODS 3.4). Ours, documented as ours:

1. Every elementwise activation module tau becomes ``alpha * tau(s) + (1 - alpha) * s``
   (:class:`MixedActivation`; alpha in [0, ``max_alpha``], 1 = the original, 0 = the identity,
   so alpha = 0 everywhere makes the network affine: NLC 1). One alpha per module object (a module
   called twice shares it). Weights are not touched: the normalised network is the same
   initialisation with softer nonlinearities, and trains with the same recipe.
2. All activations get the *same* nonlinearity c: each alpha is chosen by bisection so that the
   activation's own NLC on its input distribution (:func:`nas.design.nlc.activation_nlc`, exact on
   the batch) equals c, or is as close as alpha's range allows. Softening one layer changes what
   the next one sees, so the inputs are measured again and every alpha solved again (``sweeps``
   times; BatchNorm statistics re-estimated on the batch each time, as ``bn="eval"``).
3. c is chosen by bisection on log c so that the whole network's measured NLC (the estimator of
   the ``nlc`` proxy) hits the target within ``rtol``. Equal per-layer nonlinearity is the choice
   that spreads the target over depth rather than letting one layer carry it; the network NLC is
   not the product of the layers' (skip connections, pooling, normalisation), so step 3 measures
   it instead of predicting it.

The target must lie between 1 (all alphas 0) and the NLC with every alpha at ``max_alpha``
(default 1: the original network, so normalisation can only lower the NLC; ``max_alpha`` > 1
extrapolates past the original activation and can raise it). An unreachable target is a
one-line error that names the reachable range.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.design.nlc import ELEMENTWISE, activation_moments, network_nlc
from nas.errors import NasError
from nas.proxies.nlc import freeze_batchnorm

FORMAT = "zcnas-normalized"


class MixedActivation(nn.Module):
    """``alpha * activation(s) + (1 - alpha) * s``: the activation interpolated with the identity."""

    alpha: torch.Tensor
    activation: nn.Module

    def __init__(self, activation: nn.Module, alpha: float = 1.0) -> None:
        super().__init__()
        activation = copy.deepcopy(activation)
        if hasattr(activation, "inplace"):
            activation.inplace = False  # type: ignore[assignment]  # the identity part needs s unchanged
        self.activation = activation
        self.register_buffer("alpha", torch.tensor(float(alpha)))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.activation(s) + (1.0 - self.alpha) * s

    def extra_repr(self) -> str:
        return f"alpha={float(self.alpha):.4f}"


def activation_names(model: nn.Module) -> list[str]:
    """The names of the elementwise activation modules (each module object once)."""
    seen, out = set(), []
    for name, m in model.named_modules():
        if isinstance(m, ELEMENTWISE) and id(m) not in seen:
            seen.add(id(m))
            out.append(name)
    return out


def mix_activations(model: nn.Module, alphas: dict[str, float] | None = None) -> nn.Module:
    """Replace (in place) every elementwise activation module by a :class:`MixedActivation`
    (alpha from ``alphas`` by module name, else 1); a module object used in several places is
    replaced by one shared wrapper. Returns ``model``."""
    alphas = alphas or {}
    names = activation_names(model)
    if not names:
        raise NasError("normalize: the model has no elementwise activation modules (nn.ReLU, nn.Tanh, ...) to soften")
    wrapper_of: dict[int, MixedActivation] = {}
    for name in names:
        original = model.get_submodule(name)
        wrapper_of[id(original)] = MixedActivation(original, alphas.get(name, 1.0))
    for parent in list(model.modules()):
        for key, child in list(parent._modules.items()):
            if child is not None and id(child) in wrapper_of:
                parent._modules[key] = wrapper_of[id(child)]
    return model


def _mixed(model: nn.Module) -> list[tuple[str, MixedActivation]]:
    seen: set[int] = set()
    out: list[tuple[str, MixedActivation]] = []
    for name, m in model.named_modules():
        if isinstance(m, MixedActivation) and id(m) not in seen:
            seen.add(id(m))
            out.append((name, m))
    return out


def mixed_sums(s: torch.Tensor, y: torch.Tensor, d: torch.Tensor) -> tuple[float, ...]:
    """What the NLC of ``alpha * tau + (1 - alpha) * id`` needs, for every alpha, from an
    activation's inputs ``s``, outputs ``y`` and slopes ``d`` (N x D): with per-feature means and
    variances over the batch, A = sum E[d^2] Var s, B = sum E[d] Var s, C = sum Var s,
    P = sum Var y, Q = sum Cov(y, s)."""
    var_s = s.var(0, unbiased=False)
    return (
        float((d.pow(2).mean(0) * var_s).sum()),
        float((d.mean(0) * var_s).sum()),
        float(var_s.sum()),
        float(y.var(0, unbiased=False).sum()),
        float(((y - y.mean(0)) * (s - s.mean(0))).mean(0).sum()),
    )


def mixed_nlc(sums: Sequence[float], alpha: float) -> float:
    """The mixed activation's NLC, exact on the batch: its slope is alpha d + 1 - alpha, so
    sqrt((a^2 A + 2 a b B + b^2 C) / (a^2 P + 2 a b Q + b^2 C)) with a = alpha, b = 1 - alpha."""
    A, B, C, P, Q = sums
    a, b = float(alpha), 1.0 - float(alpha)
    numerator = a * a * A + 2 * a * b * B + b * b * C
    denominator = a * a * P + 2 * a * b * Q + b * b * C
    return math.sqrt(numerator / denominator) if denominator > 0 and numerator >= 0 else math.nan


def _capture_sums(net: nn.Module, x: torch.Tensor) -> dict[str, tuple[float, ...]]:
    """:func:`mixed_sums` of every MixedActivation's inputs on ``x`` (by name; its first call),
    with BatchNorm statistics of ``x`` (measured on a copy)."""
    probe = copy.deepcopy(net)
    freeze_batchnorm(probe, x)
    captured: dict[str, tuple[float, ...]] = {}

    def make_hook(name: str):
        def hook(mod: MixedActivation, args: tuple) -> None:
            if name not in captured:
                captured[name] = mixed_sums(*activation_moments(mod.activation, args[0]))

        return hook

    handles = [m.register_forward_pre_hook(make_hook(name)) for name, m in _mixed(probe)]
    try:
        with torch.no_grad():
            probe(x)
    finally:
        for h in handles:
            h.remove()
    return captured


def _solve_alpha(sums: Sequence[float], target: float, max_alpha: float, steps: int = 60) -> float:
    """The alpha in [0, max_alpha] whose mixed activation has NLC ``target`` (bisection; the
    end of the range when the target is outside what the range reaches)."""
    low, high = 0.0, float(max_alpha)
    f_high = mixed_nlc(sums, high)
    if not math.isfinite(f_high) or f_high <= target:
        return high
    if mixed_nlc(sums, low) >= target:
        return low
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if mixed_nlc(sums, mid) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _set_common_nonlinearity(net: nn.Module, x: torch.Tensor, c: float, max_alpha: float, sweeps: int) -> None:
    """Every activation's alpha so that its own NLC is ``c``: each sweep measures every
    activation's inputs under the current alphas (one forward) and solves each alpha."""
    for _ in range(sweeps):
        captured = _capture_sums(net, x)
        for name, module in _mixed(net):
            if name in captured:  # else: not called on this input
                module.alpha.fill_(_solve_alpha(captured[name], c, max_alpha))


@dataclass
class Normalization:
    """What :func:`normalize_nonlinearity` did."""

    target: float
    nlc_before: float
    nlc_after: float
    per_activation: float  # the common activation NLC c it settled on
    alphas: dict[str, float]
    iterations: int
    samples: int
    pairs: int
    history: list[tuple[float, float]] = field(default_factory=list)  # (c, network NLC) tried

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_nonlinearity(
    model: nn.Module,
    inputs: torch.Tensor,
    target: float = 2.0,
    rtol: float = 0.02,
    pairs: int = 256,
    max_alpha: float = 1.0,
    sweeps: int = 3,
    max_iterations: int = 40,
    seed: int = 0,
) -> tuple[nn.Module, Normalization]:
    """A copy of ``model`` with :class:`MixedActivation` s whose network NLC on ``inputs`` is
    ``target`` within ``rtol`` (relative), and the record of how (module docstring).

    ``pairs`` and ``seed`` set the NLC estimator (as in the ``nlc`` proxy, ``bn="eval"``);
    ``sweeps``: measure-and-solve
    passes per trial of c. The copy keeps ``model``'s weights, BatchNorm buffers and mode (the
    measurements run on private copies).
    """
    if not target > 0 or not math.isfinite(target):
        raise NasError(f"normalize: the target NLC must be a positive number, got {target}")
    if not 0 < rtol < 1:
        raise NasError(f"normalize: rtol must lie in (0, 1), got {rtol}")
    if not max_alpha > 0:
        raise NasError(f"normalize: max_alpha must be positive, got {max_alpha}")
    x = inputs.detach()
    before = network_nlc(model, x, pairs=pairs, seed=seed)
    net = mix_activations(copy.deepcopy(model))

    history: list[tuple[float, float]] = []

    def trial(c: float) -> float:
        _set_common_nonlinearity(net, x, c, max_alpha, sweeps)
        value = network_nlc(net, x, pairs=pairs, seed=seed)
        history.append((c, value))
        return value

    def done(value: float) -> bool:
        return abs(value - target) <= rtol * target

    # the reachable range: every alpha 0 (affine: 1) to every alpha max_alpha
    for _name, module in _mixed(net):
        module.alpha.fill_(float(max_alpha))
    top = network_nlc(net, x, pairs=pairs, seed=seed)
    history.append((math.inf, top))
    if target > top * (1 + rtol) or target < 1.0 - rtol:
        raise NasError(
            f"normalize: target NLC {target:g} is out of reach: with alpha in [0, {max_alpha:g}] this network "
            f"spans NLC 1 to {top:.3g} on these inputs" + ("; raise max_alpha to go above" if target > top else "")
        )
    if done(top):
        c, value = math.inf, top
    else:
        # the largest activation NLC at alpha = max_alpha bounds c
        c_high = max(mixed_nlc(v, float(max_alpha)) for v in _capture_sums(net, x).values())
        low, high = 0.0, math.log(max(c_high, 1.0 + 1e-6))  # log c: 0 -> identity
        c, value = math.exp(high), top
        for _ in range(max_iterations):
            c = math.exp(0.5 * (low + high))
            value = trial(c)
            if done(value):
                break
            if value < target:
                low = math.log(c)
            else:
                high = math.log(c)
        if not done(value):
            raise NasError(
                f"normalize: did not reach NLC {target:g} within {rtol:.0%} in {max_iterations} steps "
                f"(last {value:.3g}); the network NLC may not grow steadily with its activations' NLC"
            )
    result = Normalization(
        target=float(target),
        nlc_before=float(before),
        nlc_after=float(value),
        per_activation=float(c),
        alphas={name: float(m.alpha) for name, m in _mixed(net)},
        iterations=len(history) - 1,
        samples=int(x.shape[0]),
        pairs=int(pairs),
        history=history,
    )
    return net, result


# -- saving and loading ------------------------------------------------------------------------------
def save_normalized(
    path: str | Path,
    model: nn.Module,
    spec: str,
    input_shape: Sequence[int],
    num_classes: int,
    result: Normalization,
    seed: int,
) -> None:
    """Write the normalised network: its weights, the alphas, and how to rebuild it (``spec``)."""
    blob = {
        "format": FORMAT,
        "version": 1,
        "model": spec,
        "input_shape": [int(v) for v in input_shape],
        "num_classes": int(num_classes),
        "seed": int(seed),
        "alphas": result.alphas,
        "record": {k: v for k, v in result.to_dict().items() if k not in ("alphas", "history")},
        "state_dict": model.state_dict(),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_normalized(path: str | Path) -> nn.Module:
    """The network :func:`save_normalized` wrote, rebuilt from its spec (read with
    ``weights_only``: a file cannot run code; its model spec can name your factory, which runs)."""
    from nas.design.models import parse_model

    path = Path(path)
    if not path.is_file():
        raise NasError(f"normalized model {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise NasError(f"{str(path)!r} is not a readable normalized model ({type(err).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise NasError(f"{str(path)!r} is not a zcnas normalized model (no {FORMAT!r} format tag)")
    model = parse_model(blob["model"]).build(blob["input_shape"], blob["num_classes"], seed=blob["seed"])
    mix_activations(model, blob["alphas"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise NasError(f"{str(path)!r} does not fit the model {blob['model']!r}: {first}") from None
    return model


__all__ = [
    "normalize_nonlinearity",
    "Normalization",
    "MixedActivation",
    "mix_activations",
    "save_normalized",
    "load_normalized",
]
