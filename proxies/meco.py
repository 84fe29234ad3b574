"""MeCo and MeCo_opt: minimum eigenvalue of the channel correlation of every module's output
(Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue
of Correlation", NeurIPS 2023). Our implementation, written from the definition; the choices below
follow the authors' repository (github.com/HamsterMimi/MeCo), read, not copied:

- one input, one forward pass, the network in train mode (BatchNorm normalises with the statistics
  of that single input over its spatial positions, as in the authors' scripts, whose networks are
  fresh, hence in train mode). Like any train-mode forward it updates the BatchNorm running
  statistics of the network it is given (the scorer hands each proxy its own copy);
- a forward hook on **every module** ``model.modules()`` yields: the network itself, every
  container (``Sequential``, cells, op wrappers) and every leaf (conv, BN, ReLU, pooling, linear).
  A tensor that several nested modules return (e.g. a ReLU-conv-BN wrapper, its ``Sequential``
  and its BN) is counted once per module, as in the official hook loop. The sum therefore depends
  on the network's module nesting, not only on its function: our NATS networks follow the
  benchmark's own module layout, which is not the layout of the foresight-style NB201 model the
  authors scored, so absolute values differ from theirs;
- for each output: sample 0's tensor reshaped to C x (rest) (channels x spatial positions), its
  Pearson correlation matrix across channels with NaN/Inf set to 0 (a channel constant over space
  gives a zero row and column), the minimum eigenvalue. Outputs with one position per channel
  (pooled features, logits) have an all-zero matrix and add exactly 0; so does the ``none`` op.
  Non-tensor outputs and outputs of fewer than 2 dimensions are skipped (the official hook would
  misread a tuple as its first element, batch dimension included, or fail). The authors call a
  general eigen-solver and take the real part; the matrix is symmetric, so we use the symmetric
  solver in float64 (same values up to rounding);
- the per-module values are summed (NaN/Inf values dropped, as the official script does).

MeCo_opt (``meco_opt``): the authors' NB201 script (``correlation/NAS_Bench_201.py``, measure
``meco_opt``) samples 8 channels of each module output uniformly without replacement, takes the
minimum eigenvalue of their 8 x 8 correlation matrix and multiplies it by C/8 (C = channels of that
output), then sums like MeCo. Their sampling uses Python's unseeded ``random``; ours is a seeded
torch generator. Where C <= the sample size every channel is used (weight 1): their code would
raise there.

Input (``input``, ``size``): the repository's foresight-style ``meco.py`` scores a Gaussian
1x3x64x64 tensor, while its NB201 correlation script feeds one real training image at the
dataset's resolution (batch size 1, 32x32 on CIFAR). Our default is the Gaussian 64x64 input
(``input="gaussian", size=64``, seeded), because
  - at 32x32 the third NATS stage has 64 channels on 8x8 = 64 positions: after centring its
    feature maps have rank <= 63, so every one of its ~155 module outputs has minimum eigenvalue
    exactly 0 (we measured <= 5e-16) for every network: a third of the modules carry no signal.
    At 64x64 that stage has 256 positions and contributes;
  - it needs no data and is the repository's ``meco.py`` protocol (our METHODS 2.6: one random
    1x3x64x64 input);
  - measured (``scripts/nlc_reference.py``, Kendall tau-b vs CIFAR-10 test accuracy, networks
    built after ``torch.manual_seed(0)``) on the first 200 NATS-TSS reference cells: Gaussian
    64x64 +0.719, one real image at 32x32 (the NB201 script's protocol) +0.720; MeCo_opt +0.744
    and +0.739; on the first 100, Gaussian 32x32 +0.712. Equal within noise, so the choice rests
    on the two reasons above, not on the figures.
``input="batch"`` takes sample 0 of the proxy's batch (``size=null`` keeps its resolution,
as the authors' NB201 script did; a size resizes it bilinearly). The cost of 64x64 is about
1.6x that of 32x32 (both well under one forward+backward pass of a batch of 64).
Direction: higher is better (the paper's).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy

INPUTS = ("batch", "gaussian")


def min_correlation_eigenvalue(features: torch.Tensor) -> float:
    """Minimum eigenvalue of the Pearson correlation matrix of the rows of ``features``
    (C x P: C variables, P observations), NaN/Inf entries set to 0, in float64."""
    rows = features.detach().double().reshape(features.shape[0], -1)
    centred = rows - rows.mean(1, keepdim=True)
    cov = centred @ centred.T
    std = cov.diagonal().sqrt()
    corr = cov / std[:, None] / std[None, :]
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    corr = 0.5 * (corr + corr.T)
    return float(torch.linalg.eigvalsh(corr)[0])


def _sample_zero_features(output: Any) -> torch.Tensor | None:
    """Sample 0 of a module output as C x (rest), or None when it has no channel structure."""
    if not isinstance(output, torch.Tensor) or output.dim() < 2 or not output.is_floating_point():
        return None
    sample = output[0]
    return sample.reshape(sample.shape[0], -1)


def meco_terms(
    model: nn.Module, x: torch.Tensor, channels: int | None = None, generator: torch.Generator | None = None
) -> list[float]:
    """One value per module call in forward order: the minimum correlation eigenvalue of sample 0's
    output (``channels``: sample that many channels and weight by C/channels, MeCo_opt)."""
    values: list[float] = []

    def hook(module, inputs, output):
        features = _sample_zero_features(output)
        if features is None:
            return
        count = features.shape[0]
        if channels is not None and count > channels:
            pick = torch.randperm(count, generator=generator)[:channels]
            values.append(min_correlation_eigenvalue(features[pick.to(features.device)]) * count / channels)
        else:
            values.append(min_correlation_eigenvalue(features))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return values


def _input(batch, kind: str, size: int | None, seed: int, like: torch.Tensor) -> torch.Tensor:
    if kind == "batch":
        x = batch.inputs[:1]
        if size is not None and tuple(x.shape[2:]) != (size, size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.to(device=like.device, dtype=like.dtype)
    channels, height, width = batch.inputs.shape[1:]
    if size is not None:
        height = width = int(size)
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, channels, height, width, generator=gen).to(device=like.device, dtype=like.dtype)


def _reference_tensor(model: nn.Module) -> torch.Tensor:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return torch.empty(0)


class _MeCoBase(Proxy):
    higher_is_better = True
    needs = Needs(inputs=True, labels=False, gradients=False, mode="train")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["input"] not in INPUTS:
            raise NasError(f"{self.name}: input must be one of {', '.join(INPUTS)}, got {self.params['input']!r}")
        size = self.params["size"]
        if size is not None and int(size) < 1:
            raise NasError(f"{self.name}: size must be positive or null, got {size}")

    def _channels(self) -> int | None:
        return None

    def score(self, model: nn.Module, batch) -> float:
        size = self.params["size"]
        x = _input(
            batch,
            self.params["input"],
            None if size is None else int(size),
            int(self.params["seed"]),
            _reference_tensor(model),
        )
        gen = torch.Generator().manual_seed(int(self.params["seed"]))
        values = meco_terms(model, x, channels=self._channels(), generator=gen)
        return math.fsum(v for v in values if math.isfinite(v))


@register_proxy("meco")
class MeCo(_MeCoBase):
    """MeCo: sum over all modules of the minimum eigenvalue of sample 0's channel correlation.

    ``input``: "gaussian" (default: seeded N(0,1) image, as the authors' foresight ``meco.py``)
    or "batch" (sample 0 of the batch, as their NB201 script: one real image); ``size``: the
    input is size x size (default 64; null: the batch's resolution); ``seed``: of the Gaussian
    input. Channels follow the batch (3 for CIFAR).
    """

    tolerance = 1e-4  # across CPUs: docs/proxies.md#scores-on-other-machines

    version = "1"
    defaults: ClassVar[dict[str, Any]] = {"input": "gaussian", "size": 64, "seed": 0}
    description = "MeCo: sum of min eigenvalues of per-module channel correlation (one input, one forward)"


@register_proxy("meco_opt")
class MeCoOpt(_MeCoBase):
    """MeCo_opt: as MeCo, on ``channels`` channels sampled per module (seeded), each module's
    minimum eigenvalue weighted by C/channels (the authors' NB201 script: 8 channels)."""

    tolerance = 1e-4  # across CPUs: docs/proxies.md#scores-on-other-machines

    version = "1"
    defaults: ClassVar[dict[str, Any]] = {"input": "gaussian", "size": 64, "seed": 0, "channels": 8}
    description = "MeCo_opt: MeCo on sampled channels, weighted by C/n"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if int(self.params["channels"]) < 2:
            raise NasError(f"meco_opt: channels must be at least 2, got {self.params['channels']}")

    def _channels(self) -> int | None:
        return int(self.params["channels"])
