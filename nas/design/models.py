"""The networks the design tools take: a built-in family, a benchmark architecture, or a factory.

A model is named by one string, so that a command line, a saved result and a training script all
rebuild the same network:

- ``mlp(widths=256-256,act=relu,bn=false,skip=false,init=default,gain=1)``: a multilayer perceptron on
  the flattened input, one hidden layer per width (``Linear [BatchNorm1d] act``), a linear head.
  ``skip=true`` adds the identity around every hidden layer whose input and output widths agree.
- ``cnn(channels=16-32-64,blocks=1,act=relu,bn=true,skip=false,init=default)``: ``blocks``
  3x3 convolution layers (``Conv [BatchNorm2d] act``) per stage, each stage after the first
  starting with stride 2, then global average pooling and a linear head. ``skip=true`` adds the
  identity around every layer whose input and output shapes agree.
- ``SPACE:ARCH``: a benchmark architecture as the benchmark built it
  (``nats-tss:|nor_conv_3x3~0|+|...|``, ``nats-sss:8:16:32:64:64``, ``nb101:HASH``, or an index).
- ``package.module:factory`` or ``package.module:factory(key=value,...)``: your own function
  returning a ``torch.nn.Module``; it is imported and called (it runs your code, as ``python``
  would).

``act`` is one of :data:`ACTIVATIONS`, ``init`` one of :data:`INITS` (applied to every linear and
convolution weight; biases zero), ``gain`` a factor on those weights after it (default 1). The
input shape and the number of classes come from the data.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.errors import NasError

#: Activation names -> modules (elementwise: the per-activation NLC and normalisation apply).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "tanhshrink": nn.Tanhshrink,
    "identity": nn.Identity,
}


def _zero(weight: torch.Tensor) -> None:
    nn.init.zeros_(weight)


#: Initialisation names -> in-place initialisers of a weight (``None``: PyTorch's default).
INITS: dict[str, Callable[[torch.Tensor], Any] | None] = {
    "default": None,
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "orthogonal": nn.init.orthogonal_,
    "normal": lambda w: nn.init.normal_(w, std=0.02),
    "zeros": _zero,
}

_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*(?::[\w.]+)?)\s*(?:\((.*)\))?\s*$", re.S)
FAMILIES = ("mlp", "cnn")


def _widths(value: Any, key: str) -> tuple[int, ...]:
    text = str(value)
    try:
        out = tuple(int(v) for v in re.split(r"[-x/ ]+", text.strip()) if v)
    except ValueError:
        raise NasError(f"{key}={text!r}: expected widths like 256-256") from None
    if not out or min(out) < 1:
        raise NasError(f"{key}={text!r}: expected positive widths like 256-256")
    return out


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise NasError(f"{key}={value!r}: expected true or false")


def _choice(value: Any, key: str, table: dict) -> str:
    if value not in table:
        raise NasError(f"{key}={value!r}: expected one of {', '.join(table)}")
    return str(value)


def _parse_args(text: str, where: str) -> dict[str, Any]:
    from nas.proxies.base import _split_top_level

    params: dict[str, Any] = {}
    for item in _split_top_level(text or ""):
        key, sep, value = item.partition("=")
        if not sep:
            raise NasError(f"{where}: argument {item!r} is not key=value")
        try:
            params[key.strip()] = json.loads(value.strip())
        except json.JSONDecodeError:
            params[key.strip()] = value.strip()
    return params


def _is_space(name: str) -> bool:
    from nas.searchspaces import canonical_space_name

    try:
        canonical_space_name(name)
    except NasError:
        return False
    return True


class Residual(nn.Module):
    """``x + body(x)``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def init_weights(model: nn.Module, init: str, gain: float = 1.0) -> nn.Module:
    """Apply :data:`INITS`[``init``] to every linear and convolution weight (biases zero), then
    multiply the weights by ``gain`` (the weight scale: > 1 drives saturating or deep networks
    towards chaos, the regime of large NLC)."""
    fn = INITS[_choice(init, "init", INITS)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
                if fn is not None:
                    fn(m.weight)
                    if m.bias is not None:
                        m.bias.zero_()
                if gain != 1.0:
                    m.weight.mul_(float(gain))
    return model


def mlp(
    in_features: int,
    num_classes: int,
    widths: Sequence[int] = (256, 256),
    act: str = "relu",
    bn: bool = False,
    skip: bool = False,
    init: str = "default",
    gain: float = 1.0,
) -> nn.Module:
    """The ``mlp`` family (see the module docstring); the first module flattens the input."""
    make = ACTIVATIONS[_choice(act, "act", ACTIVATIONS)]
    layers: list[nn.Module] = [nn.Flatten()]
    prev = int(in_features)
    for width in widths:
        body = nn.Sequential(nn.Linear(prev, width), *([nn.BatchNorm1d(width)] if bn else []), make())
        layers.append(Residual(body) if skip and prev == width else body)
        prev = width
    layers.append(nn.Linear(prev, int(num_classes)))
    return init_weights(nn.Sequential(*layers), init, gain)


def cnn(
    in_channels: int,
    num_classes: int,
    channels: Sequence[int] = (16, 32, 64),
    blocks: int = 1,
    act: str = "relu",
    bn: bool = True,
    skip: bool = False,
    init: str = "default",
    gain: float = 1.0,
) -> nn.Module:
    """The ``cnn`` family (see the module docstring)."""
    make = ACTIVATIONS[_choice(act, "act", ACTIVATIONS)]
    if int(blocks) < 1:
        raise NasError(f"blocks={blocks}: expected at least 1")
    layers: list[nn.Module] = []
    prev = int(in_channels)
    for stage, width in enumerate(channels):
        for block in range(int(blocks)):
            stride = 2 if stage > 0 and block == 0 else 1
            body = nn.Sequential(
                nn.Conv2d(prev, width, 3, stride, 1, bias=not bn), *([nn.BatchNorm2d(width)] if bn else []), make()
            )
            layers.append(Residual(body) if skip and stride == 1 and prev == width else body)
            prev = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, int(num_classes))]
    return init_weights(nn.Sequential(*layers), init, gain)


@dataclass(frozen=True)
class ModelSpec:
    """A network named by one string (see the module docstring); :meth:`build` makes it."""

    text: str
    kind: str = field(init=False)  # "mlp", "cnn", "space" or "factory"
    target: str = field(init=False)  # the family, the space or "module:function"
    params: dict[str, Any] = field(init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        text = self.text.strip()
        match = _CALL.match(text)
        name = match.group(1) if match else ""
        prefix = text.partition(":")[0]
        if match and name in FAMILIES:
            kind, params = name, _parse_args(match.group(2) or "", name)
        elif ":" in text and _is_space(prefix):
            arch = text.partition(":")[2]
            if not arch:
                raise NasError(f"model {self.text!r}: no architecture after {prefix}:")
            kind, name, params = "space", prefix, {"arch": arch}
        elif match and ":" in name:
            kind, params = "factory", _parse_args(match.group(2) or "", name)
        else:
            raise NasError(
                f"cannot read model {self.text!r}; expected mlp(...), cnn(...), SPACE:ARCH or module:factory"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "target", name)
        object.__setattr__(self, "params", params)
        if kind in FAMILIES:
            self._family_kwargs(params)  # one-line errors now, not at build time

    def _family_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        common = {"act", "bn", "skip", "init", "gain"}
        allowed = {"mlp": {"widths", *common}, "cnn": {"channels", "blocks", *common}}
        unknown = set(params) - allowed[self.kind]
        if unknown:
            raise NasError(
                f"{self.kind}: unknown parameter(s) {sorted(unknown)}; expected {sorted(allowed[self.kind])}"
            )
        out: dict[str, Any] = {}
        for key, value in params.items():
            if key in ("widths", "channels"):
                out[key] = _widths(value, key)
            elif key in ("bn", "skip"):
                out[key] = _bool(value, key)
            elif key == "blocks":
                out[key] = int(value)
            elif key == "gain":
                try:
                    out[key] = float(value)
                except ValueError:
                    raise NasError(f"gain={value!r}: expected a number") from None
                if not out[key] > 0:
                    raise NasError(f"gain={value!r}: expected a positive number")
            elif key == "act":
                out[key] = _choice(value, key, ACTIVATIONS)
            else:
                out[key] = _choice(value, key, INITS)
        return out

    def with_params(self, **params: Any) -> ModelSpec:
        """The same family with some parameters replaced (widths, act, init, ...)."""
        if self.kind not in FAMILIES and self.kind != "factory":
            raise NasError(f"model {self.text!r} has no parameters to vary; use mlp(...), cnn(...) or a factory")
        merged = {**self.params, **params}

        def fmt(v: Any) -> str:
            if isinstance(v, (tuple, list)):
                return "-".join(str(int(w)) for w in v)
            return str(v).lower() if isinstance(v, bool) else str(v)

        return ModelSpec(f"{self.target}({','.join(f'{k}={fmt(v)}' for k, v in merged.items())})")

    def build(self, input_shape: Sequence[int], num_classes: int, seed: int | None = 0) -> nn.Module:
        """The network for inputs of ``input_shape`` (one sample's, e.g. ``(3, 32, 32)``) and
        ``num_classes`` outputs, its weights drawn after ``torch.manual_seed(seed)``."""
        if seed is not None:
            torch.manual_seed(int(seed))
        shape = tuple(int(s) for s in input_shape)
        if self.kind == "mlp":
            features = 1
            for s in shape:
                features *= s
            return mlp(features, num_classes, **self._family_kwargs(self.params))
        if self.kind == "cnn":
            if len(shape) != 3:
                raise NasError(f"cnn needs image inputs (C x H x W), got samples of shape {shape}")
            return cnn(shape[0], num_classes, **self._family_kwargs(self.params))
        if self.kind == "space":
            from nas.searchspaces import get_space

            space = get_space(self.target)
            text = str(self.params["arch"])
            arch = space.from_index(int(text)) if text.isdigit() else space.parse(text)
            return space.build(arch, num_classes=int(num_classes))
        return self._call_factory()

    def _call_factory(self) -> nn.Module:
        module_name, _, function = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise NasError(f"cannot import {module_name!r} for model {self.text!r}: {err}") from None
        factory = getattr(module, function, None)
        if not callable(factory):
            raise NasError(f"{module_name!r} has no function {function!r}")
        try:
            model = factory(**self.params)
        except Exception as err:  # the user's code: one line saying what failed
            raise NasError(f"model {self.text!r} does not build: {type(err).__name__}: {err}") from None
        if not isinstance(model, nn.Module):
            raise NasError(f"{self.target} returned {type(model).__name__}, not a torch.nn.Module")
        return model


def parse_model(text: str) -> ModelSpec:
    """``"mlp(widths=64-64)"`` -> :class:`ModelSpec` (one-line errors on a malformed name)."""
    return ModelSpec(text)


__all__ = ["ModelSpec", "parse_model", "mlp", "cnn", "init_weights", "ACTIVATIONS", "INITS", "Residual"]
