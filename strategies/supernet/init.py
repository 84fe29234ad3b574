"""Weight initialisations of the supernet: ``isometric`` and the ``kaiming`` baseline.

``isometric``: every convolution delta-orthogonal (Xiao et al. 2018: an orthogonal matrix on the
centre tap, zeros elsewhere, so at initialisation the convolution is an orthogonal map at every
pixel and its Jacobian's singular values are all equal), scaled by the critical gain of the
nonlinearity before it (ReLU: ``sqrt(2)``, :func:`.meanfield.critical_gain`: ``chi_1 = 1`` for a
ReLU-conv layer without BatchNorm). The BatchNorm after each candidate cancels that gain and puts
the op at ``chi_1 = pi / (pi - 1)`` for unit-variance inputs (:func:`.meanfield.normalised_chi`),
so each ReLU-conv-BN candidate also gets a fixed output scale, :func:`.meanfield.op_scale` (0.826),
which brings it to ``chi_1 = 1`` there. ``kaiming``: He-normal convolutions (fan-in, ReLU gain), the usual
baseline with the same mean gain and a spread-out spectrum. In both, BatchNorm starts at scale 1,
shift 0 and the classifier keeps PyTorch's default, so the arms differ only in the convolutions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas.errors import NasError
from nas.strategies.supernet.meanfield import critical_gain, op_scale
from nas.strategies.supernet.network import CandidateOp

INITS = ("isometric", "kaiming")


def delta_orthogonal_(weight: torch.Tensor, gain: float, generator: torch.Generator) -> torch.Tensor:
    """Fill a conv weight (out, in, k, k) with ``gain`` times a (semi-)orthogonal matrix on the
    centre tap and zeros elsewhere."""
    out_c, in_c, kh, kw = weight.shape
    rows, cols = max(out_c, in_c), min(out_c, in_c)
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # a Haar-distributed orthogonal matrix
    matrix = q if out_c >= in_c else q.T  # (out_c, in_c) with orthonormal columns or rows
    with torch.no_grad():
        weight.zero_()
        weight[:, :, kh // 2, kw // 2] = (gain * matrix).to(weight.dtype)
    return weight


def initialise(model: nn.Module, init: str, seed: int) -> None:
    """Initialise every convolution of ``model`` by ``init`` with draws from ``seed`` (the same
    seed gives the same weights on every machine: the draws are in float64 on the CPU)."""
    if init not in INITS:
        raise NasError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    generator = torch.Generator().manual_seed(seed)
    gain = critical_gain("relu", q=1.0)  # the op's input comes out of a BatchNorm: q* = 1
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            if init == "isometric":
                delta_orthogonal_(module.weight, gain, generator)
            else:
                fan_in = module.weight[0].numel()
                std = gain / math.sqrt(fan_in)
                draw = torch.randn(module.weight.shape, generator=generator, dtype=torch.float64) * std
                with torch.no_grad():
                    module.weight.copy_(draw.to(module.weight.dtype))
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if init == "isometric":  # each ReLU-conv-BN candidate at chi_1 = 1 for unit-variance inputs
        for module in model.modules():
            if isinstance(module, CandidateOp):
                module.scale.fill_(op_scale("relu") if module.name.startswith("nor_conv") else 1.0)
