"""The statistics TINY needs, from one pass over a sample, and the growth candidate of each hidden layer.

Per weight layer i, with Xᵢ its patches (:meth:`Stage.patches`) and Gᵢ the per-sample loss
gradient of its pre-activation (the loss is summed, so each sample's row is its own gradient),
summed over output positions and averaged over the n samples: ``S_i = XᵢXᵢᵀ`` and ``M_i = XᵢGᵢᵀ``.
Per hidden layer h, with U what layer h+1 reads of each patch feature of layer h
(:meth:`Stage.read`, K slots per output position): ``M₋₂ = U Gₕ₊₁ᵀ``, ``P = U Xₕ₊₁ᵀ`` and the
new neurons' input second moment ``S₂ = U Uᵀ / K``. For a Linear layer K = 1 and these are the
paper's formulas; for a convolution S₂ is our reading (docs/grow.md): it drops the products of
different kernel slots, which is exact for a 1x1 kernel or a global average pool.
Accumulated in float64, in batches, without touching parameter gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas.strategies.grow.closed_form import NewNeurons, optimal_delta, optimal_neurons
from nas.strategies.grow.network import GrowableNet


@dataclass
class Statistics:
    s: list[torch.Tensor]  # per weight layer: (D, D)
    m: list[torch.Tensor]  # per weight layer: (D, out)
    mean_patch: list[torch.Tensor]  # per weight layer: (D,), over samples and positions
    positions: list[int]  # per weight layer: output positions
    s2: list[torch.Tensor]  # per hidden layer: (D, D)
    m_prev: list[torch.Tensor]  # per hidden layer: (D, K, out of the next layer)
    p: list[torch.Tensor]  # per hidden layer: (D, K, D of the next layer)
    samples: int
    loss: float  # mean loss over the sample


def collect_statistics(net: GrowableNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> Statistics:
    """One pass over ``(x, y)``: the sums, divided by the number of samples once at the end."""
    n_st = len(net.stages)
    acc: dict[str, list] = {k: [0.0] * n_st for k in ("s", "m", "mean")}
    acc.update({k: [0.0] * (n_st - 1) for k in ("s2", "m_prev", "p")})
    positions = [0] * n_st
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out, ins, pres = net.record(xb)
        loss = F.cross_entropy(out, yb, reduction="sum")
        grads = torch.autograd.grad(loss, pres)
        total += float(loss.detach())
        xs = [stage.patches(h.detach()) for stage, h in zip(net.stages, ins)]
        gs = [g.double().reshape(g.shape[0], g.shape[1], -1) for g in grads]
        for i in range(n_st):
            positions[i] = xs[i].shape[2]
            acc["s"][i] = acc["s"][i] + torch.einsum("ndq,neq->de", xs[i], xs[i])
            acc["m"][i] = acc["m"][i] + torch.einsum("ndq,noq->do", xs[i], gs[i])
            acc["mean"][i] = acc["mean"][i] + xs[i].sum((0, 2))
        for h in range(n_st - 1):
            size = pres[h].shape[2:]
            maps = xs[h].reshape(xs[h].shape[0], xs[h].shape[1], *size) if size else xs[h][..., None]
            u = net.stages[h].read(maps, net.stages[h + 1])  # (n, D, K, Q)
            acc["s2"][h] = acc["s2"][h] + torch.einsum("ndkq,nekq->de", u, u) / u.shape[2]
            acc["m_prev"][h] = acc["m_prev"][h] + torch.einsum("ndkq,noq->dko", u, gs[h + 1])
            acc["p"][h] = acc["p"][h] + torch.einsum("ndkq,neq->dke", u, xs[h + 1])
    n = len(x)
    return Statistics(
        s=[t / n for t in acc["s"]], m=[t / n for t in acc["m"]],
        mean_patch=[t / (n * q) for t, q in zip(acc["mean"], positions)], positions=positions,
        s2=[t / n for t in acc["s2"]], m_prev=[t / n for t in acc["m_prev"]], p=[t / n for t in acc["p"]],
        samples=n, loss=total / n,
    )  # fmt: skip


@dataclass
class Candidate:
    """Growing hidden layer ``layer``: the next layer's weight change and the new neurons, with their first-order gains.

    ``parameter_decrease`` = tr(M dW*); ``bottleneck`` = σ'(0)·Σσ² (what the new neurons remove
    of the expressivity bottleneck); ``first_order`` = the exact first-order loss decrease per
    unit step of the whole change (weight change and new neurons together) on the sample.
    ``moments``: each new neuron's pre-activation mean and variance at step 1 (for BatchNorm).
    """

    layer: int
    delta: torch.Tensor
    neurons: NewNeurons
    parameter_decrease: float
    bottleneck: float
    first_order: float
    moments: tuple[torch.Tensor, torch.Tensor]

    def score(self, select: str) -> float:
        return self.bottleneck if select == "bottleneck" else self.parameter_decrease + self.bottleneck


def neuron_moments(stats: Statistics, layer: int, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of each new neuron's pre-activation ``α·x`` over samples and positions."""
    mean = alpha @ stats.mean_patch[layer]
    second = ((alpha @ stats.s[layer]) * alpha).sum(1) / stats.positions[layer]
    return mean, (second - mean**2).clamp_min(0.0)


def candidate(
    net: GrowableNet,
    stats: Statistics,
    layer: int,
    max_neurons: int | None,
    statistical_threshold: float = 1e-3,
    numerical_threshold: float = 1e-6,
) -> Candidate:
    """The optimal change at hidden layer ``layer`` from the statistics (TINY's closed form)."""
    nxt = layer + 1
    delta, decrease = optimal_delta(stats.s[nxt], stats.m[nxt])
    n_full = -stats.m_prev[layer] + stats.p[layer] @ delta.T  # (D, K, out)
    d, k, out = n_full.shape
    as_matrix = lambda t: t.permute(0, 2, 1).reshape(d, out * k)  # noqa: E731 - ω's layout: (out, K) per neuron
    neurons = optimal_neurons(
        stats.s2[layer], as_matrix(n_full), max_neurons, statistical_threshold, numerical_threshold
    )
    slope = net.slopes[layer]
    theta = neurons.alpha.T @ neurons.omega.T  # (D, out·K): Σ_k α_k ω_kᵀ
    first_order = decrease - slope * float((theta * as_matrix(stats.m_prev[layer])).sum())
    return Candidate(
        layer=layer, delta=delta, neurons=neurons, parameter_decrease=decrease,
        bottleneck=slope * neurons.bottleneck_reduction, first_order=first_order,
        moments=neuron_moments(stats, layer, neurons.alpha),
    )  # fmt: skip
