"""`toy-mlp`: a pooled-image MLP with three hidden layers of width 8, 16, 32 or 64 (64 networks).

Its own encoding (``8-16-32``), its own official order and its own ``build``: everything a
space needs to work with `nas score`, `nas correlate` and `nas search`.
"""

from __future__ import annotations

import itertools
from typing import Any

from torch import nn

from nas.errors import InvalidArchitectureError
from nas.searchspaces import SearchSpace

WIDTHS = (8, 16, 32, 64)
LAYERS = 3
POOLED = 3 * 4 * 4  # the image is pooled to 4x4 before the first layer
ORDER = list(itertools.product(WIDTHS, repeat=LAYERS))


class ToyMLP(SearchSpace):
    name = "toy-mlp"
    description = "toy plugin: pooled-image MLP, 3 hidden widths in {8, 16, 32, 64}"

    @property
    def size(self) -> int:
        return len(ORDER)

    def from_index(self, index: int) -> tuple[int, ...]:
        return ORDER[self._check_index(index)]

    def index_of(self, arch: tuple[int, ...]) -> int:
        return ORDER.index(self.validate(arch))

    def parse(self, text: str) -> tuple[int, ...]:
        try:
            widths = tuple(int(w) for w in text.strip().split("-"))
        except ValueError:
            raise InvalidArchitectureError(f"toy-mlp: {text!r} is not W-W-W") from None
        if len(widths) != LAYERS or any(w not in WIDTHS for w in widths):
            raise InvalidArchitectureError(f"toy-mlp: {text!r} needs {LAYERS} widths from {WIDTHS}")
        return widths

    def format(self, arch: tuple[int, ...]) -> str:
        return "-".join(str(w) for w in arch)

    def neighbours(self, arch: tuple[int, ...]) -> list[tuple[int, ...]]:
        arch = self.validate(arch)
        return [arch[:i] + (w,) + arch[i + 1 :] for i in range(LAYERS) for w in WIDTHS if w != arch[i]]

    def suggest(self, trial: Any) -> tuple[int, ...]:
        return tuple(trial.suggest_categorical(f"layer{i}", WIDTHS) for i in range(LAYERS))

    def decode(self, params: dict[str, Any]) -> tuple[int, ...]:
        return self.parse("-".join(str(params[f"layer{i}"]) for i in range(LAYERS)))

    def encode(self, arch: tuple[int, ...]) -> dict[str, Any]:
        return {f"layer{i}": w for i, w in enumerate(self.validate(arch))}

    def build(self, arch: tuple[int, ...], num_classes: int = 10) -> nn.Module:
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(4), nn.Flatten()]
        width = POOLED
        for w in self.validate(arch):
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        layers.append(nn.Linear(width, num_classes))
        return nn.Sequential(*layers)

    def num_params(self, arch: tuple[int, ...], num_classes: int = 10) -> int:
        sizes = (POOLED, *self.validate(arch), num_classes)
        return sum(a * b + b for a, b in zip(sizes, sizes[1:]))
