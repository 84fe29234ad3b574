"""The nonlinearity coefficient of a network and of every layer in it (Philipp, arXiv 2105.12210).

For a map g from the input x to some tensor h (flattened per sample),

    NLC(g) = sqrt( E_x tr(J_g(x) Cov_x J_g(x)^T) / tr(Cov_h) ),

1 for an affine map. :func:`layer_nlc` reports two NLCs per layer:

- **cumulative**: g = the network up to the layer's output (x -> h_l). The last row is the
  network itself and equals :func:`nas.proxies.nlc.nlc_value` with the same pairs, BatchNorm
  policy and seed (the same estimator: the proxy's rounds of (point, direction) pairs; one
  forward pass with dual numbers gives every layer's tangent at once).
- **activation** (elementwise activation modules only): g = the activation alone, on the
  distribution of its own inputs s over the data. Its Jacobian is diag(tau'(s)), so the ratio is
  exact on the batch: sum_k E[tau'(s_k)^2] Var(s_k) / sum_k Var(tau(s_k)) over the features k.
  This is the quantity nonlinearity normalisation (:mod:`.normalize`) sets.

Errors are bootstrap standard errors over the batch's samples (``bootstrap`` resamples), a
sampling error of the data, not of the network. A resample reweights the samples both in the
denominator and as the *directions* of the numerator's pairs (each sample is the direction of
one pair per round; the points where J is taken stay), so both sides see the same resampled
data: an affine network keeps NLC 1 in every resample up to the O(1/N) shift of the mean.

Which layers: ``layers="activations"`` (default) reports every call of an activation module
(``torch.nn`` activation classes, in the order they run; a module called twice gives two rows,
``name#2``); ``layers="all"`` every call of a module without children; ``layers="none"`` only
the network (:func:`network_nlc`). Activations applied as
functions (``F.relu`` in ``forward``) are not modules and do not appear; the cumulative NLC of
the next module that is one includes them.

BatchNorm policy ``bn`` as in the ``nlc`` proxy: ``"eval"`` estimates the statistics once on the
batch, then freezes them (per-sample functions, affine networks score exactly 1); ``"train"``
keeps batch statistics. The caller's model is never changed (a deep copy is measured).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwad
from torch import nn

from nas.errors import NasError
from nas.proxies.nlc import pairing_rounds, prepared

#: Right-sized NLC (Philipp): networks well outside it train worse (docs/design.md measures it here).
BAND = (1.0, 3.0)
LAYER_CHOICES = ("activations", "all", "none")
_ACTIVATION_TYPES = tuple(getattr(nn.modules.activation, name) for name in nn.modules.activation.__all__)
#: Activation modules that act on each entry alone (their Jacobian is diagonal).
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Threshold,
)


@dataclass(frozen=True)
class LayerNLC:
    """One layer's row: its cumulative NLC and, for elementwise activations, its own."""

    name: str
    kind: str
    depth: int  # 1-based position among the reported layers, in the order they run
    width: int  # features per sample of the layer's output
    cumulative: float
    cumulative_se: float
    activation: float | None = None
    activation_se: float | None = None


@dataclass(frozen=True)
class NLCReport:
    """The NLC of a network and of its layers, with the estimation settings."""

    network: float
    network_se: float
    layers: list[LayerNLC]
    samples: int
    pairs: int
    bn: str
    seed: int
    band: tuple[float, float] = BAND
    notes: list[str] = field(default_factory=list)

    @property
    def in_band(self) -> bool:
        return self.band[0] <= self.network <= self.band[1]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["in_band"] = self.in_band
        return out


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, _ACTIVATION_TYPES)


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def bootstrap_weights(n: int, resamples: int, seed: int) -> torch.Tensor:
    """``resamples`` x ``n`` weights of bootstrap resamples of the samples (each row sums to 1)."""
    rng = np.random.default_rng(int(seed))
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=max(int(resamples), 0))
    return torch.from_numpy(counts / n)


def _ratio_nlc(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(
        denominator > 0, numerator.clamp(min=0) / denominator, torch.full_like(numerator, math.nan)
    ).sqrt()


class _Cumulative:
    """Running sums for the cumulative NLC of one layer call: the squared tangent norms of the
    pairs, summed by direction sample over the rounds, and the Gram matrix of the outputs."""

    def __init__(self, name: str, kind: str, n: int) -> None:
        self.name, self.kind = name, kind
        self.tangent_sq = torch.zeros(n, dtype=torch.float64)
        self.gram: torch.Tensor | None = None
        self.width = 0

    def add(self, output: torch.Tensor, direction_of: torch.Tensor, first: bool) -> None:
        primal, tangent = fwad.unpack_dual(output)
        if tangent is not None:  # None: the layer does not depend on the input
            self.tangent_sq.index_add_(0, direction_of, tangent.detach().double().flatten(1).pow(2).sum(1).cpu())
        if first:
            h = primal.detach().double().flatten(1)
            self.width = int(h.shape[1])
            self.gram = (h @ h.T).cpu()

    def nlc(self, rounds: int, weights: torch.Tensor) -> torch.Tensor:
        """NLC under each row of ``weights`` (resample weights of the samples)."""
        assert self.gram is not None
        numerator = weights @ (self.tangent_sq / rounds)
        denominator = weights @ self.gram.diagonal() - ((weights @ self.gram) * weights).sum(1)
        return _ratio_nlc(numerator, denominator)


def activation_moments(module: nn.Module, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(s, tau(s), tau'(s))`` flattened per sample (float64) for an elementwise activation."""
    s = s.detach()
    leaf = s.clone().requires_grad_(True)
    with torch.enable_grad():
        y = module.forward(leaf * 1.0)  # forward(): no hooks; "* 1.0" lets in-place modules run
        (grad,) = torch.autograd.grad(y.sum(), leaf)
    return s.double().flatten(1), y.detach().double().flatten(1), grad.double().flatten(1)


def activation_nlc(
    s: torch.Tensor, y: torch.Tensor, slope: torch.Tensor, weights: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """The activation's NLC (see the module docstring) from per-sample inputs ``s``, outputs ``y``
    and slopes tau'(s) (N x D each), under each row of ``weights``."""
    numerator = torch.zeros(weights.shape[0], dtype=torch.float64)
    denominator = torch.zeros(weights.shape[0], dtype=torch.float64)
    for start in range(0, s.shape[1], chunk):
        cols = slice(start, start + chunk)
        si, yi, di = s[:, cols], y[:, cols], slope[:, cols]
        var_s = weights @ si.pow(2) - (weights @ si).pow(2)
        var_y = weights @ yi.pow(2) - (weights @ yi).pow(2)
        numerator += ((weights @ di.pow(2)) * var_s).sum(1)
        denominator += var_y.sum(1)
    return _ratio_nlc(numerator, denominator)


def _spread(values: torch.Tensor) -> float:
    v = values[torch.isfinite(values)]
    return float(v.std(unbiased=True)) if len(v) > 1 else math.nan


def layer_nlc(
    model: nn.Module,
    inputs: torch.Tensor,
    pairs: int = 256,
    bn: str = "eval",
    seed: int = 0,
    layers: str = "activations",
    bootstrap: int = 200,
) -> NLCReport:
    """The NLC of ``model`` (its outputs: logits) and of each of its layers on the batch ``inputs``.

    ``pairs``: (point, direction) pairs of the Monte-Carlo numerator, rounded up to whole rounds of
    the batch (N*N pairs: exact on the batch); ``bn``: "eval" or "train" (module docstring);
    ``layers``: "activations" or "all"; ``bootstrap``: resamples for the standard errors (0: none).
    """
    if layers not in LAYER_CHOICES:
        raise NasError(f"nlc: layers must be one of {', '.join(LAYER_CHOICES)}, got {layers!r}")
    net, x, centred = prepared(model, inputs, pairs, bn)
    n, device = int(x.shape[0]), x.device

    def tapped(module: nn.Module) -> bool:
        if layers == "none":
            return False
        return is_activation(module) if layers == "activations" else not module._modules

    taps = [(name or "(model)", m) for name, m in net.named_modules() if tapped(m) and m is not net]
    order: list[str] = []  # row keys in the order the calls run
    rows: dict[str, _Cumulative] = {}
    act_stats: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    state: dict[str, Any] = {"first": True, "calls": {}, "pending": {}}

    def key_of(name: str) -> str:
        calls = state["calls"]
        calls[name] = calls.get(name, 0) + 1
        return name if calls[name] == 1 else f"{name}#{calls[name]}"

    def make_hooks(name: str, module: nn.Module):
        def pre(mod: nn.Module, args: tuple) -> None:
            if state["first"] and isinstance(mod, ELEMENTWISE) and args:
                s = _first_tensor(args[0])
                if s is not None:
                    state["pending"][id(mod)] = activation_moments(mod, fwad.unpack_dual(s).primal)

        def post(mod: nn.Module, args: tuple, output: Any) -> None:
            out = _first_tensor(output)
            pending = state["pending"].pop(id(mod), None)
            if out is None:
                return
            key = key_of(name)
            if key not in rows:
                rows[key] = _Cumulative(key, type(mod).__name__, n)
                order.append(key)
            rows[key].add(out, state["direction_of"], state["first"])
            if pending is not None:
                act_stats[key] = pending

        return module.register_forward_pre_hook(pre), module.register_forward_hook(post)

    handles = [h for name, m in taps for h in make_hooks(name, m)]
    final = _Cumulative("(output)", "output", n)
    rounds = pairing_rounds(n, pairs, seed)
    try:
        with torch.no_grad(), fwad.dual_level():
            for r, direction_of in enumerate(rounds):
                state.update(first=r == 0, calls={}, direction_of=direction_of)
                out = net(fwad.make_dual(x, centred[direction_of.to(device)]))
                out = _first_tensor(out)
                if out is None:
                    raise NasError("nlc: the model's output is not a tensor")
                final.add(out, direction_of, r == 0)
    finally:
        for h in handles:
            h.remove()

    uniform = torch.full((1, n), 1.0 / n, dtype=torch.float64)
    weights = bootstrap_weights(n, bootstrap, seed)
    result = []
    for depth, key in enumerate(order, 1):
        row = rows[key]
        value = float(row.nlc(len(rounds), uniform)[0])
        se = _spread(row.nlc(len(rounds), weights)) if bootstrap else math.nan
        act = act_se = None
        if key in act_stats:
            s, y, slope = act_stats[key]
            act = float(activation_nlc(s, y, slope, uniform)[0])
            act_se = _spread(activation_nlc(s, y, slope, weights)) if bootstrap else math.nan
        result.append(LayerNLC(key, row.kind, depth, row.width, value, se, act, act_se))
    network = float(final.nlc(len(rounds), uniform)[0])
    notes = []
    if not result and layers == "activations":
        notes.append("no activation modules found (activations applied as functions are not seen)")
    return NLCReport(
        network=network,
        network_se=_spread(final.nlc(len(rounds), weights)) if bootstrap else math.nan,
        layers=result,
        samples=n,
        pairs=n * len(rounds),
        bn=bn,
        seed=int(seed),
        notes=notes,
    )


def network_nlc(model: nn.Module, inputs: torch.Tensor, pairs: int = 256, bn: str = "eval", seed: int = 0) -> float:
    """The network's NLC alone: :func:`nas.proxies.nlc.nlc_value`'s estimate, computed with dual
    numbers in one batched forward per round (no per-layer work, no bootstrap)."""
    return layer_nlc(model, inputs, pairs=pairs, bn=bn, seed=seed, layers="none", bootstrap=0).network


def format_table(report: NLCReport) -> str:
    """The report as a fixed-width text table."""
    lines = [f"{'depth':>5}  {'layer':<32} {'kind':<12} {'width':>7}  {'cumulative NLC':>18}  {'activation NLC':>18}"]
    for r in report.layers:
        act = "" if r.activation is None else f"{r.activation:.3f} +- {r.activation_se:.3f}"
        cum = f"{r.cumulative:.3f} +- {r.cumulative_se:.3f}"
        lines.append(f"{r.depth:>5}  {r.name[:32]:<32} {r.kind[:12]:<12} {r.width:>7}  {cum:>18}  {act:>18}")
    lines.append(
        f"network NLC {report.network:.3f} +- {report.network_se:.3f} ({report.samples} samples, "
        f"{report.pairs} pairs, bn={report.bn}); right-sized band {report.band[0]:g}-{report.band[1]:g}: "
        + ("inside" if report.in_band else "OUTSIDE")
    )
    return "\n".join(lines)


def plot_layer_nlc(report: NLCReport, path: str, title: str | None = None) -> None:
    """NLC by depth: the cumulative NLC of each layer (error bars: bootstrap SE), each activation's
    own NLC, and the right-sized band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    depth = [r.depth for r in report.layers]
    ax.axhspan(*report.band, color="tab:green", alpha=0.12, label="right-sized band")
    if depth:
        ax.errorbar(
            depth,
            [r.cumulative for r in report.layers],
            yerr=[0 if math.isnan(r.cumulative_se) else r.cumulative_se for r in report.layers],
            marker="o",
            label="cumulative (input to layer)",
        )
        acts = [(r.depth, r.activation) for r in report.layers if r.activation is not None]
        if acts:
            ax.plot(*zip(*acts), "s", color="tab:orange", label="activation alone")
    ax.axhline(report.network, color="k", ls="--", lw=1, label=f"network {report.network:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (order of execution)")
    ax.set_ylabel("NLC")
    ax.set_title(title or "nonlinearity coefficient by depth")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["layer_nlc", "network_nlc", "NLCReport", "LayerNLC", "format_table", "plot_layer_nlc", "BAND", "ELEMENTWISE"]
