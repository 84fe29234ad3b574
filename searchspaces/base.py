"""The interface every search space implements.

A space is a value object: no I/O, no global state. Architectures are small immutable, hashable
values (one class per space) whose ``str()`` is the canonical string the field uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from nas.errors import InvalidArchitectureError

if TYPE_CHECKING:  # torch and optuna are imported lazily: `nas spaces` should not pay for them
    import optuna
    from torch import nn

Arch = TypeVar("Arch", bound=Hashable)


class SearchSpace(ABC, Generic[Arch]):
    """A finite space of architectures in the benchmark's official order.

    Subclasses set :attr:`name` and implement the abstract methods; the generic helpers here
    (``resolve``, ``sample``, ``mutate``) are written once in terms of them.
    """

    name: str = ""
    #: One line for ``nas spaces``.
    description: str = ""
    #: Bumped when building a network changes its values (its initial weights, say): a new
    #: version is part of every protocol that builds one, so no stored score or study mixes two.
    network_version: str = "1"

    def network_protocol(self) -> dict[str, str]:
        """What a protocol that builds this space's networks records of them: nothing for version
        1 (so its stored scores keep their keys), ``{"network": version}`` after."""
        return {} if self.network_version == "1" else {"network": self.network_version}

    # -- size and order -------------------------------------------------------------------
    @property
    @abstractmethod
    def size(self) -> int:
        """Number of architectures (the official count)."""

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Arch]:
        """Architectures in official index order."""
        for i in range(self.size):
            yield self.from_index(i)

    @abstractmethod
    def from_index(self, index: int) -> Arch:
        """The architecture at an official index."""

    @abstractmethod
    def index_of(self, arch: Arch) -> int:
        """The official index of an architecture."""

    # -- strings ----------------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> Arch:
        """Parse the canonical string; raise :class:`InvalidArchitectureError` if malformed."""

    def format(self, arch: Arch) -> str:
        """The canonical string of an architecture."""
        return str(arch)

    def key(self, arch: Arch) -> str:
        """The key of an architecture in benchmark tables and score stores (the canonical
        string; NAS-Bench-101 uses its module hash)."""
        return self.format(arch)

    def resolve(self, ref: Any) -> Arch:
        """Accept anything a user may call an architecture: an arch value, an index (int or a
        string of digits) or the canonical string."""
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            return self.from_index(int(ref))
        if isinstance(ref, str):
            text = ref.strip()
            if text.isdigit():
                return self.from_index(int(text))
            return self.parse(text)
        return self.validate(ref)

    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` if it belongs to this space, else raise."""
        return self.parse(self.format(arch))

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidArchitectureError(f"{self.name}: index {index!r} is not an integer")
        if not 0 <= int(index) < self.size:
            raise InvalidArchitectureError(
                f"{self.name}: index {index} is out of range (expected 0 <= index < {self.size})"
            )
        return int(index)

    # -- sampling and neighbourhoods ------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random architecture (uniform over official indices)."""
        return self.from_index(int(rng.integers(self.size)))

    @abstractmethod
    def neighbours(self, arch: Arch) -> list[Arch]:
        """All architectures one mutation away (for evolution and local search)."""

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A random neighbour, uniformly among :meth:`neighbours`."""
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    # -- Optuna ---------------------------------------------------------------------------------
    @abstractmethod
    def suggest(self, trial: optuna.trial.BaseTrial) -> Arch:
        """Ask an Optuna trial for an architecture through the space's encoding."""

    @abstractmethod
    def decode(self, params: dict[str, Any]) -> Arch:
        """Turn a trial's ``params`` back into an architecture."""

    @abstractmethod
    def encode(self, arch: Arch) -> dict[str, Any]:
        """The trial ``params`` that decode to ``arch`` (for ``study.enqueue_trial``)."""

    # -- networks ---------------------------------------------------------------------------------
    @abstractmethod
    def build(self, arch: Arch, num_classes: int = 10) -> nn.Module:
        """The PyTorch network exactly as the benchmark trained it (returns logits)."""

    @abstractmethod
    def num_params(self, arch: Arch, num_classes: int = 10) -> int:
        """Trainable parameters, computed without building the network."""

    def flops(self, arch: Arch, num_classes: int = 10, input_size: int = 32) -> int:
        """Multiply-accumulates of one forward pass on one image (see :mod:`.flops`)."""
        from nas.searchspaces.flops import count_flops

        return count_flops(self.build(arch, num_classes), input_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"
