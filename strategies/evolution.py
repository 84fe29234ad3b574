"""Regularised evolution (Real et al., AAAI 2019) as an Optuna sampler, on the space's mutation.

The population is the ``population`` most recent *unique* architectures with a value, read from
the study's completed trials, so any number of worker processes evolve one population. Each new
trial: until the population is full, a uniformly random architecture; then a tournament of
``tournament`` members drawn without replacement from the population, and the winner's child by
``space.mutate`` (one random neighbour). The oldest member leaves as a new one enters (aging).
A child the study has already seen is redrawn (a new tournament, a new mutation) up to
``redraws`` times, so the budget goes to new architectures.

>>> import optuna
>>> from nas.searchspaces import get_space
>>> from nas.strategies.evolution import RegularizedEvolutionSampler
>>> space = get_space("nats-tss")
>>> sampler = RegularizedEvolutionSampler(space, population=10, tournament=3, seed=0)
>>> study = optuna.create_study(sampler=sampler, direction="maximize")
>>> study.optimize(lambda t: float(space.num_params(space.suggest(t))), n_trials=30)
>>> len(study.trials)
30
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.errors import InvalidArchitectureError, NasError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study

    from nas.searchspaces.base import SearchSpace


@dataclass(frozen=True)
class Member:
    """One architecture of the population with its value."""

    arch: Any
    key: str
    value: float


def tournament(population: Sequence[Member], size: int, rng: np.random.Generator, maximize: bool = True) -> Member:
    """The best of ``size`` members drawn without replacement (all of them if fewer)."""
    if not population:
        raise ValueError("tournament on an empty population")
    picks = rng.choice(len(population), size=min(size, len(population)), replace=False)
    contenders = [population[int(i)] for i in picks]
    return max(contenders, key=lambda m: m.value) if maximize else min(contenders, key=lambda m: m.value)


class RegularizedEvolutionSampler(BaseSampler):
    """Regularised (aging) evolution over a search space's own mutation (single objective)."""

    def __init__(
        self, space: SearchSpace, population: int = 20, tournament: int = 5, seed: int | None = None, redraws: int = 20
    ) -> None:
        if population < 2:
            raise NasError(f"evolution: population must be at least 2, got {population}")
        if not 1 <= tournament <= population:
            raise NasError(
                f"evolution: tournament must be between 1 and the population ({population}), got {tournament}"
            )
        self.space = space
        self.population = population
        self.tournament = tournament
        self.redraws = redraws
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._proposals: dict[int, dict[str, Any]] = {}
        self._decoded: dict[int, tuple[Any, str] | None] = {}

    def __str__(self) -> str:
        return f"RegularizedEvolutionSampler(population={self.population}, tournament={self.tournament})"

    # -- what the study holds --------------------------------------------------------------------
    def _decode(self, trial: FrozenTrial) -> tuple[Any, str] | None:
        if trial._trial_id not in self._decoded or trial.state == TrialState.RUNNING:
            try:
                arch = self.space.decode(trial.params)
                decoded: tuple[Any, str] | None = (arch, self.space.key(arch))
            except InvalidArchitectureError:
                decoded = None
            if trial.state == TrialState.RUNNING:
                return decoded  # params may still be filling in
            self._decoded[trial._trial_id] = decoded
        return self._decoded[trial._trial_id]

    def history(self, study: Study) -> list[Member]:
        """Unique architectures with a value, oldest first (first completed trial of each)."""
        seen: set[str] = set()
        out = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            decoded = self._decode(trial)
            if decoded is None or trial.value is None or decoded[1] in seen:
                continue
            seen.add(decoded[1])
            out.append(Member(decoded[0], decoded[1], float(trial.value)))
        return out

    def _seen(self, study: Study) -> set[str]:
        keys = set()
        for trial in study.get_trials(deepcopy=False):
            if trial.params:
                decoded = self._decode(trial)
                if decoded is not None:
                    keys.add(decoded[1])
        return keys

    # -- proposing -------------------------------------------------------------------------------
    def propose(self, study: Study) -> Any:
        """The next architecture: random until the population is full, then a mutated winner."""
        self._raise_error_if_multi_objective(study)
        history = self.history(study)
        seen = self._seen(study)
        maximize = study.direction == StudyDirection.MAXIMIZE
        population = history[-self.population :]
        child = None
        for _ in range(self.redraws + 1):
            if len(history) < self.population:
                child = self.space.sample(self._rng)
            else:
                parent = tournament(population, self.tournament, self._rng, maximize)
                child = self.space.mutate(parent.arch, self._rng)
            if self.space.key(child) not in seen:
                break
        return child

    # -- the sampler interface ---------------------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        params = self._proposals.get(trial._trial_id)
        if params is None:
            params = self.space.encode(self.propose(study))
            self._proposals[trial._trial_id] = params
        if param_name not in params:
            raise NasError(f"evolution: the {self.space.name} encoding has no parameter {param_name!r}")
        return params[param_name]

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._proposals.pop(trial._trial_id, None)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
