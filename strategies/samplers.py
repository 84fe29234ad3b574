"""Samplers by name: ``make_sampler("tpe", seed=0)``, registered like proxies and spaces.

| name | sampler | options |
|---|---|---|
| ``random`` | Optuna's RandomSampler | |
| ``tpe`` | TPESampler (Optuna 5: multivariate, constant liar) | ``n_startup_trials`` |
| ``gp`` | GPSampler (Gaussian process, small budgets) | ``n_startup_trials`` |
| ``nsga2`` | NSGAIISampler (several objectives) | ``population``, ``mutation_prob``, ``crossover_prob`` |
| ``brute`` | BruteForceSampler (every architecture once, in random order) | |
| ``evolution`` | :class:`~nas.strategies.evolution.RegularizedEvolutionSampler` | ``population``, ``tournament`` |

Any other sampler of ``optuna.samplers`` is taken by its class name, with or without
``Sampler`` and in any case (``qmc``, ``cmaes``, ``nsga3``), and its constructor's keyword
arguments as options. From Python, :func:`nas.search` also takes a sampler object.

A package adds its own with ``@register_sampler`` (``make(seed, space, **options)``) in a module
declared in the ``zcnas.samplers`` entry-point group:

>>> from nas.strategies.samplers import make_sampler, register_sampler
>>> import optuna
>>> @register_sampler("sobol", options=("scramble",))
... def sobol(seed, space, scramble=True):
...     return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=scramble, seed=seed)
>>> type(make_sampler("sobol", 0)).__name__
'QMCSampler'
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import NasError
from nas.registry import Registry, source_of

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from nas.searchspaces.base import SearchSpace

SAMPLERS_GROUP = "zcnas.samplers"


@dataclass(frozen=True)
class SamplerKind:
    """A registered sampler: ``make(seed, space, **options) -> BaseSampler``."""

    name: str
    make: Callable[..., BaseSampler]
    options: tuple[str, ...] = ()
    multi_objective: bool = False
    description: str = ""


def _optuna(cls_name: str, renames: dict[str, str] | None = None) -> Callable[..., BaseSampler]:
    def make(seed: int | None, space: Any, **options: Any) -> BaseSampler:
        import optuna

        kwargs = {(renames or {}).get(k, k): v for k, v in options.items()}
        cls = getattr(optuna.samplers, cls_name)
        return cls(seed=seed, **kwargs) if "seed" in inspect.signature(cls).parameters else cls(**kwargs)

    make.__qualname__ = make.__name__ = f"make_{cls_name}"
    return make


def _evolution(seed: int | None, space: SearchSpace | None, **options: Any) -> BaseSampler:
    if space is None:
        raise NasError("sampler evolution needs the search space")
    from nas.strategies.evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler(space, seed=seed, **{k: int(v) for k, v in options.items()})


RANDOM = SamplerKind("random", _optuna("RandomSampler"), (), True, "Optuna's RandomSampler")
TPE = SamplerKind("tpe", _optuna("TPESampler"), ("n_startup_trials",), True, "TPESampler")
GP = SamplerKind("gp", _optuna("GPSampler"), ("n_startup_trials",), True, "GPSampler (Gaussian process)")
NSGA2 = SamplerKind(
    "nsga2",
    _optuna("NSGAIISampler", {"population": "population_size"}),
    ("population", "mutation_prob", "crossover_prob"),
    True,
    "NSGAIISampler",
)
BRUTE = SamplerKind("brute", _optuna("BruteForceSampler"), (), True, "BruteForceSampler")
EVOLUTION = SamplerKind(
    "evolution", _evolution, ("population", "tournament"), False, "regularized evolution (Real et al.)"
)

_BUILTINS = ("random", "tpe", "gp", "nsga2", "brute", "evolution")
#: Every sampler: the built-ins and plugins (Optuna's others are found by class name).
SAMPLERS: Registry[SamplerKind] = Registry(
    "sampler",
    SAMPLERS_GROUP,
    builtins={name: f"nas.strategies.samplers:{name.upper()}" for name in _BUILTINS},
    aliases={
        "bruteforce": "brute",
        "brute-force": "brute",
        "brute_force": "brute",
        "grid": "brute",
        "nsgaii": "nsga2",
        "nsga-ii": "nsga2",
        "nsga": "nsga2",
        "re": "evolution",
        "rea": "evolution",
        "regularized-evolution": "evolution",
        "regularised-evolution": "evolution",
        "bo": "gp",
    },
    accept=lambda obj: isinstance(obj, SamplerKind),
)
#: The built-in samplers that handle several objectives.
MULTI_OBJECTIVE = ("random", "tpe", "gp", "nsga2", "brute")
#: Optuna's samplers that handle several objectives (the others optimise one).
_OPTUNA_MULTI = {
    "NSGAIIISampler",
    "QMCSampler",
    "RandomSampler",
    "TPESampler",
    "GPSampler",
    "NSGAIISampler",
    "BruteForceSampler",
}


def register_sampler(
    name: str, *, options: tuple[str, ...] = (), multi_objective: bool = False, description: str = ""
) -> Callable[[Callable[..., BaseSampler]], Callable[..., BaseSampler]]:
    """Register ``make(seed, space, **options) -> optuna.samplers.BaseSampler`` under ``name``."""

    def decorate(make: Callable[..., BaseSampler]) -> Callable[..., BaseSampler]:
        SAMPLERS.add(
            name,
            SamplerKind(name, make, tuple(options), multi_objective, description or (make.__doc__ or "").strip()),
            source_of(make),
        )
        return make

    return decorate


def _optuna_class_name(name: str) -> str | None:
    """``qmc`` / ``QMCSampler`` / ``cma-es`` -> the class name in ``optuna.samplers``, if any."""
    import optuna

    key = name.strip().lower().replace("-", "").replace("_", "")
    for attr in dir(optuna.samplers):
        cls = getattr(optuna.samplers, attr)
        if (
            isinstance(cls, type)
            and issubclass(cls, optuna.samplers.BaseSampler)
            and key in (attr.lower(), attr.lower().removesuffix("sampler"))
        ):
            return attr
    return None


def _kind(name: str) -> SamplerKind:
    if name in SAMPLERS:
        return SAMPLERS.get(name)
    cls_name = _optuna_class_name(name)
    if cls_name is None or cls_name == "BaseSampler":
        raise NasError(
            f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS.names())} "
            f"or the name of a sampler in optuna.samplers (e.g. qmc, cmaes)"
        )
    import optuna

    params = inspect.signature(getattr(optuna.samplers, cls_name)).parameters
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    options = tuple(p for p, param in params.items() if p != "seed" and param.kind in keyword)
    return SamplerKind(
        cls_name.lower().removesuffix("sampler"),
        _optuna(cls_name),
        options,
        cls_name in _OPTUNA_MULTI,
        f"optuna.samplers.{cls_name}",
    )


def canonical_sampler(name: str) -> str:
    """The registered name a spelling means (Optuna's own: the lower-case class name without
    ``Sampler``)."""
    return _kind(name).name


def is_multi_objective(name: str) -> bool:
    """Whether a sampler handles several objectives."""
    return _kind(name).multi_objective


def sampler_names() -> list[str]:
    """The registered samplers (Optuna's others are also taken by name)."""
    return SAMPLERS.names()


def check_options(name: str, options: dict[str, Any]) -> str:
    """The canonical sampler name; raises if ``options`` holds one the sampler does not take."""
    kind = _kind(name)
    unknown = set(options) - set(kind.options)
    if unknown:
        accepted = ", ".join(kind.options) or "none"
        raise NasError(f"sampler {kind.name}: unknown option(s) {', '.join(sorted(unknown))}; it takes: {accepted}")
    return kind.name


def make_sampler(
    name: str, seed: int | None = None, *, space: SearchSpace | None = None, **options: Any
) -> BaseSampler:
    """A seeded sampler by name; ``options`` as in the table above (unknown ones are an error).
    ``evolution`` needs the ``space`` (it mutates architectures)."""
    import optuna

    check_options(name, options)
    kind = _kind(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return kind.make(seed, space, **options)
        except ImportError as err:
            raise NasError(f"sampler {kind.name} needs a package that is not installed: {err}") from None
