"""The statistics TINY needs, from one pass over a sample, and the growth candidate of each hidden layer.

Per weight layer i, with Xᵢ its patches (:meth:`Stage.patches`) and Gᵢ the per-sample loss
gradient of its pre-activation (the loss is summed, so each sample's row is its own gradient),
summed over output positions and averaged over the n samples: ``S_i = XᵢXᵢᵀ`` and ``M_i = XᵢGᵢᵀ``.
Per hidden layer h, with U what layer h+1 reads of each patch feature of layer h (its kernel
window, or the pooled positions a Linear reads; K slots per output position): ``M₋₂ = U Gₕ₊₁ᵀ``,
``P = U Xₕ₊₁ᵀ`` and the new neurons' input second moment ``S₂ = U Uᵀ / K``. For a Linear layer
K = 1 and these are the paper's formulas; for a convolution S₂ is our reading (docs/grow.md): it
drops the products of different kernel slots, which is exact for a 1x1 kernel or a global
average pool. Accumulated in float64, in batches, without touching parameter gradients. For a
convolution U (D x K x Q per sample) is never formed: M₋₂ and P are convolution weight gradients
(float32 kernels, float64 sums), and S₂ weighs each position by how often the next layer reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from nas.strategies.grow.closed_form import NewNeurons, optimal_delta, optimal_neurons
from nas.strategies.grow.network import GrowableNet


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(n, D, Q) -> (D, n·Q): features as rows, every (sample, position) pair as a column."""
    return t.transpose(0, 1).reshape(t.shape[1], -1)


def _conv_reads(nxt: torch.nn.Conv2d, maps, grads, next_patches, patches, out_size):
    """M₋₂, P and UUᵀ when the next layer is a convolution, without forming U (D x K x Q per sample).

    ``Σ_q U[d,k,q] G[o,q]`` is the weight gradient of a convolution of the patch maps with the
    next layer's geometry, so M₋₂ and P come from ``conv2d_weight`` (float32, fast kernels; the
    sums accumulate in float64). Unfold only selects, so UUᵀ weighs each position by how often the
    next layer reads it.
    """
    n, d = maps.shape[:2]
    k = nxt.kernel_size[0] * nxt.kernel_size[1]
    geometry = dict(stride=nxt.stride, padding=nxt.padding, dilation=nxt.dilation)

    def correlate(second: torch.Tensor) -> torch.Tensor:  # second: (rows, n·Q) -> (D, K, rows)
        rows = second.shape[0]
        grad_output = second.reshape(rows, n, *out_size).transpose(0, 1).float()
        w = conv2d_weight(maps.float(), (rows, d, *nxt.kernel_size), grad_output, **geometry)
        return w.double().reshape(rows, d, k).permute(1, 2, 0)

    slots = torch.ones(1, k, math.prod(out_size), dtype=torch.float64)
    reads = F.fold(slots, tuple(maps.shape[2:]), nxt.kernel_size, **geometry)  # type: ignore[arg-type]
    second = (patches * reads.reshape(-1).repeat(n)) @ patches.T
    return correlate(grads), correlate(next_patches), second, k


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
        # every statistic is one matrix product over (sample, position) pairs: (rows, n·Q) x (n·Q, cols)
        xs = [_rows(stage.patches(h.detach())) for stage, h in zip(net.stages, ins)]  # (D, n·Q)
        gs = [_rows(g.double().reshape(g.shape[0], g.shape[1], -1)) for g in grads]  # (out, n·Q)
        for i in range(n_st):
            positions[i] = xs[i].shape[1] // len(xb)
            acc["s"][i] = acc["s"][i] + xs[i] @ xs[i].T
            acc["m"][i] = acc["m"][i] + xs[i] @ gs[i].T
            acc["mean"][i] = acc["mean"][i] + xs[i].sum(1)
        for h in range(n_st - 1):
            size = pres[h].shape[2:]
            d = xs[h].shape[0]
            patches = xs[h].reshape(d, len(xb), -1).transpose(0, 1)  # back to (n, D, positions)
            maps = patches.reshape(len(xb), d, *size) if size else patches[..., None]
            nxt = net.stages[h + 1].weight
            if isinstance(nxt, torch.nn.Conv2d):
                m_prev, p, second, k = _conv_reads(nxt, maps, gs[h + 1], xs[h + 1], xs[h], pres[h + 1].shape[2:])
            else:  # a Linear after pooling / Flatten reads few slots: U is small
                u = net.stages[h].read_pooled(maps)  # (n, D, K, 1)
                k = u.shape[2]
                uk = u.permute(1, 2, 0, 3).reshape(d * k, -1)
                ud = u.permute(1, 0, 2, 3).reshape(d, -1)
                m_prev = (uk @ gs[h + 1].T).reshape(d, k, -1)
                p = (uk @ xs[h + 1].T).reshape(d, k, -1)
                second = ud @ ud.T
            acc["m_prev"][h] = acc["m_prev"][h] + m_prev
            acc["p"][h] = acc["p"][h] + p
            acc["s2"][h] = acc["s2"][h] + second / k
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
