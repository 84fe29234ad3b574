"""A sequential network that grows in place: the user's own ``nn.Sequential`` of Linear / Conv2d stages.

A *stage* is a weight layer (``nn.Linear`` or ``nn.Conv2d``) with what follows it up to the next
weight layer: an optional BatchNorm, an elementwise activation (none after the last layer), and,
before a Linear, an average pooling and/or Flatten. Nested ``nn.Sequential`` are walked.
:class:`GrowableNet` changes those modules' parameters in place, so the user's model object is
the grown network, and keeps the optimizer's state of existing weights across growth (only the
new rows and columns start fresh). Hidden layer ``l`` is the output of stage ``l``.

Every layer is seen through its *patches*: the inputs its weights multiply at each output
position (``unfold`` for a convolution, the input vector for a Linear), with a row of ones where
the layer has a bias. A new neuron of hidden layer l has input weights α over stage l's patches
and output weights ω over what stage l+1 reads of one channel (its kernel window for a
convolution, every pooled position for a Linear after Flatten: conv-to-linear growth).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError

_POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.Flatten)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _walk(module: nn.Module) -> Iterator[nn.Module]:
    for child in module.children():
        if isinstance(child, nn.Sequential):
            yield from _walk(child)
        else:
            yield child


def activation_slope(act: nn.Module | None) -> float:
    """σ'(0+): the slope TINY's linearisation gives a new neuron (ReLU: 1, as GroMo takes it)."""
    if act is None:
        return 1.0
    with torch.enable_grad():
        z = torch.tensor(1e-6, dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(act(z), z)
    return float(slope)


@dataclass
class Stage:
    weight: nn.Linear | nn.Conv2d
    norm: Any = None  # BatchNorm1d / BatchNorm2d
    act: nn.Module | None = None
    post: list[nn.Module] = field(default_factory=list)  # average pooling / Flatten, before a Linear

    @property
    def bias(self) -> bool:
        return self.weight.bias is not None

    def after(self, a: torch.Tensor) -> torch.Tensor:
        """From this layer's pre-activation to the next layer's input."""
        if self.norm is not None:
            a = self.norm(a)
        if self.act is not None:
            a = self.act(a)
        for m in self.post:
            a = m(a)
        return a

    def patches(self, h: torch.Tensor) -> torch.Tensor:
        """(n, D, positions): what the weights multiply, ones appended for the bias; float64."""
        w = self.weight
        if isinstance(w, nn.Conv2d):
            p = F.unfold(h, w.kernel_size, w.dilation, w.padding, w.stride).double()  # type: ignore[arg-type]
        else:
            p = h.double().unsqueeze(-1)
        if self.bias:
            p = torch.cat([p, p.new_ones(p.shape[0], 1, p.shape[2])], 1)
        return p

    def read_pooled(self, maps: torch.Tensor) -> torch.Tensor:
        """How the next layer, a Linear, reads one channel of this layer's output: ``maps``
        (n, D, H, W) of per-channel features -> (n, D, K, 1), K the positions left after the
        pooling (a convolution's reading is its unfold: see ``statistics._conv_reads``)."""
        n, d = maps.shape[:2]
        for m in self.post:
            if not isinstance(m, nn.Flatten):
                maps = m(maps)
        return maps.reshape(n, d, -1, 1)


class GrowableNet:
    """The growable view of ``model``: stages of Linear or Conv2d layers (see the module docstring)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.stages: list[Stage] = []
        self.flatten_input = False
        modules = list(_walk(model)) if isinstance(model, nn.Sequential) else [model]
        for i, m in enumerate(modules):
            where = f"{type(m).__name__} at position {i}"
            last = self.stages[-1] if self.stages else None
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                if last is not None and last.act is None:
                    raise NasError("growth needs an activation between every two weight layers")
                if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros"):
                    raise NasError(f"growth supports plain convolutions (groups=1, zero padding); got {where}")
                if isinstance(m, nn.Conv2d) and last is not None and isinstance(last.weight, nn.Linear):
                    raise NasError(f"growth supports convolutions before linear layers, not after; got {where}")
                self.stages.append(Stage(m))
            elif isinstance(m, nn.Flatten) and last is None:
                self.flatten_input = True
            elif last is None:
                raise NasError(f"growth needs the network to start with a Linear or Conv2d layer; got {where}")
            elif isinstance(m, _NORMS) and last.norm is None and last.act is None:
                last.norm = m
            elif isinstance(m, _POOLS) and last.act is not None:
                last.post.append(m)
            elif not list(m.parameters()) and not isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d, *_POOLS)):
                if last.act is not None:
                    raise NasError(f"growth supports one activation per layer; got a second one, {where}")
                last.act = m
            else:
                raise NasError(
                    f"growth supports sequential networks of Linear/Conv2d, BatchNorm, an elementwise "
                    f"activation and average pooling/Flatten before a Linear; got {where}"
                )
        if len(self.stages) < 2 or self.stages[-1].act is not None or any(s.act is None for s in self.stages[:-1]):
            raise NasError("growth needs at least one hidden layer and a last layer without an activation")
        if not isinstance(self.stages[-1].weight, nn.Linear):
            raise NasError("growth needs the network to end with a Linear layer")
        self.slopes = [activation_slope(s.act) for s in self.stages[:-1]]
        with torch.no_grad():
            self.offsets = [float(s.act(torch.zeros((), dtype=torch.float64))) for s in self.stages[:-1]]  # type: ignore[misc]

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def widths(self) -> list[int]:
        return [_outputs(s.weight) for s in self.stages[:-1]]

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def slots(self, layer: int) -> int:
        """K: the weights of the next layer per output and per channel of hidden layer ``layer``
        (its kernel window, or the pooled positions a Linear reads after Flatten)."""
        return self.stages[layer + 1].weight.weight[0].numel() // _outputs(self.stages[layer].weight)

    def neuron_params(self, layer: int) -> int:
        """Parameters one more neuron (channel) of hidden layer ``layer`` costs."""
        first, second = self.stages[layer], self.stages[layer + 1]
        per_in = first.weight.weight[0].numel() + int(first.bias) + (2 if first.norm is not None else 0)
        return per_in + _outputs(second.weight) * self.slots(layer)

    # -- passes ---------------------------------------------------------------------------------
    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) if self.flatten_input else x

    def record(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Output, every weight layer's input and every weight layer's pre-activation (in the graph)."""
        h = self.inputs(x)
        ins, pres = [], []
        for stage in self.stages:
            ins.append(h)
            a = stage.weight(h)
            pres.append(a)
            h = stage.after(a)
        return h, ins, pres

    def tail(self, pre: torch.Tensor, start: int) -> torch.Tensor:
        """The network's output from the pre-activation of stage ``start`` on."""
        h = self.stages[start].after(pre)
        for stage in self.stages[start + 1 :]:
            h = stage.after(stage.weight(h))
        return h

    # -- growth ---------------------------------------------------------------------------------
    def grown_tensors(self, layer: int, alpha, omega, delta, step: float, moments=None) -> dict:
        """The new values of every parameter (and BatchNorm buffer) that growing hidden layer
        ``layer`` by ``alpha.shape[0]`` neurons at amplitude ``step`` changes.

        New neurons get ``√step α`` and ``√step ω`` (their product scales like the step); the
        next layer's existing weights move by ``-step dW*``. Where σ(0) != 0 the next bias absorbs
        the new neurons' constant output. A BatchNorm gets, for each new channel, the mean and
        variance of its new pre-activation (``moments`` at step 1, scaled) as running statistics
        and the matching scale and shift, so that it starts as the identity on that channel.
        """
        first, second = self.stages[layer], self.stages[layer + 1]
        w1, w2 = first.weight, second.weight
        dtype, k = w1.weight.dtype, alpha.shape[0]
        root = math.sqrt(step)
        a = (root * alpha).to(dtype)
        a_w = a[:, : w1.weight[0].numel()].reshape(k, *w1.weight.shape[1:])
        new: dict = {w1.weight: torch.cat([w1.weight.detach(), a_w], 0)}
        if w1.bias is not None:
            new[w1.bias] = torch.cat([w1.bias.detach(), a[:, -1]])
        if first.norm is not None:
            mean, var = moments
            mean, var = (root * mean).to(dtype), (step * var).to(dtype)
            norm = first.norm
            new[norm.weight] = torch.cat([norm.weight.detach(), (var + norm.eps).sqrt()])
            new[norm.bias] = torch.cat([norm.bias.detach(), mean])
            new[norm.running_mean] = torch.cat([norm.running_mean, mean])
            new[norm.running_var] = torch.cat([norm.running_var, var])
        out = _outputs(w2)
        o = (root * omega).to(dtype).reshape(out, -1, k).transpose(1, 2)  # (out·K, k) -> (out, k, K)
        w_old = w2.weight.detach().clone()
        b_old = w2.bias.detach().clone() if w2.bias is not None else None
        if delta is not None:
            d = (step * delta).to(dtype)
            w_old -= d[:, : w_old[0].numel()].reshape(w_old.shape)
            if b_old is not None:
                b_old -= d[:, -1]
        if b_old is not None:
            b_old -= self.offsets[layer] * o.sum((1, 2))
        if isinstance(w2, nn.Conv2d):
            new[w2.weight] = torch.cat([w_old, o.reshape(out, k, *w2.weight.shape[2:])], 1)
        else:
            new[w2.weight] = torch.cat([w_old, o.reshape(out, -1)], 1)  # channel-major, as Flatten orders it
        if b_old is not None:
            new[w2.bias] = b_old
        return new

    def new_features(self, layer: int, h: torch.Tensor, tensors: dict, k: int) -> torch.Tensor:
        """The new neurons' contribution to the next layer's input, from this layer's input ``h``
        (BatchNorm on a new channel starts as the identity: see :meth:`grown_tensors`)."""
        first = self.stages[layer]
        w1 = first.weight
        weight = tensors[w1.weight][-k:]
        bias = tensors[w1.bias][-k:] if first.bias else None
        if isinstance(w1, nn.Conv2d):
            z = F.conv2d(h, weight, bias, w1.stride, w1.padding, w1.dilation)
        else:
            z = F.linear(h, weight, bias)
        z = first.act(z)  # type: ignore[misc]
        for m in first.post:
            z = m(z)
        return z

    @torch.no_grad()
    def grow(self, layer: int, alpha, omega, delta, step: float, optimizer=None, moments=None) -> None:
        """Add ``alpha.shape[0]`` neurons to hidden layer ``layer`` at amplitude ``step`` (in place)."""
        k = alpha.shape[0]
        for tensor, value in self.grown_tensors(layer, alpha, omega, delta, step, moments).items():
            if isinstance(tensor, nn.Parameter):
                if optimizer is not None:
                    _grow_state(optimizer, tensor, value.shape)
                tensor.data = value.contiguous()
                tensor.grad = None  # a gradient of the old shape cannot accumulate into the new one
            else:
                tensor.data = value.contiguous()
        first, second = self.stages[layer], self.stages[layer + 1]
        _set_outputs(first.weight, _outputs(first.weight) + k)
        if first.norm is not None:
            first.norm.num_features += k
        _set_inputs(second.weight, second.weight.weight.shape[1])

    def resize(self, widths: list[int]) -> None:
        """Give the layers the shapes of ``widths`` (values zero): to load a grown checkpoint."""
        if len(widths) != len(self.widths):
            raise NasError(f"the checkpoint has {len(widths)} hidden layers, this model {len(self.widths)}")
        for i, width in enumerate(widths):
            first, second = self.stages[i], self.stages[i + 1]
            old = _outputs(first.weight)
            w = first.weight.weight
            w.data = w.data.new_zeros(width, *w.shape[1:])
            if first.weight.bias is not None:
                first.weight.bias.data = first.weight.bias.data.new_zeros(width)
            if first.norm is not None:
                for t in (first.norm.weight, first.norm.bias, first.norm.running_mean, first.norm.running_var):
                    t.data = t.data.new_zeros(width)
                first.norm.num_features = width
            _set_outputs(first.weight, width)
            w2 = second.weight.weight
            per_channel = w2.shape[1] // old
            w2.data = w2.data.new_zeros(w2.shape[0], width * per_channel, *w2.shape[2:])
            _set_inputs(second.weight, w2.shape[1])


def _outputs(w: nn.Module) -> int:
    return w.out_channels if isinstance(w, nn.Conv2d) else w.out_features  # type: ignore[return-value]


def _set_outputs(w: nn.Module, n: int) -> None:
    if isinstance(w, nn.Conv2d):
        w.out_channels = n
    else:
        w.out_features = n  # type: ignore[assignment]


def _set_inputs(w: nn.Module, n: int) -> None:
    if isinstance(w, nn.Conv2d):
        w.in_channels = n
    else:
        w.in_features = n  # type: ignore[assignment]


def _grow_state(optimizer: torch.optim.Optimizer, param: torch.Tensor, shape: torch.Size) -> None:
    """Keep the optimizer's state of the existing entries; new entries get a zero first moment and,
    for Adam-like second moments, the tensor's mean (a fresh zero would make their first steps huge).
    A Linear after Flatten gains columns per channel at the end, so the old block keeps its place."""
    state = optimizer.state.get(param)
    if not state:
        return
    for name, value in list(state.items()):
        if not torch.is_tensor(value) or value.shape != param.shape:
            continue
        fill = float(value.mean()) if "sq" in name else 0.0
        grown = value.new_full(shape, fill)
        grown[tuple(slice(0, s) for s in value.shape)] = value
        state[name] = grown
