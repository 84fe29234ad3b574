"""An ensemble of proxies by log-rank aggregation, fixed in advance (nothing is fitted).

Each component ranks the architectures (1 = worst, n = best, ties averaged); an architecture's
ensemble score is the sum over components of ``log(rank / n)``, the aggregation of AZ-NAS
(Lee & Ham, CVPR 2024). The log makes a poor rank in any one component costly, so the ensemble
prefers architectures that no component considers bad. A failed component score ranks last for
that component (and is named in the result's reason).

A rank needs a population, so this proxy never scores a single network on its own:

- ``nas score`` / ``nas correlate`` rank within the architectures of the run (the AZ-NAS protocol);
- a search ranks each architecture against a fixed, seeded reference sample of the space
  (:class:`ReferenceRanks`; ``reference`` architectures, 200 by default, drawn with the score
  seed), so a trial's value never changes as the search goes on.

The default components are AZ-NAS's four signals (expressivity, progressivity, trainability,
complexity as FLOPs) plus MeCo, the single proxy with the strongest published NATS-TSS
correlation outside them. This ensemble was pre-registered (``docs/proxies.md``) before any of
its scores existed, and became the default by the rule registered with it: it beat the former
default (near, meco_opt, zico, flops) on 500 held-out cells that no ensemble choice had seen.

>>> from nas.proxies import get_proxy, parse_proxy_spec
>>> parse_proxy_spec("ensemble(near,synflow)")
[('ensemble', {'proxies': ['near', 'synflow']})]
>>> get_proxy("ensemble", proxies=["near", "synflow"]).label()
'ensemble(near,synflow)'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy, get_proxy, parse_proxy_spec, register_proxy

DEFAULT_COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability", "flops", "meco")
#: The default until 2026-11-22, kept for comparison in the reproduction.
FORMER_DEFAULT = ("near", "meco_opt", "zico", "flops")


@register_proxy()
class Ensemble(Proxy):
    """Sum of log-ranks of its component proxies within a population of architectures."""

    name = "ensemble"
    higher_is_better = True
    needs = Needs(inputs=False)
    defaults = {"proxies": list(DEFAULT_COMPONENTS), "reference": 200}
    positional = "proxies"
    population = True
    description = (
        "sum of log-ranks of its components (AZ-NAS aggregation); default AZ-NAS's three scores, flops and meco"
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        specs = self.params["proxies"]
        if isinstance(specs, str):
            specs = [specs]
        parsed = [spec for text in specs for spec in parse_proxy_spec(str(text))]
        if len(parsed) < 2:
            raise NasError("ensemble: give at least two component proxies, e.g. ensemble(near,zico)")
        self._components = [get_proxy(name, **p) for name, p in parsed]
        if any(c.population for c in self._components):
            raise NasError("ensemble: components must score single networks (no nested ensembles)")
        labels = [c.label() for c in self._components]
        if len(set(labels)) != len(labels):
            raise NasError(f"ensemble: a component is given twice: {', '.join(labels)}")
        reference = int(self.params["reference"])
        if reference < 2:
            raise NasError(f"ensemble: the reference sample needs at least 2 architectures, got {reference}")
        self.params = {"proxies": labels, "reference": reference}

    @property
    def components(self) -> list[Proxy]:
        return list(self._components)

    def label(self) -> str:
        labels = self.params["proxies"]
        args = [] if labels == list(DEFAULT_COMPONENTS) else list(labels)
        if self.params["reference"] != self.defaults["reference"]:
            args.append(f"reference={self.params['reference']}")
        return f"ensemble({','.join(args)})" if args else "ensemble"

    def score(self, model, batch) -> float:
        raise NasError(
            "an ensemble ranks a population of architectures; score it with `nas score` "
            "or nas.scoring.score_many, not one network at a time"
        )


def _oriented(column: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """Scores with higher = better and failed (NaN) scores at -inf, i.e. ranked last."""
    values = np.asarray(column, dtype=np.float64)
    values = values if higher_is_better else -values
    return np.where(np.isnan(values), -np.inf, values)


def log_rank_aggregate(columns: Sequence[Sequence[float]], higher_is_better: Sequence[bool]) -> np.ndarray:
    """Sum over columns of ``log(rank / n)``; ranks within the population, 1 = worst, ties
    averaged, NaN (failed) ranked last. ``columns[i][j]`` is component i's score of architecture j."""
    if not columns:
        raise ValueError("no columns to aggregate")
    total = np.zeros(len(columns[0]), dtype=np.float64)
    for column, higher in zip(columns, higher_is_better):
        values = _oriented(column, higher)
        total += np.log(rankdata(values, method="average") / len(values))
    return total


class ReferenceRanks:
    """Log-rank aggregation against a fixed reference sample, for one architecture at a time.

    The rank of a value is its mid-rank among the reference scores plus itself, divided by
    ``n + 1``; with the reference drawn at random from the space this estimates the value's rank
    fraction in the whole space, and it never changes as more architectures are scored.
    """

    def __init__(self, reference: Sequence[Sequence[float]], higher_is_better: Sequence[bool]) -> None:
        self.higher_is_better = list(higher_is_better)
        self.sorted = [np.sort(_oriented(col, h)) for col, h in zip(reference, self.higher_is_better)]
        if not self.sorted or len(self.sorted[0]) == 0:
            raise ValueError("an empty reference sample")

    def __call__(self, values: Sequence[float]) -> float:
        total = 0.0
        for ref, value, higher in zip(self.sorted, values, self.higher_is_better):
            v = _oriented([value], higher)[0]
            below = np.searchsorted(ref, v, side="left")
            equal = np.searchsorted(ref, v, side="right") - below
            total += float(np.log((below + 0.5 * equal + 1.0) / (len(ref) + 1.0)))
        return total
