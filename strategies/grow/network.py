"""A sequential MLP that grows in place: the user's own ``nn.Sequential`` of Linear and activations.

:class:`GrowableMLP` finds the Linear layers and the elementwise activations between them (nested
``nn.Sequential`` are walked), and changes those Linear modules' parameters in place, so the
user's model object is the grown network. The optimizer's state of existing weights is kept
across growth: only the new rows and columns start fresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from nas.errors import NasError


def _walk(module: nn.Module) -> Iterator[nn.Module]:
    for child in module.children():
        if isinstance(child, nn.Sequential):
            yield from _walk(child)
        else:
            yield child


def activation_slope(act: nn.Module) -> float:
    """σ'(0+): the slope TINY's linearisation gives a new neuron (ReLU: 1, as GroMo takes it)."""
    z = torch.tensor(1e-6, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(act(z), z)
    return float(slope)


class GrowableMLP:
    """The growable view of ``model``: ``Linear, act, Linear, act, ..., Linear`` (a leading Flatten allowed).

    Hidden layer ``l`` is the output of ``linears[l]`` and the input of ``linears[l + 1]``.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.linears: list[nn.Linear] = []
        self.acts: list[nn.Module] = []
        self.flatten = False
        for i, m in enumerate(_walk(model) if isinstance(model, nn.Sequential) else [model]):
            if isinstance(m, nn.Flatten) and i == 0:
                self.flatten = True
            elif isinstance(m, nn.Linear):
                if len(self.linears) != len(self.acts):
                    raise NasError("growth needs an activation between every two Linear layers")
                self.linears.append(m)
            elif len(self.acts) == len(self.linears) - 1 and not list(m.parameters()):
                self.acts.append(m)
            else:
                raise NasError(
                    f"growth supports a sequential MLP (Flatten, Linear, activation, ..., Linear); "
                    f"got {type(m).__name__} at position {i}"
                )
        if len(self.linears) < 2 or len(self.acts) != len(self.linears) - 1:
            raise NasError("growth needs an MLP with at least one hidden layer, ending with a Linear layer")
        if any(lin.bias is None for lin in self.linears):
            raise NasError("growth needs Linear layers with biases")
        self.slopes = [activation_slope(a) for a in self.acts]
        with torch.no_grad():
            self.offsets = [float(a(torch.zeros((), dtype=torch.float64))) for a in self.acts]

    @property
    def widths(self) -> list[int]:
        return [lin.out_features for lin in self.linears[:-1]]

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def neuron_params(self, layer: int) -> int:
        """Parameters one more neuron of hidden layer ``layer`` costs (its input weights, bias, output weights)."""
        return self.linears[layer].in_features + 1 + self.linears[layer + 1].out_features

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) if self.flatten else x

    def record(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Output, every Linear's input and every Linear's pre-activation (part of the graph)."""
        h = self.inputs(x)
        ins, pres = [], []
        for i, lin in enumerate(self.linears):
            ins.append(h)
            a = lin(h)
            pres.append(a)
            h = self.acts[i](a) if i < len(self.acts) else a
        return h, ins, pres

    def tail(self, pre: torch.Tensor, start: int) -> torch.Tensor:
        """The network's output from the pre-activation of ``linears[start]`` on."""
        h = pre
        for i in range(start, len(self.linears)):
            if i > start:
                h = self.linears[i](h)
            if i < len(self.acts):
                h = self.acts[i](h)
        return h

    def resize(self, widths: list[int]) -> None:
        """Give the Linear layers the shapes of ``widths`` (values zero): to load a grown checkpoint."""
        if len(widths) != len(self.widths):
            raise NasError(f"the checkpoint has {len(widths)} hidden layers, this model {len(self.widths)}")
        sizes = [self.linears[0].in_features, *widths, self.linears[-1].out_features]
        for lin, (i, o) in zip(self.linears, zip(sizes[:-1], sizes[1:])):
            lin.weight.data = lin.weight.data.new_zeros(o, i)
            lin.bias.data = lin.bias.data.new_zeros(o)
            lin.in_features, lin.out_features = i, o

    @torch.no_grad()
    def grow(
        self,
        layer: int,
        alpha: torch.Tensor,
        omega: torch.Tensor,
        delta: torch.Tensor | None,
        step: float,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        """Add ``alpha.shape[0]`` neurons to hidden layer ``layer`` at amplitude ``step``.

        The new neurons' weights are ``√step α`` and ``√step ω`` (their product scales like the
        step); the next layer's existing weights move by ``-step dW*``. Where σ(0) != 0 the next
        bias absorbs the new neurons' constant output, so a small step changes the function
        only to first order.
        """
        first, second = self.linears[layer], self.linears[layer + 1]
        dtype = first.weight.dtype
        root = math.sqrt(step)
        a = (root * alpha).to(dtype)
        w = (root * omega).to(dtype)
        new = {
            first.weight: torch.cat([first.weight, a[:, :-1]], 0),
            first.bias: torch.cat([first.bias, a[:, -1]]),
        }
        w2, b2 = second.weight.clone(), second.bias.clone()
        if delta is not None:
            w2 -= (step * delta[:, :-1]).to(dtype)
            b2 -= (step * delta[:, -1]).to(dtype)
        b2 -= (self.offsets[layer] * w.sum(1)).to(dtype)
        new[second.weight] = torch.cat([w2, w], 1)
        new[second.bias] = b2
        for param, value in new.items():
            if optimizer is not None:
                _grow_state(optimizer, param, value.shape)
            param.data = value.contiguous()
            param.grad = None  # a gradient of the old shape cannot accumulate into the new one
        first.out_features += a.shape[0]
        second.in_features += a.shape[0]


def _grow_state(optimizer: torch.optim.Optimizer, param: torch.Tensor, shape: torch.Size) -> None:
    """Keep the optimizer's state of the existing entries; new entries get a zero first moment and,
    for Adam-like second moments, the tensor's mean (a fresh zero would make their first steps huge)."""
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
