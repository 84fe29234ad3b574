"""What NEAR records: which modules are hooked, how an output becomes matrix rows, the samples
fed, BatchNorm's per-sample mode, and each module's record of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

#: The classes whose instances are hooked as activations (besides modules with a ``weight``).
ACTIVATION_TYPES: tuple[type, ...] = tuple(
    cls
    for cls in (getattr(nn, name, None) for name in nn.modules.activation.__all__)
    if isinstance(cls, type) and issubclass(cls, nn.Module)
)

_BATCHNORM_MODES = ("sample", "eval")


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
