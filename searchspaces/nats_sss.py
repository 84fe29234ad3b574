"""NATS-Bench size search space (SSS): 32,768 channel configurations of one fixed network.

The network is the TSS cell network with one cell per stage (cell, reduction block, cell,
reduction block, cell), every cell the best TSS cell :data:`CELL`; only the output width of each of
the 5 layers is searched, from :data:`WIDTHS` = 8, 16, ..., 64. The canonical string is
``"c0:c1:c2:c3:c4"`` (e.g. ``"8:8:40:32:40"``); the official index reads the widths as a base-8
number with the first layer most significant, so ``8:8:8:8:8`` is 0 and ``64:64:64:64:64`` is
32767, the order of the benchmark's ``meta_archs``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import InvalidArchitectureError
from nas.searchspaces.base import SearchSpace
from nas.searchspaces.nats_tss import parse_cell
from nas.searchspaces.nb201_network import CellNetwork, cell_network_flops, cell_network_params

if TYPE_CHECKING:
    import optuna
    from torch import nn

#: The candidate widths of every layer, in index order.
WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
#: Layers 1 and 3 are the residual reduction blocks (stride 2), the others cells.
REDUCTIONS = (False, True, False, True, False)
#: The cell of every SSS network (TSS index 9930, the best CIFAR-10 cell of NAS-Bench-201).
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
CELL_OPS = parse_cell(CELL).ops
#: Optuna parameter names, one per layer.
PARAM_NAMES = tuple(f"c{i}" for i in range(NUM_LAYERS))
_EXPECTED = f"{NUM_LAYERS} widths from {{{', '.join(map(str, WIDTHS))}}}"
_POSITION = {w: i for i, w in enumerate(WIDTHS)}


def _check_widths(widths: Any, what: str) -> tuple[int, ...]:
    """``widths`` as a tuple of ints, or an error that names ``what`` and the expectation."""

    def fail(why: str) -> InvalidArchitectureError:
        return InvalidArchitectureError(f"nats-sss: {what}: {why} (expected {_EXPECTED})")

    try:
        values = tuple(widths)
    except TypeError:
        raise fail("not a sequence of widths") from None
    if len(values) != NUM_LAYERS:
        raise fail(f"{len(values)} widths instead of {NUM_LAYERS}")
    out = []
    for layer, value in enumerate(values):
        # bool is an int subclass and floats like 8.0 are likely mistakes: reject both.
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise fail(f"width {value!r} of layer {layer} is not an integer")
        if int(value) not in _POSITION:
            raise fail(f"width {value} of layer {layer} is not allowed")
        out.append(int(value))
    return tuple(out)


@dataclass(frozen=True)
class Channels:
    """An SSS architecture: the output widths of the 5 layers. Always valid once constructed."""

    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _check_widths(self.widths, repr(self.widths)))

    def __str__(self) -> str:
        return ":".join(map(str, self.widths))


def parse_channels(text: str) -> Channels:
    """Parse a canonical SSS string such as ``"8:8:40:32:40"``."""
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"nats-sss: expected a string like '8:8:40:32:40', got {text!r}")
    parts = text.strip().split(":")
    for layer, part in enumerate(parts):
        if not (part.isascii() and part.isdigit()):
            raise InvalidArchitectureError(
                f"nats-sss: cannot parse {text!r}: layer {layer} reads {part!r}, not an integer "
                f"(expected 'c0:c1:c2:c3:c4' with each width in {', '.join(map(str, WIDTHS))})"
            )
    return Channels(_check_widths([int(p) for p in parts], f"cannot parse {text!r}"))


class NatsSSS(SearchSpace[Channels]):
    """NATS-Bench SSS: 5 layers x 8 widths, the fixed best TSS cell in every cell layer."""

    name = "nats-sss"
    description = "NATS-Bench size space: 32,768 networks, 5 layer widths x {8, 16, ..., 64}"

    @property
    def size(self) -> int:
        return len(WIDTHS) ** NUM_LAYERS

    def from_index(self, index: int) -> Channels:
        index = self._check_index(index)
        digits = []
        for _ in range(NUM_LAYERS):  # least significant digit (last layer) first
            index, digit = divmod(index, len(WIDTHS))
            digits.append(WIDTHS[digit])
        return Channels(tuple(reversed(digits)))

    def index_of(self, arch: Channels) -> int:
        index = 0
        for width in self.validate(arch).widths:
            index = index * len(WIDTHS) + _POSITION[width]
        return index

    def __iter__(self) -> Iterator[Channels]:
        # product varies the last layer fastest: exactly the official order, without divmods.
        return (Channels(widths) for widths in itertools.product(WIDTHS, repeat=NUM_LAYERS))

    def parse(self, text: str) -> Channels:
        return parse_channels(text)

    def validate(self, arch: Any) -> Channels:
        """``arch`` itself if it is a :class:`Channels`; a sequence of 5 widths is accepted too."""
        if isinstance(arch, Channels):
            return arch
        if isinstance(arch, (str, bytes)):
            raise InvalidArchitectureError(
                f"nats-sss: expected an architecture value, got the string {arch!r} (use parse)"
            )
        return Channels(_check_widths(arch, repr(arch)))

    # -- neighbourhood ------------------------------------------------------------------------------
    def neighbours(self, arch: Channels) -> list[Channels]:
        """Every architecture with exactly one layer set to any other width (5 x 7 = 35).

        Any width, not only the adjacent ones, as in the benchmark's own regularized evolution
        (which picks a layer and a random candidate; here the no-op of redrawing the same width is
        excluded, as for TSS). It keeps the space's diameter at 5 mutations.
        """
        widths = self.validate(arch).widths
        return [
            Channels(widths[:layer] + (width,) + widths[layer + 1 :])
            for layer, current in enumerate(widths)
            for width in WIDTHS
            if width != current
        ]

    # -- Optuna encoding: one categorical per layer (keeps the sampler on the grid) -----------------
    def suggest(self, trial: optuna.trial.BaseTrial) -> Channels:
        return Channels(tuple(trial.suggest_categorical(name, WIDTHS) for name in PARAM_NAMES))

    def decode(self, params: dict[str, Any]) -> Channels:
        try:
            values = [params[name] for name in PARAM_NAMES]
        except KeyError as missing:
            raise InvalidArchitectureError(f"nats-sss: trial params lack layer {missing}") from None
        return Channels(_check_widths(values, f"trial params {params!r}"))

    def encode(self, arch: Channels) -> dict[str, Any]:
        return dict(zip(PARAM_NAMES, self.validate(arch).widths))

    # -- network ------------------------------------------------------------------------------------
    def build(self, arch: Channels, num_classes: int = 10) -> nn.Module:
        return CellNetwork(CELL_OPS, self.validate(arch).widths, REDUCTIONS, num_classes)

    def num_params(self, arch: Channels, num_classes: int = 10) -> int:
        return cell_network_params(CELL_OPS, self.validate(arch).widths, REDUCTIONS, num_classes)

    def flops(self, arch: Channels, num_classes: int = 10, input_size: int = 32) -> int:
        """Multiply-accumulates in closed form (equal to :func:`.flops.count_flops` on the built
        network; 32 for CIFAR, 16 for ImageNet16-120)."""
        widths = self.validate(arch).widths
        return cell_network_flops(CELL_OPS, widths, REDUCTIONS, num_classes, input_size)
