"""Samplers by name: ``make_sampler("tpe", seed=0)``.

| name | sampler | options |
|---|---|---|
| ``random`` | Optuna's RandomSampler | |
| ``tpe`` | TPESampler (Optuna 5: multivariate, constant liar) | ``n_startup_trials`` |
| ``gp`` | GPSampler (Gaussian process, small budgets) | ``n_startup_trials`` |
| ``nsga2`` | NSGAIISampler (multi-objective, e.g. proxy vs params) | ``population``, ``mutation_prob``, ``crossover_prob`` |
| ``brute`` | BruteForceSampler (every architecture once, in random order) | |
| ``evolution`` | :class:`~nas.strategies.evolution.RegularizedEvolutionSampler` | ``population``, ``tournament`` |
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from nas.errors import NasError

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from nas.searchspaces.base import SearchSpace

SAMPLERS = ("random", "tpe", "gp", "nsga2", "brute", "evolution")
_ALIASES = {"bruteforce": "brute", "brute-force": "brute", "brute_force": "brute", "grid": "brute",
            "nsgaii": "nsga2", "nsga-ii": "nsga2", "nsga": "nsga2", "re": "evolution", "rea": "evolution",
            "regularized-evolution": "evolution", "regularised-evolution": "evolution", "bo": "gp"}
OPTIONS = {
    "random": (),
    "tpe": ("n_startup_trials",),
    "gp": ("n_startup_trials",),
    "nsga2": ("population", "mutation_prob", "crossover_prob"),
    "brute": (),
    "evolution": ("population", "tournament"),
}
#: Samplers that handle several objectives.
MULTI_OBJECTIVE = ("random", "tpe", "gp", "nsga2", "brute")


def canonical_sampler(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SAMPLERS:
        raise NasError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    return key


def check_options(name: str, options: dict[str, Any]) -> str:
    """The canonical sampler name; raises if ``options`` holds one the sampler does not take."""
    name = canonical_sampler(name)
    unknown = set(options) - set(OPTIONS[name])
    if unknown:
        accepted = ", ".join(OPTIONS[name]) or "none"
        raise NasError(f"sampler {name}: unknown option(s) {', '.join(sorted(unknown))}; it takes: {accepted}")
    return name


def make_sampler(name: str, seed: int | None = None, *, space: SearchSpace | None = None,
                 **options: Any) -> BaseSampler:
    """A seeded sampler by name; ``options`` as in the table above (unknown ones are an error).
    ``evolution`` needs the ``space`` (it mutates architectures)."""
    import optuna

    name = check_options(name, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **options)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **options)
        if name == "nsga2":
            kwargs = dict(options)
            if "population" in kwargs:
                kwargs["population_size"] = int(kwargs.pop("population"))
            return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
        if name == "brute":
            return optuna.samplers.BruteForceSampler(seed=seed)
    if space is None:
        raise NasError("sampler evolution needs the search space")
    from nas.strategies.evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler(space, seed=seed, **{k: int(v) for k, v in options.items()})
