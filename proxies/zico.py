"""ZiCo: zero-shot inverse coefficient of variation of the gradients (Li et al., ICLR 2023).

The batch is cut into ``splits`` equal sub-batches (at least 2). For each, the cross-entropy loss
of the network's logits against the labels is back-propagated from zeroed gradients, and the
weight gradient of every ``nn.Conv2d`` and ``nn.Linear`` module is kept. For each such layer,
over its weights w with a non-zero standard deviation across the sub-batches,

    layer term = log( sum_w  mean_b |g_{w,b}| / std_b(g_{w,b}) )

(the log of the sum over the layer, not a sum of logs), and the score is the sum of the layer
terms. Higher is better.

Protocol (chosen to match the authors' code as the AZ-NAS repository runs it on NAS-Bench-201,
``NB201/ZeroShotProxy/compute_zico_score.py``, itself the SLDGroup/ZiCo function):

- **Which layers**: Conv2d and Linear weights only (no biases, no BatchNorm), layers whose
  gradient exists.
- **Statistics**: mean of |g| and the population standard deviation (ddof=0, numpy's default)
  over the sub-batches, per weight; computed in float64. Weights whose gradient is the same in
  every sub-batch (std exactly 0, e.g. weights that get no gradient) are left out; a layer left
  with nothing (sum 0) adds nothing, as in the reference.
- **Degenerate network**: when *no* layer is left (every gradient is constant across the
  sub-batches, e.g. a cell that passes no signal), the score is ``-inf`` (the log of an empty
  sum), which :func:`nas.proxies.evaluate` records as a failed result. The reference returns 0.0
  there; we fail instead of ranking a network the proxy cannot see (the same cells fail NASWOT).
- **Mode**: train (BatchNorm with batch statistics).
- **Inputs**: real images with their labels. The reference uses two loader batches of 64, so
  the reference protocol is a batch of 128 with ``splits=2``; the default input batch of 64
  gives two sub-batches of 32.
- **Initialisation** (``init``): ``"default"`` (the reference does not re-initialise for ZiCo;
  the network keeps the benchmark's PyTorch-default init), or ``"kaiming"`` as for NASWOT.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy
from nas.proxies.naswot import check_init, kaiming_reinit


def gradient_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules ZiCo reads: every Conv2d and Linear, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def zico_from_gradients(grads: dict[str, list[torch.Tensor]]) -> float:
    """The ZiCo score of per-layer weight gradients, ``{layer: [gradient of sub-batch b]}``.

    Every layer needs the same number (>= 2) of gradients. Returns -inf when no layer has a
    weight whose gradient varies across the sub-batches."""
    total, used = 0.0, 0
    for name, per_batch in grads.items():
        if len(per_batch) < 2:
            raise ValueError(f"zico: layer {name} has {len(per_batch)} gradient(s), needs at least 2")
        g = torch.stack([t.reshape(-1) for t in per_batch]).to(torch.float64)
        std = g.std(dim=0, unbiased=False)
        varying = std != 0
        if not bool(varying.any()):
            continue
        ratio_sum = float((g.abs().mean(dim=0)[varying] / std[varying]).sum())
        if ratio_sum == 0.0:
            continue
        total += math.log(ratio_sum)
        used += 1
    return total if used else -math.inf


def collect_gradients(model: nn.Module, batches) -> dict[str, list[torch.Tensor]]:
    """Per-layer weight gradients of the mean cross-entropy loss, one per sub-batch."""
    layers = gradient_layers(model)
    if not layers:
        raise ValueError("zico: the network has no Conv2d or Linear layer")
    grads: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        model.zero_grad(set_to_none=True)
        logits = model(batch.inputs)
        loss = F.cross_entropy(logits, batch.labels)
        loss.backward()
        for name, module in layers:
            if module.weight.grad is not None:
                grads.setdefault(name, []).append(module.weight.grad.detach().clone())
    model.zero_grad(set_to_none=True)
    # A layer that got a gradient in some sub-batches only (a data-dependent graph): a missing
    # gradient is a zero gradient.
    count = len(batches)
    for per_batch in grads.values():
        while len(per_batch) < count:
            per_batch.append(torch.zeros_like(per_batch[0]))
    return grads


@register_proxy("zico")
class ZiCo(Proxy):
    tolerance = 5e-2  # across CPUs: docs/proxies.md#scores-on-other-machines
    version = "1"
    higher_is_better = True
    needs = Needs(inputs=True, labels=True, gradients=True, mode="train")
    defaults = {"splits": 2, "init": "default", "init_seed": None}
    description = "per-layer log of summed mean|g|/std(g) across batches (Li et al., ICLR 2023)"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_init(self.name, self.params["init"])
        splits = self.params["splits"]
        if not isinstance(splits, int) or isinstance(splits, bool) or splits < 2:
            raise NasError(f"proxy zico: splits must be an integer >= 2, got {splits!r}")

    def score(self, model: nn.Module, batch) -> float:
        splits = self.params["splits"]
        if len(batch) < splits:
            raise ValueError(f"zico: a batch of {len(batch)} cannot be split into {splits} sub-batches")
        if len(batch) % splits:
            raise ValueError(f"zico: a batch of {len(batch)} does not split into {splits} equal sub-batches")
        if self.params["init"] == "kaiming":
            kaiming_reinit(model, self.params["init_seed"])
        return zico_from_gradients(collect_gradients(model, batch.split(splits)))
