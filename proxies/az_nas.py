"""AZ-NAS's three network scores (Lee & Ham, CVPR 2024): expressivity, progressivity and
trainability, read from the feature maps of a network's blocks at initialisation.

The AZ-NAS score itself is a population score: the sum of the log-ranks of these three and of
the network's complexity (FLOPs) within the population, registered as ``az_nas`` (our ensemble
with exactly these components). The components declare a shared pass, so scoring them together
(``az_nas``, the default ensemble, ``nas score --proxy az_expressivity,az_trainability``) costs one
forward and one backward pass per network, as the authors' single call does; each score equals
the component's alone.

Protocol (from the paper's definitions and the authors' NAS-Bench-201 code as the reference file
``peer_scores_nb201_500.csv`` ran it; no code is taken from it):

- **Blocks**: the stem and every module of ``model.cells`` (on NATS-TSS: 18 feature maps, the
  stem and the 17 cells, residual reduction blocks included). On NAS-Bench-101 (our extension:
  the authors did not run it) the stem and the 9 cell modules of ``model.layers``, the max-pooling
  between stacks left out, so consecutive blocks across a stack boundary are folded by the pixel
  unshuffle. Any other network is refused with a clear error.
- **Expressivity** of one feature map ``(B, C, H, W)``: its ``B*H*W`` rows of ``C`` channels are
  centred; the eigenvalues ``s`` of their covariance (divided by ``B*H*W``) are normalised to
  ``p = s / sum(s)`` and the block scores ``-sum p log(p + 1e-8)`` (the authors' epsilon). The
  network's expressivity is the sum over blocks; its **progressivity** is the smallest increase
  of the block score from one block to the next (``min_l s_l - s_{l-1}``). We compute the
  covariance and its eigenvalues in float64 (the authors: float32).
- **Trainability**: for each pair of consecutive blocks (from the last pair down), Rademacher
  noise ``g_out`` shaped like the later block's output is back-propagated to the earlier
  block's output (``g_in``); when the later block is spatially smaller ``g_in`` is folded by a
  pixel unshuffle of the stride; ``M = g_in^T g_out / (B*H*W)`` over the rows of both, and the
  pair scores ``2 - s - 1/(s + 1e-6)`` with ``s`` the largest singular value of ``M`` (best at
  ``s = 1``, a block that neither shrinks nor blows up gradients). The network's trainability is
  the mean over pairs. A block through which the gradient passes unchanged (``g_in == g_out``,
  e.g. a cell that is only a skip connection) scores ``-inf`` as in the reference, so the
  network's trainability is ``-inf``: a failed result, ranked last by the ensemble.
- **Mode**: train (BatchNorm with batch statistics; the reference disables running statistics).
- **Initialisation** (``init``): ``"kaiming"`` (default, the authors' protocol) re-draws every
  Conv2d/Linear weight from N(0, 2/fan_in) (see :func:`nas.proxies.naswot.kaiming_reinit`);
  ``"default"`` keeps the network's own weights.
- **Inputs** (``inputs``): ``"gaussian"`` (default, the authors' NB201 protocol) feeds N(0, 1)
  inputs of the given batch's shape; ``"batch"`` feeds the batch as given. The choice matters: on real
  CIFAR-10 images progressivity ranks far worse (Kendall tau 0.17 against 0.50 on the 500
  reference cells) and agrees with the authors' Gaussian-input scores at Spearman 0.44 only
  (``docs/proxies.md``).
- **Draws**: one numpy generator seeded with ``seed`` draws the weights (unless ``init_seed``
  seeds their own), then the inputs, then the noise, the same on every CPU (:mod:`nas.draws`;
  version 1 drew them with torch, whose Gaussian sampler differs by CPU, and its scores moved by
  up to 48% on a CPU without AVX2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas import draws
from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy
from nas.proxies.ensemble import Ensemble
from nas.proxies.naswot import check_init, kaiming_reinit_portable

_POOLING = (nn.MaxPool2d, nn.AvgPool2d)


def blocks(model: nn.Module) -> list[nn.Module]:
    """The stem, then every module of ``model.cells`` (NATS networks) or, failing that, every
    module of ``model.layers`` but the pooling layers between stacks (NAS-Bench-101)."""
    stem, cells = getattr(model, "stem", None), getattr(model, "cells", None)
    if isinstance(stem, nn.Module) and isinstance(cells, nn.ModuleList):
        return [stem, *cells]
    layers = getattr(model, "layers", None)
    if isinstance(stem, nn.Module) and isinstance(layers, (nn.Sequential, nn.ModuleList)):
        return [stem, *(m for m in layers if not isinstance(m, _POOLING))]
    raise NasError(
        "az_nas: the network needs a `stem` module and its blocks in `cells` (NATS) or `layers` (NAS-Bench-101)"
    )


def block_features(model: nn.Module, inputs: Tensor) -> list[Tensor]:
    """The outputs of the stem and of every block, in order, from one forward pass (kept in the
    autograd graph when gradients are enabled)."""
    parts = blocks(model)
    features: list[Tensor] = []

    def keep(module: nn.Module, args: Any, output: Tensor) -> None:
        features.append(output)

    handles = [m.register_forward_hook(keep) for m in parts]
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if len(features) != len(parts):
        raise NasError(
            f"az_nas: expected {len(parts)} block outputs in one forward pass, "
            f"got {len(features)} (blocks called more than once or not at all)"
        )
    return features


def block_expressivity(feature: Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of one feature map."""
    rows = feature.detach().movedim(1, -1).reshape(-1, feature.shape[1]).to(torch.float64)
    rows = rows - rows.mean(dim=0, keepdim=True)
    covariance = rows.T @ rows / rows.shape[0]
    eigenvalues = torch.linalg.eigvalsh(covariance)
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def expressivity_scores(features: list[Tensor]) -> list[float]:
    return [block_expressivity(f) for f in features]


def trainability(features: list[Tensor], rng: np.random.Generator) -> float:
    """Mean over consecutive block pairs of ``2 - s - 1/(s + 1e-6)``, ``s`` the top singular value
    of the cross-covariance of back-propagated Rademacher noise (see the module docstring)."""
    scores = []
    for i in range(len(features) - 1, 0, -1):
        f_out, f_in = features[i], features[i - 1]
        g_out = draws.rademacher(f_out.shape, rng, f_out.dtype).to(f_out.device)
        (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out)
        if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
            scores.append(-math.inf)
            continue
        if g_in.dim() == 4 and g_in.shape[2:] != g_out.shape[2:]:
            g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
        a = g_in.movedim(1, -1).reshape(-1, g_in.shape[1])
        b = g_out.movedim(1, -1).reshape(-1, g_out.shape[1])
        top = float(torch.linalg.matrix_norm((a.T @ b) / b.shape[0], ord=2))
        scores.append(2.0 - top - 1.0 / (top + 1e-6))
    return sum(scores) / len(scores) if scores else math.nan


_INPUTS = ("gaussian", "batch")


class _AZComponent(Proxy):
    # 2: draws the same on every CPU (nas.draws), the weights seeded with `seed` unless init_seed
    version = "2"
    higher_is_better = True
    defaults = {"inputs": "gaussian", "init": "kaiming", "init_seed": None, "seed": 0}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_init(self.name, self.params["init"])
        if self.params["inputs"] not in _INPUTS:
            raise NasError(
                f"proxy {self.name}: inputs must be one of {', '.join(_INPUTS)}, got {self.params['inputs']!r}"
            )

    def shared_pass(self):
        return az_pass

    def score(self, model: nn.Module, batch) -> float:
        return az_pass([self], model, batch)[0]

    def from_pass(self, block_scores: list[float], train: float) -> float:
        """This component's score from the pass's block expressivities and trainability."""
        raise NotImplementedError


def az_pass(components: list[_AZComponent], model: nn.Module, batch) -> list[float]:
    """The scores of AZ components with equal parameters from one forward pass (with gradients
    only when trainability is among them, then one backward pass per block pair): the authors'
    single call. Each score equals the component's alone: the same draws, from one generator
    seeded with ``seed`` (the weights, unless ``init_seed`` seeds their own; then the inputs; then
    the noise), each the same on every CPU (:mod:`nas.draws`)."""
    params = components[0].params
    rng = np.random.default_rng(int(params["seed"]))
    if params["init"] == "kaiming":
        init_seed = params["init_seed"]
        kaiming_reinit_portable(model, rng if init_seed is None else np.random.default_rng(int(init_seed)))
    x = batch.inputs
    if params["inputs"] == "gaussian":  # the authors' protocol: N(0, 1) of the batch's shape
        x = draws.normal(x.shape, rng, dtype=x.dtype).to(x.device)
    wants_trainability = any(isinstance(c, AZTrainability) for c in components)
    with torch.enable_grad() if wants_trainability else torch.no_grad():
        features = block_features(model, x)
    wants_blocks = any(not isinstance(c, AZTrainability) for c in components)
    block_scores = expressivity_scores(features) if wants_blocks else []
    train = trainability(features, rng) if wants_trainability else math.nan
    return [c.from_pass(block_scores, train) for c in components]


@register_proxy("az_expressivity")
class AZExpressivity(_AZComponent):
    tolerance = 1e-5  # across CPUs: docs/proxies.md#scores-on-other-machines
    needs = Needs(inputs=True, labels=False, gradients=False, mode="train")
    description = "AZ-NAS expressivity: summed entropy of each block's channel-covariance spectrum"

    def from_pass(self, block_scores: list[float], train: float) -> float:
        return float(sum(block_scores))


@register_proxy("az_progressivity")
class AZProgressivity(_AZComponent):
    tolerance = 1e-5  # across CPUs: docs/proxies.md#scores-on-other-machines
    needs = Needs(inputs=True, labels=False, gradients=False, mode="train")
    description = "AZ-NAS progressivity: the smallest block-to-block increase of expressivity"

    def from_pass(self, block_scores: list[float], train: float) -> float:
        if len(block_scores) < 2:
            raise NasError("az_progressivity: needs at least two blocks")
        return min(b - a for a, b in zip(block_scores, block_scores[1:]))


@register_proxy("az_trainability")
class AZTrainability(_AZComponent):
    tolerance = 5e-3  # across CPUs: docs/proxies.md#scores-on-other-machines
    needs = Needs(inputs=True, labels=False, gradients=True, mode="train")
    description = "AZ-NAS trainability: how close block-to-block gradient maps are to norm 1"

    def from_pass(self, block_scores: list[float], train: float) -> float:
        return train


AZ_COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")


@register_proxy()
class AZNAS(Ensemble):
    """The AZ-NAS score: the sum of the log-ranks of expressivity, progressivity, trainability
    and complexity (FLOPs) within a population, i.e. ``ensemble`` with these four components."""

    name = "az_nas"
    defaults = {"proxies": list(AZ_COMPONENTS), "reference": 200}
    positional = None
    description = "AZ-NAS (Lee & Ham, CVPR 2024): log-rank sum of its three scores and FLOPs"

    def __init__(self, **params: Any) -> None:
        if list(params.get("proxies", AZ_COMPONENTS)) != list(AZ_COMPONENTS):
            raise NasError("az_nas: its components are fixed; combine others with ensemble(...)")
        super().__init__(**params)

    def label(self) -> str:
        reference = self.params["reference"]
        return "az_nas" if reference == self.defaults["reference"] else f"az_nas(reference={reference})"
