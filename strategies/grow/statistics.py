"""The statistics TINY needs, from one pass over a sample, and the growth candidate of each layer.

Per Linear layer i: ``S_i = BᵢᵀBᵢ/n`` and ``M_i = BᵢᵀGᵢ/n`` (Bᵢ its input with a column of ones,
Gᵢ the per-sample loss gradient of its pre-activation: the loss is summed, not averaged, so each
row is one sample's gradient). Per hidden layer l (between Linear l and l+1): ``M₋₂ = BₗᵀGₗ₊₁/n``
and ``P = BₗᵀBₗ₊₁/n``. Accumulated in float64, in batches, without touching parameter gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas.strategies.grow.closed_form import NewNeurons, optimal_delta, optimal_neurons
from nas.strategies.grow.network import GrowableMLP


def _extend(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b, b.new_ones(len(b), 1)], 1).double()


@dataclass
class Statistics:
    s: list[torch.Tensor]
    m: list[torch.Tensor]
    m_prev: list[torch.Tensor]
    p: list[torch.Tensor]
    samples: int
    loss: float  # mean loss over the sample


def collect_statistics(net: GrowableMLP, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> Statistics:
    """One pass over ``(x, y)``: the sums, divided by the number of samples once at the end."""
    n_lin = len(net.linears)
    s: list = [0.0] * n_lin
    m: list = [0.0] * n_lin
    m_prev: list = [0.0] * (n_lin - 1)
    p: list = [0.0] * (n_lin - 1)
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out, ins, pres = net.record(xb)
        loss = F.cross_entropy(out, yb, reduction="sum")
        grads = torch.autograd.grad(loss, pres)
        total += float(loss.detach())
        bs = [_extend(b.detach()) for b in ins]
        gs = [g.double() for g in grads]
        for i in range(n_lin):
            s[i] = s[i] + bs[i].T @ bs[i]
            m[i] = m[i] + bs[i].T @ gs[i]
        for h in range(n_lin - 1):  # hidden layer h: between Linear h and Linear h+1
            m_prev[h] = m_prev[h] + bs[h].T @ gs[h + 1]
            p[h] = p[h] + bs[h].T @ bs[h + 1]
    n = len(x)
    return Statistics(
        s=[t / n for t in s], m=[t / n for t in m], m_prev=[t / n for t in m_prev], p=[t / n for t in p],
        samples=n, loss=total / n,
    )  # fmt: skip


@dataclass
class Candidate:
    """Growing hidden layer ``layer``: the next layer's weight change and the new neurons, with their first-order gains.

    ``parameter_decrease`` = tr(M dW*); ``bottleneck`` = σ'(0)·Σσ² (what the new neurons remove
    of the expressivity bottleneck); ``first_order`` = the exact first-order loss decrease per
    unit step of the whole change (weight change and new neurons together) on the sample.
    """

    layer: int
    delta: torch.Tensor
    neurons: NewNeurons
    parameter_decrease: float
    bottleneck: float
    first_order: float

    def score(self, select: str) -> float:
        return self.bottleneck if select == "bottleneck" else self.parameter_decrease + self.bottleneck


def candidate(
    net: GrowableMLP,
    stats: Statistics,
    layer: int,
    max_neurons: int | None,
    statistical_threshold: float = 1e-3,
    numerical_threshold: float = 1e-6,
) -> Candidate:
    """The optimal change at hidden layer ``layer`` from the statistics (TINY's closed form)."""
    nxt = layer + 1
    delta, decrease = optimal_delta(stats.s[nxt], stats.m[nxt])
    n_mat = -stats.m_prev[layer] + stats.p[layer] @ delta.T
    neurons = optimal_neurons(stats.s[layer], n_mat, max_neurons, statistical_threshold, numerical_threshold)
    slope = net.slopes[layer]
    theta = neurons.alpha.T @ neurons.omega.T  # (in+1, out): Σ_k α_k ω_kᵀ
    first_order = decrease - slope * float(torch.trace(theta.T @ stats.m_prev[layer]))
    return Candidate(
        layer=layer, delta=delta, neurons=neurons, parameter_decrease=decrease,
        bottleneck=slope * neurons.bottleneck_reduction, first_order=first_order,
    )  # fmt: skip
