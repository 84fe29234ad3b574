"""NEAR: Network Expressivity by Activation Rank (Husistein, Reiher & Eckhoff, ICLR 2025).

The score of a network at initialisation is the sum, over its hooked modules, of the effective
rank of one activation matrix per module. Higher is better. This module implements the protocol of
the official ``near_score`` package (v1.0.0, BSD-3) from its description; no code is taken from it.

Protocol (what :func:`near_score` computes)
-------------------------------------------
* **Hooked modules**: every module of ``model.named_modules()`` (in that order) that has a
  ``weight`` attribute or is an instance of a class of ``torch.nn.modules.activation``. So a
  Conv -> BatchNorm -> ReLU block gives three matrices (the BN has a ``weight``); functional
  activations (``F.relu``) are not seen.
* **Matrices**: rows are observations, columns are features. A dense output ``(N, F)`` gives one
  row per sample; a convolution output ``(N, C, H, W)`` gives one row per spatial position with the
  channels as columns, the positions of one sample ordered as the official ``transpose(1, 3)``
  orders them (the last spatial axis slowest). Samples are fed one at a time (batch 1) and each
  module accumulates rows until it has at least as many rows as columns ``n``; it then keeps a
  contiguous block of ``n`` rows that starts at ``randint(0, rows // size - 1) * size`` (``size``
  = the output's last dimension, 0 when that bound is not positive) and stops recording. Feeding
  stops once every module that ran is complete. As in the official code, the block is cut short
  (fewer than ``n`` rows) when the start is drawn near the end: on NATS-TSS this happens for the
  64-channel 8x8 layers. A module whose rows never reach ``n`` before the data ends keeps all of
  them.
* **Effective rank** (Roy & Vetterli 2007): singular values normalised by their sum (L1),
  ``exp`` of their Shannon entropy (natural log, ``0 ln 0 = 0``); an all-zero matrix has rank 0.
* **Repetitions**: the score is the mean over ``repetitions``; with ``reinit=True`` (the official
  behaviour) every module with ``reset_parameters()`` is reset between repetitions, so repetitions
  after the first see PyTorch's default initialisation, not the network's own. Use
  ``reinit=False`` whenever the initialisation itself is under test.
* **BatchNorm**: the official code never switches to eval mode, so with batch 1 a BatchNorm in
  training mode normalises each sample with its own statistics over the spatial positions. That is
  the default here (``batchnorm="sample"``). ``batchnorm="eval"`` puts BatchNorm layers in eval
  mode (running statistics) instead, which is the only option for BatchNorm1d after a dense layer
  (one value per channel per sample: the official code fails there).

The fast path
-------------
The default engine (``fast=True``) gives the same matrices as feeding samples one at a time
(:func:`activation_matrices` with ``fast=False``, a direct implementation of the protocol above) in
far fewer forward passes:

* the samples go through the network in one batch, as many as the widest ``nn.Linear`` needs
  (10 on NATS-TSS: only the classifier needs more than the first sample); a module that still
  lacks rows afterwards gets another batch of exactly the samples it still needs;
* BatchNorm layers that would use batch statistics are temporarily computed per sample (each
  sample's mean and biased variance over its positions, then the BatchNorm's affine map), which
  equals BatchNorm in training mode on a batch of one; their running statistics are left
  untouched (they never enter a training-mode output, so scores do not change);
* image batches run in channels-last memory format (several times faster convolutions and
  pooling on CPU; the values agree with the per-sample path to float32 rounding);
* a hook only copies what the module's block can come from (its first sample when that completes
  it); after the pass the random block starts are drawn from the same generator in the same order
  as the per-sample protocol (by the sample at which a module completes, then by call order in the
  forward pass), in one vectorised ``randint`` call, and the blocks of equal-shape outputs are cut
  with one gather;
* the matrices are grouped by shape and their singular values computed in batched calls (float64:
  square roots of the eigenvalues of the smaller Gram matrix).

It assumes that samples do not interact except through BatchNorm and that every forward pass calls
the same modules in the same order (a static graph). Dropout in training mode draws different masks
in the two engines. Modules called several times per forward pass (weight sharing) are handled by
both engines.

Inputs, generator and differences from the official code
--------------------------------------------------------
``data`` is a tensor of samples ``(N, ...)`` or a re-iterable of batches (a ``DataLoader``; items
may be ``(x, y, ...)`` tuples); batches are split into single samples (the official code feeds
whole batches, so its numbers equal ours for batch size 1, its documented use). With a tensor,
the first repetition uses the samples in order and each later one a permutation drawn from the
generator (the official example reshuffles its ``DataLoader``); an iterable is iterated again.
The generator is ``numpy.random.RandomState(seed)``, or any object with ``randint`` and
``permutation`` passed as ``rng`` (``numpy.random`` itself reproduces the official calls on the
global state: the official regression values are reproduced to 1e-8).

Differences from the official code, all deliberate: no autograd (``torch.inference_mode()`` in
the fast engine, ``torch.no_grad()`` in the per-sample one); inputs are moved to the model's
device; singular values in float64 by default (``precision="float32"``: an SVD in
float32, the official arithmetic); empty outputs and outputs of fewer than 2 dimensions are
skipped, and 3-D / 5-D outputs are laid out like 4-D ones (positions in reversed axis order,
channels as columns; the official ``transpose(1, 3)`` fails on 3-D and mixes axes on 5-D
outputs); a matrix with NaN or infinite entries raises :class:`NonFiniteActivations` (the
official SVD raises on NaN and silently scores infinities as 0); the parameters are not reset
after the last repetition; hooks are always removed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy
from nas.proxies.near.capture import (
    _BATCHNORM_MODES,
    ACTIVATION_TYPES,
    _BatchNormMode,
    _is_hooked,
    _model_device,
    _named_modules,
    _Record,
    _Samples,
    hooked_modules,
)
from nas.proxies.near.engines import _collect_batched, _collect_per_sample
from nas.proxies.near.rank import (
    NonFiniteActivations,
    _precision,
    _singular_values,
    effective_rank,
    effective_ranks,
    effective_ranks_from_singular_values,
)


# -- public API -----------------------------------------------------------------------------------
def _survey(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[nn.Module], int]:
    """One pass over the modules: the hooked ones, the BatchNorm layers, and the number of samples
    for the first batched pass (what the widest ``nn.Linear`` needs: a dense output gives one row
    per sample; modules that need more get a second pass)."""
    hooked, norms, widest = [], [], 1
    for name, module in _named_modules(model):
        if _is_hooked(module):
            hooked.append((name, module))
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            norms.append(module)
        elif isinstance(module, nn.Linear):
            widest = max(widest, module.out_features)
    return hooked, norms, widest


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise NasError(f"near: {name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def activation_matrices(
    model: nn.Module,
    data: Tensor | Iterable,
    rng: Any = None,
    *,
    fast: bool = True,
    layer_index: int | None = None,
    batchnorm: str = "sample",
    order: np.ndarray | None = None,
) -> list[tuple[str, Tensor]]:
    """One repetition: the activation matrix of every hooked module that ran (name, matrix), in
    hooked-module order. ``rng`` draws the block starts (default ``RandomState(0)``)."""
    _check_choice("batchnorm", batchnorm, _BATCHNORM_MODES)
    rng = np.random.RandomState(0) if rng is None else rng
    hooked, norms, widest = _survey(model)
    if layer_index is not None:
        try:
            hooked = [hooked[layer_index]]
        except IndexError:
            raise NasError(
                f"near: layer_index {layer_index} is out of range; the model has {len(hooked)} hooked modules"
            ) from None
        module = hooked[0][1]
        widest = module.out_features if isinstance(module, nn.Linear) else 1
    records = [_Record(name, module) for name, module in hooked]
    samples = _Samples(data, order, _model_device(model))
    if fast:
        _collect_batched(model, records, samples, rng, widest, norms, batchnorm)
    else:
        with torch.no_grad(), _BatchNormMode(norms, batchnorm, per_sample=False):
            _collect_per_sample(model, records, samples, rng)
    out = []
    for rec in records:
        matrix = rec.result()
        if matrix is not None and matrix.shape[0] > 0:
            out.append((rec.name, matrix))
    return out


def matrix_ranks(matrices: Sequence[tuple[str, Tensor]], precision: str = "float64") -> list[float]:
    """Effective ranks of named matrices, computed in batches of equal shape."""
    dtype = _precision(precision)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (_, m) in enumerate(matrices):
        groups.setdefault(tuple(m.shape), []).append(i)
    ranks = [0.0] * len(matrices)
    for shape, members in groups.items():
        if 0 in shape:
            continue
        stack = torch.stack([matrices[i][1] for i in members]).to(dtype)
        finite = torch.isfinite(stack).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = [matrices[members[k]][0] for k in torch.nonzero(~finite).flatten().tolist()]
            raise NonFiniteActivations(
                f"near: NaN or infinite activations in {', '.join(bad[:5])}"
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            )
        values = effective_ranks_from_singular_values(_singular_values(stack)).tolist()
        for i, value in zip(members, values):
            ranks[i] = value
    return ranks


def layer_ranks(
    model: nn.Module,
    data: Tensor | Iterable,
    rng: Any = None,
    *,
    fast: bool = True,
    layer_index: int | None = None,
    batchnorm: str = "sample",
    precision: str = "float64",
    order: np.ndarray | None = None,
) -> list[tuple[str, float]]:
    """One repetition's effective rank per hooked module (their sum is the NEAR score)."""
    matrices = activation_matrices(
        model, data, rng, fast=fast, layer_index=layer_index, batchnorm=batchnorm, order=order
    )
    return list(zip([name for name, _ in matrices], matrix_ranks(matrices, precision)))


def reset_parameters(model: nn.Module) -> None:
    """PyTorch's default initialisation for every module that has ``reset_parameters``."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def near_score(
    model: nn.Module,
    data: Tensor | Iterable,
    repetitions: int = 1,
    reinit: bool = True,
    seed: int = 0,
    rng: Any = None,
    *,
    fast: bool = True,
    layer_index: int | None = None,
    batchnorm: str = "sample",
    precision: str = "float64",
) -> float:
    """The NEAR score: the sum of the effective ranks of the hooked modules' activation matrices,
    averaged over ``repetitions`` (see the module docstring for the protocol and options).

    ``rng`` (default ``numpy.random.RandomState(seed)``) draws the block starts and, for tensor
    data, the sample order of repetitions after the first. ``reinit`` resets the parameters to
    PyTorch's defaults between repetitions, as the official code does.
    """
    if int(repetitions) < 1:
        raise NasError(f"near: repetitions must be at least 1, got {repetitions}")
    _check_choice("batchnorm", batchnorm, _BATCHNORM_MODES)
    _precision(precision)
    rng = np.random.RandomState(seed) if rng is None else rng
    scores = []
    for repetition in range(int(repetitions)):
        if repetition and reinit:
            with torch.no_grad():
                reset_parameters(model)
        order = None
        if repetition and isinstance(data, Tensor):
            order = rng.permutation(len(data))
        ranks = layer_ranks(
            model, data, rng, fast=fast, layer_index=layer_index, batchnorm=batchnorm, precision=precision, order=order
        )
        scores.append(math.fsum(rank for _, rank in ranks))
    return float(np.mean(scores))


@register_proxy("near")
class Near(Proxy):
    """NEAR (Husistein et al., ICLR 2025): sum of effective ranks of pre- and post-activation
    matrices at initialisation."""

    tolerance = 1e-5  # across CPUs: docs/proxies.md#scores-on-other-machines

    version = "1"
    higher_is_better = True
    needs = Needs(inputs=True, labels=False, gradients=False, mode="train")
    defaults = {
        "repetitions": 1,
        "reinit": True,
        "seed": 0,
        "fast": True,
        "batchnorm": "sample",
        "precision": "float64",
    }
    description = (
        "NEAR: sum over weight and activation modules of the effective rank of their "
        "activation matrices (batch-1 protocol, BatchNorm per sample)"
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        reps = p["repetitions"]
        if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
            raise NasError(f"near: repetitions must be a positive integer, got {p['repetitions']!r}")
        _check_choice("batchnorm", p["batchnorm"], _BATCHNORM_MODES)
        _precision(p["precision"])

    def score(self, model: nn.Module, batch: Any) -> float:
        p = self.params
        return near_score(
            model,
            batch.inputs,
            repetitions=p["repetitions"],
            reinit=bool(p["reinit"]),
            seed=int(p["seed"]),
            fast=bool(p["fast"]),
            batchnorm=p["batchnorm"],
            precision=p["precision"],
        )


__all__ = [
    "ACTIVATION_TYPES",
    "Near",
    "NonFiniteActivations",
    "activation_matrices",
    "effective_rank",
    "effective_ranks",
    "effective_ranks_from_singular_values",
    "hooked_modules",
    "layer_ranks",
    "matrix_ranks",
    "near_score",
    "reset_parameters",
]
