"""NASWOT: the log-determinant of the ReLU activation-code kernel (Mellor et al., ICML 2021).

Every sample of the batch is run through the network once; each ``nn.ReLU`` module gives every
sample a binary code, 1 where the unit is active (its input is > 0) and 0 where it is not. For a
layer with codes ``c`` (batch x units), the kernel is ``c c^T + (1-c)(1-c)^T``, i.e. the number
of units minus the Hamming distance between two samples' codes. The kernels of all ReLU modules
are summed into K_H and the score is ``log|det K_H|`` (slogdet). Higher is better: inputs that
the network separates into different linear regions give a better-conditioned kernel.

Protocol (chosen to match the authors' code as the AZ-NAS repository runs it on NAS-Bench-201,
``NB201/ZeroShotProxy/compute_naswot_score.py``):

- **Which units**: forward hooks on every ``nn.ReLU`` module; the code is the sign of the ReLU's
  *input* (pre-activation > 0), which is the same pattern as the output being > 0. A tensor that
  feeds several ReLU modules (a cell node feeding several ``ReLU-Conv-BN`` edges) counts once per
  module, exactly as hooking each module does; we compute its kernel once and weight it by the
  number of modules, which gives the same K.
- **Mode**: train (BatchNorm normalises with the batch's statistics, as the reference's
  ``network.train()`` with ``track_running_stats=0`` does). No gradients: the reference also
  back-propagates a Jacobian that the score never reads; we skip that, the kernel is identical.
- **Initialisation** (``init``): ``"kaiming"`` (default, the AZ-NAS NB201 protocol) re-draws
  every Conv2d/Linear weight from N(0, 2/fan_in) with zero biases and sets BatchNorm/GroupNorm
  affine parameters to 1/0; ``"default"`` keeps the network's own weights (the benchmark's
  PyTorch-default init after ``torch.manual_seed(seed)``). The re-draw uses its own generator
  seeded with ``init_seed``; ``None`` derives that seed from the network's current weights, so
  the score is a pure function of (network, batch) and a different network seed still gives a
  different draw. Re-initialisation changes the network it is given (the Scorer hands every
  proxy its own copy).
- **Inputs**: the batch as given (the reference protocol: a Gaussian batch of 64, our default
  input spec).

A singular kernel (two samples with the same code everywhere, e.g. identical inputs, or a cell
that passes no signal so every sample reaches the head as zeros) has ``log|det| = -inf``, as in
the reference; :func:`nas.proxies.evaluate` turns it into a failed result, never a ranked number.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nas import draws
from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy

INITS = ("kaiming", "default")
# float32 holds integers exactly up to 2**24: beyond that many units per tensor the code Gram
# matrix is computed in float64.
_EXACT_FLOAT32 = 1 << 24


def check_init(proxy_name: str, init: Any) -> str:
    if init not in INITS:
        raise NasError(f"proxy {proxy_name}: init must be one of {', '.join(INITS)}, got {init!r}")
    return init


def weights_seed(model: nn.Module) -> int:
    """A seed derived from the network's current weights (its first parameter tensor)."""
    digest = hashlib.sha256()
    for param in model.parameters():
        digest.update(param.detach().flatten()[:4096].to(torch.float32).cpu().numpy().tobytes())
        break
    return int.from_bytes(digest.digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@torch.no_grad()
def kaiming_reinit(model: nn.Module, seed: int | None = None) -> int:
    """Re-draw the network as the AZ-NAS NB201 proxies do: Conv2d/Linear weights from
    N(0, 2/fan_in) (Kaiming normal, fan-in, ReLU gain), biases 0, affine BatchNorm/GroupNorm
    weight 1 and bias 0. Uses its own torch generator (``seed``, or :func:`weights_seed`), never
    the global RNG. Returns the seed used. Its draws depend on the CPU by an ulp (see
    :mod:`nas.draws`); :func:`kaiming_reinit_portable` does not."""
    if seed is None:
        seed = weights_seed(model)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    _kaiming(model, lambda shape, std, dtype: torch.empty(shape, dtype=dtype).normal_(0.0, std, generator=gen))
    return int(seed)


@torch.no_grad()
def kaiming_reinit_portable(model: nn.Module, rng: np.random.Generator) -> None:
    """:func:`kaiming_reinit` with draws from ``rng`` that are the same on every CPU."""
    _kaiming(model, lambda shape, std, dtype: draws.normal(shape, rng, std, dtype))


def _kaiming(model: nn.Module, draw: Callable[[torch.Size, float, torch.dtype], torch.Tensor]) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = module.weight
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            std = math.sqrt(2.0 / fan_in) if fan_in else 0.0
            weight.copy_(draw(weight.shape, std, weight.dtype))
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
            module.weight.fill_(1.0)
            module.bias.zero_()


def code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``c c^T + (1-c)(1-c)^T`` (= units - Hamming distance) of binary codes (batch x units),
    as float64. One Gram matrix: with r the number of active units per sample,
    ``(1-c)(1-c)^T = n - r_i - r_j + c c^T``."""
    n = codes.shape[1]
    dtype = torch.float32 if n < _EXACT_FLOAT32 else torch.float64
    c = codes.to(dtype)
    gram = (c @ c.T).to(torch.float64)
    active = gram.diagonal().clone()
    return 2.0 * gram + n - active[:, None] - active[None, :]


def _codes(x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Binary codes (batch x units) of a ReLU with input ``x``: 1 where ``x > 0``. The ReLU's
    output is >= 0 and > 0 exactly where its input is, so its sign gives the codes as floats in
    one pass (a NaN stays NaN and makes the score fail, instead of reading as inactive)."""
    if isinstance(output, torch.Tensor) and output.shape == x.shape and output.is_floating_point():
        return output.detach().sign().reshape(x.shape[0], -1)
    return (x.detach() > 0).reshape(x.shape[0], -1)


class _KernelRecorder:
    """Forward hooks on the ReLU modules that sum their code kernels, each distinct input tensor
    computed once and weighted by how many modules read it."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.entries: dict[int, list] = {}  # id(tensor) -> [weakref, version, kernel, count]
        self.kernel = torch.zeros(batch_size, batch_size, dtype=torch.float64)
        self.modules = 0

    def hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        self.modules += 1
        key = id(x)
        entry = self.entries.get(key)
        if entry is not None and entry[0]() is x and entry[1] == x._version:
            entry[3] += 1
            return
        if x.shape[0] != self.batch_size:
            raise ValueError(f"naswot: a ReLU saw {x.shape[0]} samples, expected {self.batch_size}")
        if entry is not None:  # a dead or modified tensor under a recycled id: fold it in now
            self._fold(entry)
        kernel = code_kernel(_codes(x, output))
        self.entries[key] = [weakref.ref(x), x._version, kernel, 1]

    def _fold(self, entry: list) -> None:
        self.kernel = self.kernel.to(entry[2].device)  # the network's device (a no-op on the CPU)
        self.kernel += entry[3] * entry[2]

    def total(self) -> torch.Tensor:
        for entry in self.entries.values():
            self._fold(entry)
        self.entries.clear()
        return self.kernel


def activation_kernel(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """K_H of a batch: the sum over the network's ``nn.ReLU`` modules of each module's code
    kernel (float64, batch x batch). Runs one forward pass without gradients."""
    recorder = _KernelRecorder(inputs.shape[0])
    handles = [m.register_forward_hook(recorder.hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError("naswot: the network has no nn.ReLU modules to read activation codes from")
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if recorder.modules == 0:
        raise ValueError("naswot: no nn.ReLU module ran in the forward pass")
    return recorder.total()


def log_abs_det(kernel: torch.Tensor) -> float:
    """``log|det K|`` (the reference's slogdet): -inf for a singular kernel."""
    return float(torch.linalg.slogdet(kernel).logabsdet)


@register_proxy("naswot")
class NASWOT(Proxy):
    tolerance = 2e-2  # across CPUs: docs/proxies.md#scores-on-other-machines
    version = "1"
    higher_is_better = True
    needs = Needs(inputs=True, labels=False, gradients=False, mode="train")
    defaults = {"init": "kaiming", "init_seed": None}
    description = "log|det| of the ReLU activation-code kernel (Mellor et al., ICML 2021)"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_init(self.name, self.params["init"])

    def score(self, model: nn.Module, batch) -> float:
        if len(batch) < 2:
            raise ValueError("naswot: needs a batch of at least 2 inputs")
        if self.params["init"] == "kaiming":
            kaiming_reinit(model, self.params["init_seed"])
        return log_abs_det(activation_kernel(model, batch.inputs))
