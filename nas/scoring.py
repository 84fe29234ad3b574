"""Score architectures with proxies under one reproducible protocol.

The protocol of a score is everything it depends on: the space, the proxy (name, version,
parameters), the inputs (source, dataset, batch size, seed), the network seed and the number of
classes. Networks are built right after ``torch.manual_seed(seed)``, so the same protocol gives
the same initial weights and the same score.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from nas.data import Batch, InputSpec, load_batch
from nas.proxies.base import Proxy, ProxyResult, evaluate, protocol_digest
from nas.searchspaces.base import SearchSpace


def build_network(space: SearchSpace, arch: Any, num_classes: int, seed: int) -> torch.nn.Module:
    """The space's network with the weights ``torch.manual_seed(seed)`` gives."""
    torch.manual_seed(seed)
    return space.build(arch, num_classes)


def proxy_label(proxy: Proxy) -> str:
    """``near`` for default parameters, ``near(repetitions=8)`` otherwise."""
    changed = {k: v for k, v in proxy.params.items() if proxy.defaults.get(k) != v}
    if not changed:
        return proxy.name
    return f"{proxy.name}(" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"


class Scorer:
    """Scores architectures of one space with several proxies on one input batch.

    The batch is loaded once; each architecture's network is built once and copied for each
    proxy, so every proxy sees the same initial weights.
    """

    def __init__(self, space: SearchSpace, proxies: Sequence[Proxy], inputs: InputSpec,
                 seed: int = 0, num_classes: int | None = None) -> None:
        self.space = space
        self.proxies = list(proxies)
        self.inputs = inputs
        self.seed = seed
        self.num_classes = num_classes or inputs.info.num_classes
        self._batch: Batch | None = None
        labels = [proxy_label(p) for p in self.proxies]
        if len(set(labels)) != len(labels):
            raise ValueError(f"the same proxy twice: {labels}")
        self.labels = labels

    @property
    def batch(self) -> Batch:
        if self._batch is None:
            self._batch = load_batch(self.inputs)
        return self._batch

    def protocol(self, proxy: Proxy) -> dict[str, Any]:
        return {"space": self.space.name, "proxy": proxy.protocol(), "inputs": self.inputs.protocol(),
                "seed": self.seed, "num_classes": self.num_classes}

    def digest(self, proxy: Proxy) -> str:
        return protocol_digest(self.protocol(proxy))

    def score(self, arch: Any, proxies: Sequence[Proxy] | None = None) -> dict[str, ProxyResult]:
        """Scores of one architecture, keyed by proxy label."""
        todo = self.proxies if proxies is None else list(proxies)
        model = build_network(self.space, arch, self.num_classes, self.seed)
        results = {}
        for i, proxy in enumerate(todo):
            network = model if i == len(todo) - 1 else copy.deepcopy(model)
            results[proxy_label(proxy)] = evaluate(proxy, network, self.batch)
        return results
