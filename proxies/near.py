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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, register_proxy

#: The classes whose instances are hooked as activations (besides modules with a ``weight``).
ACTIVATION_TYPES: tuple[type, ...] = tuple(
    cls
    for cls in (getattr(nn, name, None) for name in nn.modules.activation.__all__)
    if isinstance(cls, type) and issubclass(cls, nn.Module)
)

_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}
_BATCHNORM_MODES = ("sample", "eval")


class NonFiniteActivations(FloatingPointError):
    """An activation matrix holds NaN or infinite values (a diverging or broken network)."""


# -- effective rank ---------------------------------------------------------------------------------
def effective_ranks_from_singular_values(singular_values: Tensor) -> Tensor:
    """Effective ranks of the last axis of ``singular_values`` (float64; 0 where all are 0)."""
    s = singular_values.to(torch.float64)
    total = s.sum(dim=-1, keepdim=True)
    positive = total > 0
    p = s / torch.where(positive, total, torch.ones_like(total))
    ranks = torch.exp(torch.special.entr(p).sum(dim=-1))
    return torch.where(positive.squeeze(-1), ranks, torch.zeros_like(ranks))


def _singular_values(stack: Tensor) -> Tensor:
    """Singular values of a stack of matrices. In float64 they are the square roots of the
    eigenvalues of the smaller Gram matrix (about twice as fast as an SVD for the small matrices
    NEAR sees; exact to ~1e-8 of the largest value, which moves an effective rank by < 1e-5);
    in float32 an SVD, as the official code computes them."""
    if stack.dtype != torch.float64:
        return torch.linalg.svdvals(stack)
    gram = stack @ stack.mT if stack.shape[-2] <= stack.shape[-1] else stack.mT @ stack
    return torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()


def effective_ranks(matrices: Tensor, precision: str = "float64") -> Tensor:
    """Effective ranks of a stack of equal-size matrices ``(..., m, n)``."""
    if not bool(torch.isfinite(matrices).all()):
        raise NonFiniteActivations("effective rank of a matrix with NaN or infinite entries")
    values = torch.linalg.svdvals(matrices.to(_precision(precision)))
    return effective_ranks_from_singular_values(values)


def effective_rank(matrix: Tensor | np.ndarray, precision: str = "float64") -> float:
    """Roy & Vetterli's effective rank: ``exp(H(p))`` with ``p = s / sum(s)`` over the singular
    values ``s``; 0 for an all-zero (or empty) matrix. ``erank(I_n) = n``."""
    matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2:
        raise ValueError(f"effective_rank expects a 2-D matrix, got shape {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        return 0.0
    return float(effective_ranks(matrix, precision))


def _precision(name: str) -> torch.dtype:
    try:
        return _PRECISIONS[name]
    except KeyError:
        raise NasError(f"near: precision must be one of {', '.join(_PRECISIONS)}, got {name!r}") from None


# -- hooked modules ---------------------------------------------------------------------------------
def hooked_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules NEAR records, in ``named_modules()`` order: those with a ``weight`` attribute
    and instances of ``torch.nn`` activation classes."""
    return [(name, module) for name, module in _named_modules(model) if _is_hooked(module)]


def _named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``model.named_modules()`` (pre-order, each module once, at its first visit) without its
    nested generators, which cost milliseconds on a network of a few hundred modules."""
    out, seen = [], set()
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        name, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append((name, module))
        prefix = name + "." if name else ""
        stack.extend(reversed([(prefix + key, child) for key, child in module._modules.items() if child is not None]))
    return out


def _is_hooked(module: nn.Module) -> bool:
    """``hasattr(module, "weight") or isinstance(module, ACTIVATION_TYPES)``, without the slow
    ``nn.Module.__getattr__`` miss for modules that have no weight."""
    d = module.__dict__
    if (
        "weight" in d
        or "weight" in d.get("_parameters", ())
        or "weight" in d.get("_buffers", ())
        or "weight" in d.get("_modules", ())
    ):
        return True
    return (hasattr(type(module), "weight") and hasattr(module, "weight")) or isinstance(module, ACTIVATION_TYPES)


def _first_tensor(output: Any) -> Tensor | None:
    if isinstance(output, (tuple, list)):
        output = output[0] if output else None
    if isinstance(output, Tensor) and output.dim() >= 2 and output.numel() > 0:
        return output
    return None


def _sample_rows(sample: Tensor) -> Tensor:
    """One sample's output (C, *positions) or (F,) as its rows, in the official order."""
    if sample.dim() == 1:
        return sample.unsqueeze(0)
    return sample.permute(*range(sample.dim() - 1, -1, -1)).reshape(-1, sample.shape[0])


def _batch_rows(outputs: Tensor) -> Tensor:
    """Rows of consecutive samples (N, C, *positions) or (N, F), sample after sample."""
    if outputs.dim() == 2:
        return outputs
    order = (0, *range(outputs.dim() - 1, 1, -1), 1)
    return outputs.permute(*order).reshape(-1, outputs.shape[1])


def _block_start(rng: Any, rows: int, size: int) -> int:
    """The official choice of the first row of a complete module's block."""
    bound = rows // size - 1
    return int(rng.randint(0, bound)) * size if bound > 0 else 0


# -- inputs -----------------------------------------------------------------------------------------
class _Samples:
    """Single samples, in order, from a tensor (optionally permuted) or an iterable of batches."""

    def __init__(self, data: Tensor | Iterable, order: np.ndarray | None, device: torch.device) -> None:
        self.device = device
        self._tensor: Tensor | None = None
        self._iter: Iterator | None = None
        self._buffer: list[Tensor] = []
        self._used = 0
        if isinstance(data, Tensor):
            self._tensor = data if order is None else data[torch.as_tensor(order, dtype=torch.long)]
        else:
            self._iter = iter(data)

    def take(self, count: int) -> Tensor | None:
        """The next ``count`` samples (fewer when the data ends; None when none are left)."""
        if self._tensor is not None:
            out = self._tensor[self._used : self._used + count]
            self._used += len(out)
            return out.to(self.device) if len(out) else None
        while sum(len(b) for b in self._buffer) < count and self._iter is not None:
            try:
                item = next(self._iter)
            except StopIteration:
                self._iter = None
                break
            if isinstance(item, (tuple, list)):
                item = item[0]
            item = torch.as_tensor(item)
            self._buffer.append(item if item.dim() > 0 else item.reshape(1))
        if not self._buffer:
            return None
        joined = torch.cat(self._buffer)
        out, rest = joined[:count], joined[count:]
        self._buffer = [rest] if len(rest) else []
        return out.to(self.device)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# -- BatchNorm handling -----------------------------------------------------------------------------
def _batch_statistics(bn: nn.Module) -> bool:
    """Whether a BatchNorm layer normalises with the statistics of its input batch."""
    return bn.training or getattr(bn, "running_mean", None) is None


class _BatchNormMode:
    """Context: BatchNorm in eval mode (``"eval"``), or per-sample statistics (``"sample"``, when
    more than one sample goes through at once)."""

    def __init__(self, norms: Sequence[nn.Module], mode: str, per_sample: bool) -> None:
        self.norms = norms
        self.mode, self.per_sample = mode, per_sample
        self._training: list[bool] = []
        self._patched: list[nn.Module] = []

    def __enter__(self) -> _BatchNormMode:
        if self.mode == "eval":
            self._training = [m.training for m in self.norms]
            for m in self.norms:
                m.eval()
        if self.per_sample:
            for m in self.norms:
                if _batch_statistics(m):
                    # a plain instance attribute: what ``nn.Module.__setattr__`` stores for a
                    # function, without its isinstance checks (tens of microseconds per layer)
                    m.__dict__["forward"] = _per_sample_forward(m)
                    self._patched.append(m)
        return self

    def __exit__(self, *exc: Any) -> None:
        for m in self._patched:
            m.__dict__.pop("forward", None)
        self._patched = []
        for m, training in zip(self.norms, self._training):
            m.train(training)


def _per_sample_forward(bn: nn.Module) -> Callable[[Tensor], Tensor]:
    """BatchNorm with each sample's own statistics: mean and biased variance over its positions,
    then the layer's affine map (exactly BatchNorm in training mode on a batch of one)."""
    eps = bn.eps

    def forward(x: Tensor) -> Tensor:
        n, c = x.shape[0], x.shape[1]
        positions = x.numel() // max(n * c, 1)
        if x.dim() < 3 or positions < 2:
            raise ValueError(
                f"{type(bn).__name__} in training mode sees one value per channel per sample "
                f"(input {tuple(x.shape)}): batch-1 statistics are undefined; use batchnorm='eval'"
            )
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        if channels_last:  # (N, H*W, C) is a view: reduce over positions, channels stay inner
            values, axis, shape = x.permute(0, 2, 3, 1).view(n, positions, c), 1, (c,)
        else:
            values, axis, shape = x.reshape(n, c, positions), 2, (c, 1)
        centred = values - values.mean(axis, True)
        scale = centred.square().mean(axis, True).add_(eps).rsqrt_()
        if bn.weight is not None:
            scale.mul_(bn.weight.view(shape))
        out = centred.mul_(scale)
        if bn.bias is not None:
            out.add_(bn.bias.view(shape))
        if channels_last:
            return out.view(n, x.shape[2], x.shape[3], c).permute(0, 3, 1, 2)
        return out.view_as(x)

    return forward


# -- per-module record ------------------------------------------------------------------------------
class _Record:
    """What one hooked module has accumulated."""

    __slots__ = ("name", "module", "pieces", "rows", "matrix", "done", "called", "calls", "rows_per_sample", "cols")

    def __init__(self, name: str, module: nn.Module) -> None:
        self.name, self.module = name, module
        self.pieces: list[Tensor] = []  # accumulated rows (faithful path / finished chunks)
        self.rows = 0
        self.matrix: Tensor | None = None
        self.done = False
        self.called = False
        self.calls: list[tuple[int, Tensor]] = []  # fast path: (call position, chunk output)
        self.rows_per_sample = 0
        self.cols = 0

    def result(self) -> Tensor | None:
        if self.matrix is not None:
            return self.matrix
        if self.pieces:
            return torch.cat(self.pieces)
        return None


# -- the faithful engine: one sample per forward pass ---------------------------------------------
def _collect_per_sample(model: nn.Module, records: list[_Record], samples: _Samples, rng: Any) -> None:
    handles: dict[int, Any] = {}

    def make_hook(i: int, rec: _Record) -> Callable:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            out = _first_tensor(output)
            if out is None or rec.done:
                return
            rec.called = True
            rows = _batch_rows(out.detach()).clone()
            rec.pieces.append(rows)
            rec.rows += rows.shape[0]
            if rec.rows >= rows.shape[1]:
                start = _block_start(rng, rec.rows, out.shape[-1])
                rec.matrix = torch.cat(rec.pieces)[start : start + rows.shape[1]]
                rec.pieces = []
                rec.done = True
                handles.pop(i).remove()

        return hook

    try:
        for i, rec in enumerate(records):
            handles[i] = rec.module.register_forward_hook(make_hook(i, rec))
        while True:
            x = samples.take(1)
            if x is None:
                break
            model(x)
            if all(rec.done for rec in records if rec.called):
                break
    finally:
        for handle in handles.values():
            handle.remove()


# -- the fast engine: batches of samples, per-sample BatchNorm ------------------------------------
def _recorder(rec: _Record, position: list[int]) -> Callable:
    """A forward hook that only copies what the cutting after the pass needs: nothing once the
    module is complete, the first sample when it completes the module, every sample otherwise.
    (Cutting and drawing per call in Python cost more than the forward pass of a small network.)"""
    seen = [rec.rows]  # rows this module has, counting the first sample of this pass's calls

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        out = output if type(output) is Tensor and output.dim() >= 2 else _first_tensor(output)
        if out is None or out.numel() == 0:
            return
        pos = position[0]
        position[0] += 1
        cols = out.shape[1]
        if seen[0] >= cols:  # complete on the first sample of an earlier call
            return
        seen[0] += out[0].numel() // cols
        rec.calls.append((pos, (out[:1] if seen[0] >= cols else out).clone()))  # inference mode: no detach

    return hook


def _collect_batched(
    model: nn.Module,
    records: list[_Record],
    samples: _Samples,
    rng: Any,
    first_batch: int,
    norms: Sequence[nn.Module],
    batchnorm: str,
) -> None:
    offset = 0  # samples already fed
    count = max(1, first_batch)
    todo = records
    while True:
        x = samples.take(count)
        if x is None:
            break
        count = len(x)
        position = [0]
        handles = []
        try:
            for rec in todo:
                rec.calls = []
                handles.append(rec.module.register_forward_hook(_recorder(rec, position)))
            if x.dim() == 4:  # channels-last: much faster convolutions and pooling on CPU
                x = x.contiguous(memory_format=torch.channels_last)
            # inference mode: no autograd bookkeeping per op (the cutting below runs outside it,
            # so the matrices it returns are ordinary tensors)
            with torch.inference_mode(), _BatchNormMode(norms, batchnorm, per_sample=count > 1):
                model(x)
        finally:
            for handle in handles:
                handle.remove()

        # Where each module completes (sample, call), then the block starts drawn in the per-sample
        # protocol's order: by the sample at which a module completes, then by call order.
        events = []
        for rec in todo:
            if not rec.calls:
                continue
            rec.called = True
            cols = rec.calls[0][1].shape[1]
            per_call = [o[0].numel() // cols for _, o in rec.calls]
            rec.rows_per_sample, rec.cols = sum(per_call), cols
            need = cols - rec.rows
            if rec.rows_per_sample > 0 and need <= rec.rows_per_sample * count:
                sample = max(0, -(-need // rec.rows_per_sample) - 1)
                reached = rec.rows + sample * rec.rows_per_sample
                for j, rows in enumerate(per_call):  # noqa: B007 (j is read after the loop)
                    reached += rows
                    if reached >= cols:
                        break
                events.append((offset + sample, rec.calls[j][0], rec, sample, j, reached))
            else:
                rec.pieces.append(_interleave(rec.calls, count, count - 1, len(rec.calls) - 1))
                rec.rows += rec.rows_per_sample * count
                rec.calls = []
        events.sort(key=lambda e: (e[0], e[1]))
        sizes = [rec.calls[j][1].shape[-1] for _, _, rec, _, j, _ in events]
        starts = _block_starts(rng, [reached for *_, reached in events], sizes)
        simple: dict[tuple[int, ...], list[tuple[_Record, int]]] = {}
        for (_, _, rec, sample, j, _), start in zip(events, starts):
            if sample == 0 and j == 0 and not rec.pieces:  # one call's first sample: cut below
                simple.setdefault(tuple(rec.calls[0][1].shape), []).append((rec, start))
                continue
            rows = torch.cat([*rec.pieces, _interleave(rec.calls, count, sample, j)])
            rec.matrix = rows[start : start + rec.cols]
            rec.pieces, rec.calls, rec.done = [], [], True
        for members in simple.values():
            _cut_blocks(members)

        offset += count
        todo = [rec for rec in records if rec.called and not rec.done and rec.rows_per_sample > 0]
        if not todo:
            break
        count = max(-(-(rec.cols - rec.rows) // rec.rows_per_sample) for rec in todo)


def _block_starts(rng: Any, rows: list[int], sizes: list[int]) -> list[int]:
    """:func:`_block_start` for several modules in order, with one generator call (numpy's
    ``randint`` with an array of bounds draws exactly what the scalar calls draw in turn)."""
    bounds = [r // s - 1 for r, s in zip(rows, sizes)]
    positive = [b for b in bounds if b > 0]
    if not positive:
        return [0] * len(bounds)
    if isinstance(rng, np.random.RandomState) or rng is np.random:
        draws = iter(np.asarray(rng.randint(0, np.asarray(positive))).tolist())
    else:
        draws = iter([int(rng.randint(0, b)) for b in positive])
    return [next(draws) * s if b > 0 else 0 for b, s in zip(bounds, sizes)]


def _cut_blocks(members: list[tuple[_Record, int]]) -> None:
    """Each module's rows ``start:start + cols`` of its first sample, for modules whose outputs
    have one shape: one stack, one layout and one gather for all of them."""
    first = torch.cat([rec.calls[0][1] for rec, _ in members])  # (G, C, *positions)
    cols = first.shape[1]
    total = first[0].numel() // cols
    starts = torch.tensor([start for _, start in members]).unsqueeze(1)
    index = (starts + torch.arange(cols)).clamp_(max=total - 1)  # (G, cols) row numbers
    group = torch.arange(len(members)).unsqueeze(1)
    if first.dim() == 4:  # row = w * H + h: pick (h, w) from the output itself, no laid-out copy
        height = first.shape[2]
        blocks = first.permute(0, 3, 2, 1)[group, index // height, index % height]
    else:
        blocks = _batch_rows(first).view(len(members), total, cols)[group, index]  # (G, cols, C)
    for (rec, start), block in zip(members, blocks.unbind(0)):
        rec.matrix = block if start + cols <= total else block[: total - start]
        rec.calls, rec.done = [], True


def _interleave(calls: list[tuple[int, Tensor]], count: int, last_sample: int, last_call: int) -> Tensor:
    """Rows of samples ``0..last_sample`` (all calls of each, up to ``last_call`` of the last one),
    in the per-sample protocol's order: sample after sample, calls in order."""
    if len(calls) == 1:
        return _batch_rows(calls[0][1][: last_sample + 1])
    parts = []
    for s in range(last_sample + 1):
        for j, (_, out) in enumerate(calls):
            if s == last_sample and j > last_call:
                break
            parts.append(_sample_rows(out[s]))
    return torch.cat(parts)


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
