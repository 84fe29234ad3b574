"""Capacity allocation (Donier 2019): where a network spends its effective parameters over its input.

Our implementation of the idea (../shared/docs/METHODS.md section 5; the papers' formulas were
not available). For a model whose output ``y`` is linear in its input, ``y = a(θ)·x``, let
``A = ∂a/∂θ`` (input coordinates x parameters) and ``Ã = Σ^(1/2) A`` with ``Σ = E[xxᵀ]`` the
input metric (identity for white inputs). The capacity matrix ``C_ik = Ã_ik (Ã⁺)_ki`` gives:

- the capacity of input coordinate i, ``Σ_k C_ik = (ÃÃ⁺)_ii`` in [0, 1]: how much of the
  direction x_i the parameters can change the function along;
- the contribution of parameter k, ``Σ_i C_ik = (Ã⁺Ã)_kk`` in [0, 1];
- the total, ``rank(Ã)``: the effective number of parameters.

A nonlinear network is linearised around a data sample (our reading of the "extended input
space" of the second paper): at each sample x_s its input gradient ``a(θ, x_s)`` is the linear
map of its activation region, and the A of all samples are stacked (rows: sample x coordinate).
The capacity of coordinate i is the sum of its rows' projector diagonal over the samples; for a
linear model this equals the linear capacity, and the total is still a rank <= the parameters.

:func:`layer_transfer` / :func:`markov_allocation` give the layer-decoupling view: with layers
decoupled, how a layer's output position draws on its input positions is a stochastic matrix,
and the allocation of an output over the input is the product of those (a Markov chain; a
diffusion for deep residual stacks, whose width grows like the square root of depth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from nas.errors import NasError


@dataclass
class CapacityReport:
    """Capacity per input coordinate (``per_input``, shaped like one input), per parameter, and in total."""

    per_input: np.ndarray
    per_parameter: np.ndarray
    total: float
    rank: int
    parameters: int
    samples: int

    def region(self, mask) -> float:
        """Capacity allocated to the region where ``mask`` (shaped like one input) is true."""
        return float(self.per_input[np.asarray(mask, dtype=bool)].sum())

    def to_dict(self) -> dict:
        return {
            "total": self.total, "rank": self.rank, "parameters": self.parameters, "samples": self.samples,
            "per_input": self.per_input.round(6).tolist(),
        }  # fmt: skip


def _scalar_output(model: nn.Module, output):
    """f(params, x) -> the chosen scalar output for one input x (unbatched)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    buffers = dict(model.named_buffers())

    def f(params: dict, x: torch.Tensor) -> torch.Tensor:
        y = functional_call(model, {**params, **buffers}, (x.unsqueeze(0),))[0]
        return y.reshape(-1)[output] if output is not None else y.reshape(-1).sum()

    return names, f


def input_map_jacobian(model: nn.Module, x: torch.Tensor, output: int | None = None) -> torch.Tensor:
    """``A(x_s) = ∂a/∂θ`` for each sample: (samples, input coordinates, parameters), float64.

    ``a(θ, x) = ∂y/∂x`` is the linear map of ``y`` (output index ``output``, or the sum of the
    outputs) in the activation region of ``x``; for a linear model it does not depend on x.
    """
    model = model.double().eval()
    names, f = _scalar_output(model, output)
    params = {n: p.detach() for n, p in model.named_parameters() if n in names}
    grad_x = jacrev(f, argnums=1)  # a(θ, x)
    jac = vmap(jacrev(grad_x, argnums=0), in_dims=(None, 0))(params, x.double().detach())  # {name: (S, *x, *p)}
    s = x.shape[0]
    n = math.prod(x.shape[1:])
    return torch.cat([jac[name].detach().reshape(s, n, -1) for name in names], 2)


def capacity_allocation(
    model: nn.Module,
    x: torch.Tensor,
    output: int | None = None,
    metric: torch.Tensor | None = None,
    rcond: float = 1e-9,
) -> CapacityReport:
    """The capacity ``model`` allocates to each coordinate of its input (see the module docstring).

    ``x``: (S, *input shape) samples where the model is linearised (one sample, e.g. zeros, for a
    linear model). ``output``: the output index whose capacity is measured (default: their sum).
    ``metric``: the input metric Σ (n x n) or None for the identity (white inputs).
    """
    if x.ndim < 2:
        raise NasError("capacity_allocation takes a batch of inputs: (samples, *input shape)")
    a = input_map_jacobian(model, x, output)  # (S, n, P)
    s, n, p = a.shape
    if metric is not None:
        values, vectors = torch.linalg.eigh(metric.double())
        root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
        a = torch.einsum("ij,sjp->sip", root, a)
    stacked = a.reshape(s * n, p)
    u, sigma, vt = torch.linalg.svd(stacked, full_matrices=False)
    keep = sigma > rcond * float(sigma.max()) if sigma.numel() and float(sigma.max()) > 0 else sigma > 0
    u, vt = u[:, keep], vt[keep]
    per_row = (u**2).sum(1)  # diag(ÃÃ⁺)
    per_param = (vt**2).sum(0)  # diag(Ã⁺Ã)
    per_input = per_row.reshape(s, n).sum(0).reshape(x.shape[1:])
    rank = int(keep.sum())
    return CapacityReport(
        per_input=per_input.numpy(), per_parameter=per_param.numpy(), total=float(per_row.sum()), rank=rank,
        parameters=p, samples=s,
    )  # fmt: skip


def layer_transfer(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The stochastic matrix of one layer over positions: ``T[p, q]`` is the share of output position
    p's input-gradient energy that comes from input position q, averaged over the samples ``h``
    (S, C, positions...) and summed over channels. Rows sum to 1."""
    layer = layer.double().eval()
    h = h.double()

    def one(v: torch.Tensor) -> torch.Tensor:
        return layer(v.unsqueeze(0))[0]

    jac = vmap(jacrev(one))(h)  # (S, C_out, *pos, C_in, *pos)
    s, c_out = jac.shape[:2]
    positions = math.prod(h.shape[2:])
    energy = (jac.detach() ** 2).reshape(s, c_out, positions, h.shape[1], positions).sum((0, 1, 3))
    return energy / energy.sum(1, keepdim=True).clamp_min(1e-300)


def markov_allocation(transfers: list[torch.Tensor], output_position: int) -> np.ndarray:
    """Total decoupling: the allocation of one output position over the input positions is the
    product of the layers' transfer matrices (last layer first), a Markov chain."""
    dist = torch.zeros(transfers[-1].shape[0], dtype=torch.float64)
    dist[output_position] = 1.0
    for t in reversed(transfers):
        dist = dist @ t
    return dist.detach().numpy()


def input_gradient_energy(model: nn.Module, x: torch.Tensor, output_position: int) -> np.ndarray:
    """The effective receptive field: E|∂y_p/∂x_q|² over the samples, summed over channels, normalised."""
    model = model.double().eval()
    x = x.double().requires_grad_(True)
    y = model(x)
    (g,) = torch.autograd.grad(y.reshape(y.shape[0], y.shape[1], -1)[:, :, output_position].sum(), x)
    energy = (g**2).reshape(x.shape[0], x.shape[1], -1).sum((0, 1))
    return (energy / energy.sum()).numpy()


def spread(profile: np.ndarray) -> float:
    """The standard deviation of a distribution over 1-D positions (its width)."""
    p = np.asarray(profile, dtype=float).ravel()
    p = p / p.sum()
    pos = np.arange(len(p))
    mean = (p * pos).sum()
    return float(math.sqrt((p * (pos - mean) ** 2).sum()))


def plot_capacity(reports: dict[str, CapacityReport], path: str | Path, marks=None) -> None:
    """Capacity per input coordinate, one panel per model: bars for 1-D inputs, a heatmap for images
    (channels summed). ``marks``: 1-D positions to highlight (e.g. where the task's dependencies are)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def values_of(rep: CapacityReport) -> np.ndarray:
        v = np.squeeze(rep.per_input)
        return v.sum(0) if v.ndim == 3 else v

    images = values_of(next(iter(reports.values()))).ndim == 2
    n = len(reports)
    shape = (1, n) if images else (n, 1)
    size = (3.4 * n, 3.6) if images else (7, 1.6 * n + 0.4)
    fig, axes = plt.subplots(*shape, figsize=size, squeeze=False)
    for ax, (label, rep) in zip(axes.ravel(), reports.items()):
        values = values_of(rep)
        if values.ndim == 2:
            im = ax.imshow(values, cmap="viridis", vmin=0, vmax=max(1e-9, float(values.max())))
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        else:
            ax.bar(np.arange(values.size), values.ravel(), width=1.0, color="tab:blue")
            ax.set_ylim(0, max(1.0, float(values.max()) * 1.05))
            for m in marks or []:
                ax.axvline(m, color="tab:red", lw=0.8, ls="--")
        title = f"{label}: capacity {rep.total:.1f} = rank {rep.rank} of {rep.parameters} parameters"
        ax.set_title("\n".join(textwrap.wrap(title, 40 if images else 110)), fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
