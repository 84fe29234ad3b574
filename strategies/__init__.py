"""Search: Optuna studies over a space, scored by zero-cost proxies through the score store.

>>> from nas.strategies import RunOptions, SearchConfig, parse_objectives, run_search
>>> config = SearchConfig("nats-tss", tuple(parse_objectives(None, "near")), sampler="evolution",
...                       sampler_options=(("population", 20), ("tournament", 5)))
>>> run = run_search(config, RunOptions(trials=100, workers=2))           # doctest: +SKIP

This package never imports ``nas.benchmarks``: the search never sees an accuracy. The CLI joins
the chosen architectures with a benchmark table afterwards.
"""

from __future__ import annotations

from nas.strategies.evolution import RegularizedEvolutionSampler, tournament
from nas.strategies.ledger import Evaluation, Ledger
from nas.strategies.objective import (
    COSTS,
    ObjectiveSpec,
    ProxyObjective,
    parse_objectives,
)
from nas.strategies.results import best, fronts_so_far, incumbents, pareto_front
from nas.strategies.run import (
    RunOptions,
    SearchConfig,
    SearchRun,
    read_search,
    run_search,
)
from nas.strategies.samplers import SAMPLERS, make_sampler
from nas.strategies.storage import dashboard_command, default_storage_url, open_storage

__all__ = [
    "COSTS",
    "SAMPLERS",
    "Evaluation",
    "Ledger",
    "ObjectiveSpec",
    "ProxyObjective",
    "RegularizedEvolutionSampler",
    "RunOptions",
    "SearchConfig",
    "SearchRun",
    "best",
    "dashboard_command",
    "default_storage_url",
    "fronts_so_far",
    "incumbents",
    "make_sampler",
    "open_storage",
    "pareto_front",
    "parse_objectives",
    "read_search",
    "run_search",
    "tournament",
]
