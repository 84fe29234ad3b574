"""The search objective: trial -> architecture -> score(s), through the score store.

>>> from nas.data import InputSpec
>>> from nas.searchspaces import get_space
>>> from nas.strategies.objective import ProxyObjective, parse_objectives
>>> objective = ProxyObjective(get_space("nats-tss"), parse_objectives(None, "params"),
...                            InputSpec(), budget=10)                    # doctest: +SKIP
>>> objective.directions                                                # doctest: +SKIP
['maximize']

Scores come from the same store as ``nas score`` (keyed by space, architecture and protocol), so
a search reuses scores computed earlier under the same protocol, and scores it computes serve
later commands. Repeated architectures are served from the study (see :mod:`.ledger`) and do not
spend the budget.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from nas.data import InputSpec
from nas.errors import InvalidArchitectureError, NasError
from nas.machine import machine_info
from nas.proxies import get_proxy, parse_proxy_spec, proxy_class
from nas.proxies.ensemble import ReferenceRanks
from nas.scoring import Scorer, proxy_label
from nas.store import ScoreStore
from nas.strategies.ledger import CLAIM, Claim, Ledger, claim_of
from nas.strategies.liveness import fail_dead_trials

logger = logging.getLogger("nas.strategies")

if TYPE_CHECKING:
    from nas.searchspaces.base import SearchSpace

#: Objectives computed in closed form from the architecture, always minimised.
COSTS = ("params", "flops")


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: a proxy (with parameters) or a cost (``params``/``flops``, minimised)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    cost: bool = False

    @property
    def label(self) -> str:
        if self.cost:
            return self.name
        return proxy_label(get_proxy(self.name, **dict(self.params)))

    @property
    def direction(self) -> str:
        if self.cost:
            return "minimize"
        return "maximize" if proxy_class(self.name).higher_is_better else "minimize"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "cost": self.cost}


def parse_objectives(objectives: str | None, proxy: str | None) -> list[ObjectiveSpec]:
    """``--proxy`` and ``--objectives`` -> objective specs, the proxy first.

    In ``objectives``, ``params`` and ``flops`` are costs (closed form, minimised) and every other
    name a proxy (``near``, ``synflow(...)``); ``proxy``, when given with it, must be one of them."""
    if not objectives:
        if not proxy:
            raise NasError(
                "say what to optimise: {proxy} NAME (or {objectives} NAME,params)", params=("proxy", "objectives")
            )
        specs = parse_proxy_spec(proxy)
        if len(specs) > 1:
            raise NasError(
                f"{{proxy}} takes one proxy, got {proxy!r}; for several objectives use "
                f"{{objectives}} {proxy} (multi-objective, e.g. with {{sampler}} nsga2)",
                params=("proxy", "objectives", "sampler"),
            )
        name, params = specs[0]
        proxy_class(name)  # unknown proxy -> error now
        return [ObjectiveSpec(name, tuple(sorted(params.items())))]
    out = []
    for name, params in parse_proxy_spec(objectives):
        if name in COSTS and not params:
            out.append(ObjectiveSpec(name, cost=True))
        else:
            proxy_class(name)
            out.append(ObjectiveSpec(name, tuple(sorted(params.items()))))
    if len({o.label for o in out}) != len(out):
        raise NasError(f"{{objectives}} names the same objective twice: {objectives!r}", params=("objectives",))
    if proxy:
        wanted = parse_objectives(None, proxy)[0]
        if wanted not in out:
            raise NasError(
                f"{{proxy}} {proxy} is not among {{objectives}} {objectives}", params=("proxy", "objectives")
            )
        out.remove(wanted)
        out.insert(0, wanted)
    return out


def _score_or_nan(result: Any) -> float:
    return float(result.score) if result is not None and result.status == "ok" else math.nan


class ScoreFailed(Exception):
    """An architecture whose score could not be computed (NaN, infinite, an exception)."""


class ProxyObjective:
    """Maps an Optuna trial to an architecture and its objective value(s).

    Each call: the space's encoding is suggested and decoded; the trial claims the architecture
    in the study's ledger (waiting for lower-numbered trials to claim first); a repeated
    architecture gets the stored value without spending the budget; a new one is scored through
    the score store. :meth:`values` turns scores into objective values and is the method to
    override for other objectives. An ensemble objective ranks each architecture's component
    scores against a fixed reference sample of the space (scored once, through the store).

    ``stop_reason`` is set when this worker should stop: the budget is claimed, or the sampler
    proposed ``max_repeats`` repeated architectures in a row (it has converged).
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[ObjectiveSpec],
        inputs: InputSpec,
        *,
        budget: int,
        store: ScoreStore | None = None,
        score_seed: int = 0,
        num_classes: int | None = None,
        max_repeats: int = 100,
        wait_timeout: float = 600.0,
        device: str = "cpu",
    ) -> None:
        if not objectives:
            raise NasError("no objective given")
        if budget < 1:
            raise NasError(f"the number of evaluations must be positive, got {budget}")
        self.space = space
        self.objectives = list(objectives)
        self.inputs = inputs
        self.budget = budget
        self.max_repeats = max_repeats
        self.wait_timeout = wait_timeout
        self.num_classes = num_classes or inputs.info.num_classes
        self.proxies = [get_proxy(o.name, **dict(o.params)) for o in self.objectives if not o.cost]
        # the scorer scores per network: an ensemble's components, each once
        self.scorer = (
            Scorer(space, self.proxies, inputs, seed=score_seed, num_classes=self.num_classes, device=device)
            if self.proxies
            else None
        )
        self.store = store if store is not None else ScoreStore()
        self.score_seed = score_seed
        self.device = device
        self._by_label = {proxy_label(p): p for p in self.proxies}
        self._rankers: dict[str, ReferenceRanks] = {}
        self.stop_reason: str | None = None
        self.evaluated = 0  # evaluations this process made
        self.store_hits = 0  # of which scores came from the store
        self._repeats_in_a_row = 0

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.objectives]

    # -- scores and values ---------------------------------------------------------------------
    def scores(self, arch: Any) -> dict[str, Any]:
        """Results of one architecture by label (``.score``, ``.status``, ``.reason``) of every
        proxy scored per network (an ensemble's components), from the store where it has them,
        else computed and stored."""
        if self.scorer is None:
            return {}
        key = self.space.key(arch)
        out: dict[str, Any] = {}
        missing = []
        for proxy in self.scorer.proxies:
            stored = self.store.get(self.space.name, key, self.scorer.digest(proxy))
            if stored is None:
                missing.append(proxy)
            else:
                out[proxy_label(proxy)] = stored
        if missing:
            results = self.scorer.score(arch, missing)
            for proxy in missing:
                label = proxy_label(proxy)
                self.store.put(
                    self.space.name,
                    key,
                    self.scorer.digest(proxy),
                    label,
                    results[label],
                    self.scorer.protocol(proxy),
                    machine_info(),
                )
                out[label] = results[label]
        else:
            self.store_hits += 1
        return out

    def values(self, arch: Any, scores: dict[str, Any]) -> tuple[float, ...]:
        """Objective values of an architecture from its proxy results (one per objective, in
        order); raises :class:`ScoreFailed` when a score is missing. Override for other
        objectives."""
        out = []
        for objective in self.objectives:
            if objective.name == "params" and objective.cost:
                out.append(float(self.space.num_params(arch, self.num_classes)))
            elif objective.name == "flops" and objective.cost:
                out.append(float(self.space.flops(arch, self.num_classes, self.inputs.info.input_size)))
            elif self._by_label[objective.label].population:
                out.append(self._ensemble_value(self._by_label[objective.label], scores))
            else:
                result = scores[objective.label]
                if result.status != "ok":
                    raise ScoreFailed(f"{objective.label}: {result.reason or 'failed'}")
                out.append(float(result.score))
        return tuple(out)

    # -- ensembles: ranks against a fixed reference sample ---------------------------------------
    def prepare(self, progress: bool = False) -> None:
        """Score the reference samples of ensemble objectives now (once per protocol: the scores
        are stored), e.g. in the parent process before workers start."""
        for proxy in self.proxies:
            if proxy.population:
                self._reference_ranks(proxy, progress)

    def _reference_ranks(self, ensemble: Any, progress: bool = False) -> ReferenceRanks:
        label = proxy_label(ensemble)
        if label not in self._rankers:
            from nas.scoring import score_many, select_archs

            archs = select_archs(self.space, ensemble.params["reference"], self.score_seed)
            scorer = Scorer(
                self.space,
                ensemble.components,
                self.inputs,
                seed=self.score_seed,
                num_classes=self.num_classes,
                device=self.device,
            )
            if progress:
                logger.warning(
                    "%s: scoring its reference sample of %d %s architectures (seed %d; stored, so only once)",
                    label,
                    len(archs),
                    self.space.name,
                    self.score_seed,
                )
            scores = score_many(scorer, archs, self.store, progress=progress)
            keys = [self.space.key(a) for a in archs]
            columns = [[_score_or_nan(scores[c.label()].get(k)) for k in keys] for c in ensemble.components]
            self._rankers[label] = ReferenceRanks(columns, [c.higher_is_better for c in ensemble.components])
        return self._rankers[label]

    def _ensemble_value(self, ensemble: Any, scores: dict[str, Any]) -> float:
        values = [_score_or_nan(scores.get(c.label())) for c in ensemble.components]
        if all(math.isnan(v) for v in values):
            raise ScoreFailed(f"{proxy_label(ensemble)}: every component failed")
        return self._reference_ranks(ensemble)(values)

    # -- one trial -------------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        claim = claim_of(trial)  # a retry of a killed evaluation carries its claim
        try:
            arch = self.space.suggest(trial)
        except InvalidArchitectureError as err:
            trial.set_user_attr(CLAIM, Claim(None, "invalid", trial.number).as_attr())
            self._repeated()
            raise optuna.TrialPruned(f"invalid architecture: {err}") from None
        key = self.space.key(arch)
        trial.set_user_attr("arch", self.space.format(arch))
        if claim is None:
            ledger = self._wait_for_lower_claims(trial)
            claim = Claim(key, ledger.decide(key, trial.number, self.budget), trial.number)
            trial.set_user_attr(CLAIM, claim.as_attr())
        else:
            ledger = Ledger.read(trial.study)
        if claim.role == "over_budget":
            self.stop_reason = "budget"
            raise optuna.TrialPruned("the budget of evaluations is spent")
        done = ledger.result_of(key)
        if claim.role == "duplicate" or done is not None:
            self._repeated()
            if done is None or done.state != TrialState.COMPLETE:
                raise optuna.TrialPruned("repeat of an architecture being scored elsewhere, or that failed")
            trial.set_user_attr("repeat_of", done.number)
            return self._result(tuple(done.values))
        self._repeats_in_a_row = 0
        self._describe(trial, arch)
        scores = self.scores(arch)
        self.evaluated += 1
        trial.set_user_attr(
            "scores", {label: (None if r.score != r.score else float(r.score)) for label, r in scores.items()}
        )
        try:
            values = self.values(arch, scores)
        except ScoreFailed as err:
            trial.set_user_attr("failed", str(err))
            raise optuna.TrialPruned(f"score failed: {err}") from None
        return self._result(values)

    def _result(self, values: tuple[float, ...]) -> float | tuple[float, ...]:
        return values[0] if len(values) == 1 else values

    def _describe(self, trial: optuna.Trial, arch: Any) -> None:
        try:
            trial.set_user_attr("index", self.space.index_of(arch))
        except NasError:
            pass
        trial.set_user_attr("params", int(self.space.num_params(arch, self.num_classes)))

    def _repeated(self) -> None:
        self._repeats_in_a_row += 1
        if self._repeats_in_a_row >= self.max_repeats:
            self.stop_reason = (
                f"{self._repeats_in_a_row} repeated or invalid proposals in a row (the sampler has converged)"
            )

    def _wait_for_lower_claims(self, trial: optuna.Trial) -> Ledger:
        """The ledger once every running trial with a lower number has claimed."""
        start = time.monotonic()
        next_check = start + 1.0
        while True:
            ledger = Ledger.read(trial.study)
            pending = ledger.unclaimed_running_below(trial.number)
            if not pending:
                return ledger
            now = time.monotonic()
            if now >= next_check:  # a worker that died before claiming must not block us
                fail_dead_trials(trial.study, pending)
                next_check = now + 1.0
            if now - start > self.wait_timeout:
                raise NasError(
                    f"trial {pending[0].number} has not claimed an architecture for "
                    f"{self.wait_timeout:.0f} s; is its worker hung?"
                )
            time.sleep(0.02)
