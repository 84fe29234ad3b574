"""Run a search: one study, K worker processes, a progress bar, a clean Ctrl-C.

>>> from nas.strategies import RunOptions, SearchConfig, parse_objectives, run_search
>>> config = SearchConfig("nats-tss", tuple(parse_objectives(None, "params")), sampler="random")
>>> run = run_search(config, RunOptions(trials=10))                    # doctest: +SKIP
>>> len(run.evaluations)                                              # doctest: +SKIP
10

A study is named by everything its values depend on (space, objectives and their protocols,
sampler and its options, seed), so the same command finds the same study and continues it:
``trials`` is the total number of unique evaluations the study should hold.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import re
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.data import InputSpec
from nas.errors import NasError
from nas.proxies.base import protocol_digest
from nas.strategies.ledger import Evaluation, Ledger
from nas.strategies.liveness import TaggingSampler, fail_dead_trials, recover
from nas.strategies.objective import ObjectiveSpec, ProxyObjective
from nas.strategies.samplers import canonical_sampler, is_multi_objective, make_sampler
from nas.strategies.storage import DEFAULT_HEARTBEAT, normalize_url, open_storage

logger = logging.getLogger("nas.strategies")

CONFIG_ATTR = "zcnas.config"
#: How often a worker looks for dead siblings between trials (and always before it stops).
LIVENESS_SECONDS = 2.0


@dataclass(frozen=True)
class SearchConfig:
    """What a study's values depend on; equal configs share a study."""

    space: str
    objectives: tuple[ObjectiveSpec, ...]
    sampler: str | Any = "tpe"  # a name, or an Optuna sampler object (becomes its class name)
    sampler_options: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    inputs: InputSpec = field(default_factory=InputSpec)
    score_seed: int = 0
    num_classes: int | None = None
    #: where networks run; not part of the study's identity (see nas.devices)
    device: str = field(default="cpu", compare=False)
    #: an Optuna sampler object given instead of a name (its class names it in the identity)
    sampler_object: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        from nas.searchspaces import canonical_space_name

        object.__setattr__(self, "space", canonical_space_name(self.space))
        if not isinstance(self.sampler, str):
            import optuna

            if not isinstance(self.sampler, optuna.samplers.BaseSampler):
                raise NasError(f"sampler must be a name or an optuna.samplers.BaseSampler, got {self.sampler!r}")
            if self.sampler_options:
                raise NasError("sampler options go to a sampler given by name, not to a sampler object")
            cls = type(self.sampler)
            object.__setattr__(self, "sampler_object", self.sampler)
            object.__setattr__(self, "sampler", f"{cls.__module__}.{cls.__qualname__}")
        if self.sampler_object is None:
            object.__setattr__(self, "sampler", canonical_sampler(self.sampler))
        object.__setattr__(self, "sampler_options", tuple(sorted(dict(self.sampler_options).items())))
        if not self.objectives:
            raise NasError("no objective given")
        if len(self.objectives) > 1 and self.sampler_object is None and not is_multi_objective(self.sampler):
            from nas.strategies.samplers import MULTI_OBJECTIVE

            raise NasError(
                f"sampler {self.sampler} optimises one objective; for "
                f"{len(self.objectives)} objectives use one of {', '.join(MULTI_OBJECTIVE)}"
            )

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def identity(self) -> dict[str, Any]:
        """Everything the study's values depend on (JSON)."""
        from nas.searchspaces import get_space

        uses_inputs = any(not o.cost for o in self.objectives)
        return {
            "space": self.space,
            "objectives": [o.as_dict() for o in self.objectives],
            "sampler": self.sampler,
            "sampler_options": dict(self.sampler_options),
            "seed": self.seed,
            "inputs": self.inputs.protocol() if uses_inputs else None,
            "score_seed": self.score_seed if uses_inputs else None,
            "num_classes": self.num_classes or self.inputs.info.num_classes,
            **(get_space(self.space).network_protocol() if uses_inputs else {}),
        }

    def default_study_name(self) -> str:
        labels = re.sub(r"[^A-Za-z0-9_.=+-]+", "", "+".join(self.labels))
        digest = protocol_digest(self.identity())[:8]
        return f"{self.space}-{labels}-{self.sampler}-seed{self.seed}-{digest}"


@dataclass(frozen=True)
class RunOptions:
    """How to run a study (none of it changes its values)."""

    trials: int
    storage: str | None = None  # URL; None: sqlite under $NAS_HOME
    study: str | None = None  # None: SearchConfig.default_study_name()
    workers: int = 1
    store: str | None = None  # score store URL; None: the default store
    max_repeats: int = 100
    threads: int = 1
    heartbeat: int = DEFAULT_HEARTBEAT

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise NasError(f"{{trials}} must be positive, got {self.trials}", params=("trials",))
        if self.workers < 1:
            raise NasError(f"{{workers}} must be positive, got {self.workers}", params=("workers",))
        if self.max_repeats < 1:
            raise NasError(f"{{max_repeats}} must be positive, got {self.max_repeats}", params=("max_repeats",))
        object.__setattr__(self, "storage", normalize_url(self.storage))


@dataclass
class SearchRun:
    """The state of a study after a run."""

    study: str
    storage: str
    labels: list[str]
    directions: list[str]
    evaluations: list[Evaluation]
    trials: int  # the budget asked for
    total_trials: int  # Optuna trials in the study (repeats included)
    repeats: int  # trials served from earlier evaluations
    wall_time_s: float
    stop_reason: str
    interrupted: bool = False
    store_hits: int = 0  # evaluations this run whose scores were already stored

    @property
    def complete(self) -> bool:
        return len(self.evaluations) >= self.trials


# -- the study -------------------------------------------------------------------------------------
def open_study(config: SearchConfig, options: RunOptions, sampler: Any = None, create: bool = True):
    """Create or load the study and check it was made by the same configuration."""
    import optuna

    storage = open_storage(options.storage, options.heartbeat)
    name = options.study or config.default_study_name()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if create:
            try:
                study = optuna.create_study(
                    storage=storage, study_name=name, directions=config.directions, sampler=sampler, load_if_exists=True
                )
            finally:
                optuna.logging.set_verbosity(verbosity)
        else:
            try:
                study = optuna.load_study(storage=storage, study_name=name, sampler=sampler)
            except KeyError:
                raise NasError(f"no study {name!r} in {options.storage}") from None
            finally:
                optuna.logging.set_verbosity(verbosity)
    identity = json.loads(json.dumps(config.identity()))
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        if study.trials:
            raise NasError(f"study {name!r} in {options.storage} was not made by `nas search`")
        study.set_user_attr(CONFIG_ATTR, identity)
    elif stored != identity:
        diff = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
        raise NasError(
            f"study {name!r} was made with other settings ({', '.join(diff)} differ: "
            f"{', '.join(f'{k}={stored.get(k)!r}' for k in diff)}); choose another --study"
        )
    if [d.name.lower() for d in study.directions] != config.directions:
        raise NasError(f"study {name!r} optimises {len(study.directions)} objective(s) in other directions")
    return study


def worker_seed(seed: int, worker: int, existing_trials: int) -> int:
    """The sampler seed of one worker: ``seed`` itself for the first worker of a fresh study, else
    derived, so workers and resumed runs do not replay the same proposals."""
    if worker == 0 and existing_trials == 0:
        return seed
    return int(np.random.SeedSequence([seed, worker, existing_trials]).generate_state(1)[0])


def _done(ledger: Ledger, trials: int) -> bool:
    return ledger.claimed >= trials and not ledger.waiting_retries()


# -- one worker ------------------------------------------------------------------------------------
def work(
    config: SearchConfig,
    options: RunOptions,
    worker: int = 0,
    existing_trials: int = 0,
    on_trial: Callable[[Ledger], None] | None = None,
) -> dict[str, Any]:
    """Run trials in this process until the budget is claimed (or the sampler stops or
    converges); returns ``{"stop_reason", "evaluated", "store_hits"}``."""
    import optuna
    import torch

    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not "Trial N failed" + traceback on Ctrl-C
    threads = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            space = get_space(config.space)
            objective = ProxyObjective(
                space,
                config.objectives,
                config.inputs,
                budget=options.trials,
                store=ScoreStore(options.store),
                score_seed=config.score_seed,
                num_classes=config.num_classes,
                max_repeats=options.max_repeats,
                device=config.device,
            )
            if objective.scorer is not None:
                _ = objective.scorer.batch  # read the inputs now: a bad --data fails before any trial
            if config.sampler_object is not None:
                sampler = config.sampler_object  # a copy in a spawned worker
                if worker or existing_trials:
                    sampler.reseed_rng()  # as Optuna does for parallel jobs: no replayed proposals
            else:
                sampler = make_sampler(
                    config.sampler,
                    worker_seed(config.seed, worker, existing_trials),
                    space=space,
                    **dict(config.sampler_options),
                )
            study = open_study(config, options, TaggingSampler(sampler), create=False)

            last_check = [0.0]

            def after_trial(study: optuna.Study, _trial: Any) -> None:
                if objective.stop_reason:
                    study.stop()
                    return
                if time.monotonic() - last_check[0] > LIVENESS_SECONDS:
                    fail_dead_trials(study)  # dead siblings' evaluations go back in the queue
                    last_check[0] = time.monotonic()
                ledger = Ledger.read(study)
                if _done(ledger, options.trials) and fail_dead_trials(study):
                    ledger = Ledger.read(study)  # never stop while a dead sibling holds an evaluation
                if on_trial is not None:
                    on_trial(ledger)
                if _done(ledger, options.trials):
                    study.stop()

            if not _done(Ledger.read(study), options.trials):
                study.optimize(objective, callbacks=[after_trial], catch=())
        reason = objective.stop_reason
        if reason is None:
            reason = "budget" if _done(Ledger.read(study), options.trials) else "the sampler stopped (space exhausted)"
        return {"stop_reason": reason, "evaluated": objective.evaluated, "store_hits": objective.store_hits}
    finally:
        torch.set_num_threads(threads)
        optuna.logging.set_verbosity(verbosity)


def _worker_process(config: SearchConfig, options: RunOptions, worker: int, existing: int, queue: Any) -> None:
    """Entry point of a spawned worker: reports its result on ``queue``; exit 130 on Ctrl-C."""
    import sys

    try:
        queue.put((worker, work(config, options, worker, existing)))
    except KeyboardInterrupt:
        sys.exit(130)
    except NasError as err:
        logger.error("nas: error: worker %d: %s", worker, err)
        queue.put((worker, {"error": str(err)}))
        sys.exit(2)


# -- the run ---------------------------------------------------------------------------------------
class _Progress:
    """A tqdm bar of finished evaluations with the current best."""

    def __init__(self, enabled: bool, total: int, initial: int, label: str, directions: list[str]) -> None:
        self.bar = None
        self.sign = 1.0 if directions[0] == "maximize" else -1.0
        self.label = label
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=min(initial, total), desc="search", unit="arch", dynamic_ncols=True)

    def update(self, ledger: Ledger) -> None:
        if self.bar is None:
            return
        evaluations = [e for e in ledger.evaluations() if e.ok]
        self.bar.n = min(len(ledger.evaluations()), self.bar.total)
        if evaluations:
            top = max(evaluations, key=lambda e: self.sign * e.values[0])
            where = f"#{top.index}" if top.index is not None else top.arch[:24]
            self.bar.set_postfix_str(f"best {self.label} {top.values[0]:.4g} ({where})", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_search(config: SearchConfig, options: RunOptions, progress: bool = False) -> SearchRun:
    """Run (or continue) a study until it holds ``options.trials`` unique evaluations, with
    ``options.workers`` processes. Ctrl-C stops the workers, puts their unfinished evaluations
    back in the queue, and returns the study as it is (``interrupted=True``)."""
    from nas.store import ScoreStore

    start = time.perf_counter()
    study = open_study(config, options)
    ScoreStore(options.store)  # create its tables once, before workers open it at the same time
    _prepare_objective(config, options, progress)
    recover(study)
    ledger = Ledger.read(study)
    bar = _Progress(progress, options.trials, len(ledger.evaluations()), config.labels[0], config.directions)
    results: list[dict[str, Any]] = []
    interrupted = False
    workers = options.workers
    try:
        for _ in range(3):  # a second round only finishes evaluations whose worker died
            existing = len(study.trials)
            if workers == 1:
                try:
                    results.append(work(config, options, 0, existing, on_trial=bar.update))
                except KeyboardInterrupt:
                    interrupted = True
            else:
                interrupted = _run_processes(config, options, existing, workers, study, bar, results)
            recover(study)
            ledger = Ledger.read(study)
            bar.update(ledger)
            if interrupted or not ledger.waiting_retries() or any("error" in r for r in results):
                break
            workers = 1
    finally:
        bar.close()
    errors = [r["error"] for r in results if "error" in r]
    if errors and len(Ledger.read(study).evaluations()) < options.trials:
        raise NasError(f"{len(errors)} worker(s) failed: {errors[0]} (the study is kept; rerun to resume)")
    reasons = [r["stop_reason"] for r in results if "stop_reason" in r]
    reason = "interrupted" if interrupted else next((r for r in reasons if r != "budget"), "budget")
    finished = len(Ledger.read(study).evaluations())
    if not interrupted and reason == "budget" and finished < options.trials:
        killed = [r["killed"] for r in results if "killed" in r]
        reason = (
            f"incomplete: {finished} of {options.trials} evaluations"
            + (f" ({'; '.join(killed)})" if killed else "")
            + "; rerun to resume"
        )
    return _summary(
        study,
        config,
        options,
        time.perf_counter() - start,
        reason,
        interrupted,
        sum(r.get("store_hits", 0) for r in results),
    )


def _prepare_objective(config: SearchConfig, options: RunOptions, progress: bool) -> None:
    """Work every worker would otherwise repeat: an ensemble's reference sample."""
    from nas.proxies import proxy_class
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    if not any(not o.cost and proxy_class(o.name).population for o in config.objectives):
        return
    objective = ProxyObjective(
        get_space(config.space),
        config.objectives,
        config.inputs,
        budget=options.trials,
        store=ScoreStore(options.store),
        score_seed=config.score_seed,
        num_classes=config.num_classes,
    )
    objective.prepare(progress)


def _run_processes(
    config: SearchConfig,
    options: RunOptions,
    existing: int,
    workers: int,
    study: Any,
    bar: _Progress,
    results: list[dict[str, Any]],
) -> bool:
    """Start ``workers`` spawned processes and wait for them; True if interrupted."""
    ctx = mp.get_context("spawn")  # never fork a process whose torch threads are running
    queue = ctx.SimpleQueue()
    procs = [
        ctx.Process(target=_worker_process, args=(config, options, i, existing, queue), daemon=False)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    interrupted = False
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            bar.update(Ledger.read(study))
    except KeyboardInterrupt:
        interrupted = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
    for p in procs:
        p.join(timeout=60)
        if p.is_alive():
            p.terminate()
            p.join()
    reported = {}
    while not queue.empty():
        worker, result = queue.get()
        reported[worker] = result
    for i, p in enumerate(procs):
        if i in reported:
            results.append(reported[i])
        elif p.exitcode is not None and p.exitcode < 0 and p.exitcode != -signal.SIGINT:
            results.append({"killed": f"worker {i} was killed by signal {-p.exitcode}"})
        elif not interrupted and p.exitcode not in (130, -signal.SIGINT):
            results.append({"error": f"worker {i} exited with status {p.exitcode}"})
    return interrupted


def _summary(
    study: Any, config: SearchConfig, options: RunOptions, wall: float, reason: str, interrupted: bool, store_hits: int
) -> SearchRun:
    ledger = Ledger.read(study)
    return SearchRun(
        study=study.study_name,
        storage=str(options.storage),
        labels=config.labels,
        directions=config.directions,
        evaluations=ledger.evaluations(),
        trials=options.trials,
        total_trials=len(ledger.trials),
        repeats=ledger.repeats(),
        wall_time_s=wall,
        stop_reason=reason,
        interrupted=interrupted,
        store_hits=store_hits,
    )


def read_search(config: SearchConfig, options: RunOptions) -> SearchRun:
    """A study's state without running anything."""
    study = open_study(config, options, create=False)
    return _summary(study, config, options, 0.0, "read", False, 0)
