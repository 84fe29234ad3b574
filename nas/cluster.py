"""Scoring on a Dask cluster: a local one, or any scheduler's address (many hosts, SLURM, PBS).

``score_many(..., cluster=...)`` (``nas score|correlate --cluster``, the reproduction's
``--cluster``) hands the scores the store lacks to Dask distributed instead of local processes:

- ``"local"``: a :class:`distributed.LocalCluster` of ``workers`` processes, one thread each;
- ``"tcp://HOST:8786"`` (or ``tls://``): an existing scheduler, its workers started by you
  (``dask scheduler`` and ``dask worker tcp://HOST:8786 --nthreads 1`` by hand, or dask-jobqueue's
  ``SLURMCluster`` / ``PBSCluster``; recipes in README).

The client splits the missing (architecture, proxy) pairs into disjoint batches, one task each:
nothing is scored twice across the cluster. Each task scores its batch and writes it to the score
store itself (SQLite on one host, PostgreSQL for many), skipping what is already stored, so a task
that Dask runs again after a worker died recomputes nothing already stored, and a rerun after any
failure, the client's included, scores only what is missing. A running task whose client is gone
stops after the architecture in hand. Workers set torch to ``threads``
threads (default 1) before scoring. Every worker must reach the store: that is checked on every
worker before any work (one-line error), as is a scheduler that does not answer.

Why Dask: pure Python, installs from PyPI with no service to run for the local case, the same
client code for one laptop and a cluster, and dask-jobqueue for the batch schedulers users have.
Ray would serve too but brings a heavier runtime and its own object store we do not need; Celery
and friends need a broker. The extra: ``pip install 'zcnas[cluster]'``.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NasError

log = logging.getLogger("nas")
#: The Dask event topic of task starts (counts the tasks Dask ran again after losing a worker).
EVENTS = "zcnas-task"
_SCORERS: dict[str, Any] = {}  # per worker process: the scorer of each protocol set, built once


@dataclass
class ClusterReport:
    """What a cluster run did."""

    tasks: int = 0
    scored: int = 0  # architectures scored (each with every missing proxy)
    seconds: float = 0.0
    per_worker: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # tasks started more than once (a worker lost mid-task)

    @property
    def per_second(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else math.nan

    def line(self) -> str:
        workers = ", ".join(f"{w}: {n}" for w, n in sorted(self.per_worker.items()))
        return (
            f"cluster: scored {self.scored} architectures in {self.tasks} tasks, {self.seconds:.1f} s, "
            f"{self.per_second:.2f} per second; per worker {workers or '-'}; {self.retried} task(s) retried"
        )


def parse_cluster(text: str | None) -> str | None:
    """``None``/``""`` (no cluster), ``"local"``, or a scheduler address ``tcp://HOST:PORT``."""
    if not text:
        return None
    text = text.strip()
    if text == "local" or text.startswith(("tcp://", "tls://", "inproc://")):
        return text
    raise NasError(f"cluster must be 'local' or a scheduler address like tcp://HOST:8786, got {text!r}")


def _client(cluster: str, workers: int, timeout: float):
    from nas.optional import need

    need("distributed", "cluster", "scoring on a cluster")
    from distributed import Client, LocalCluster

    if cluster == "local":
        local = LocalCluster(
            n_workers=max(1, int(workers)),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(local), local
    try:
        return Client(cluster, timeout=timeout), None
    except (OSError, TimeoutError) as err:
        raise NasError(f"no Dask scheduler answers at {cluster} within {timeout:g} s ({type(err).__name__})") from None


def _check_store(url: str) -> str | None:
    """Run on every worker: None when the store opens, else the one-line reason."""
    from nas.store import ScoreStore

    try:
        ScoreStore(url)
    except NasError as err:
        return str(err)
    return None


def check_workers(client, store_url: str) -> int:
    """The number of workers; a one-line error when there are none or one cannot open the store."""
    answers = client.run(_check_store, store_url)
    if not answers:
        raise NasError("the Dask cluster has no workers")
    failed = {worker: reason for worker, reason in answers.items() if reason}
    if failed:
        worker, reason = next(iter(failed.items()))
        raise NasError(
            f"{len(failed)} of {len(answers)} Dask worker(s) cannot open the score store; {worker}: {reason}"
        )
    return len(answers)


def _task(initargs: tuple, batch: list[tuple[str, list[int]]], threads: int, task_key: str) -> dict[str, Any]:
    """Run on a worker: score the batch's missing pairs into the store."""
    import torch
    from distributed import get_worker

    from nas.proxies import get_proxy
    from nas.scoring import Scorer, _score_and_store
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    worker = get_worker()
    worker.log_event(EVENTS, {"key": task_key})
    cache_key = repr(initargs)
    if cache_key not in _SCORERS:
        space_name, specs, inputs, seed, num_classes, store_url, device = initargs
        scorer = Scorer(get_space(space_name), [get_proxy(n, **p) for n, p in specs], inputs, seed, num_classes, device)
        _SCORERS[cache_key] = (scorer, ScoreStore(store_url))
    scorer, store = _SCORERS[cache_key]
    torch.set_num_threads(int(threads))
    start, scored = time.perf_counter(), 0
    space = scorer.space
    keys = [space.key(space.resolve(text)) for text, _ in batch]
    missing = {  # one query per proxy for the whole batch: what a first run of this task did not store
        i: set(store.missing(space.name, keys, scorer.digest(scorer.proxies[i])))
        for i in {i for _, which in batch for i in which}
    }
    for (text, which), key in zip(batch, keys):
        if not _still_wanted(worker, task_key):  # its client is gone: leave the rest to a rerun
            break
        still = [i for i in which if key in missing[i]]
        if still:
            _score_and_store(scorer, store, text, still)
            scored += 1
    return {"worker": worker.address, "scored": scored, "seconds": time.perf_counter() - start}


def _still_wanted(worker, task_key: str) -> bool:
    """False once the scheduler has released this running task (its client disconnected or
    cancelled it); a batch then stops after the architecture in hand."""
    try:
        state = worker.state.tasks.get(task_key)
    except AttributeError:  # another distributed version: assume wanted
        return True
    return state is not None and state.state not in ("cancelled", "released", "forgotten")


def score_on_cluster(
    tasks: Sequence[tuple[str, list[int]]],
    initargs: tuple,
    cluster: str,
    workers: int = 2,
    threads: int = 1,
    batch_size: int | None = None,
    deadline: float | None = None,
    on_done: Callable[[int], Any] | None = None,
    timeout: float = 10.0,
) -> ClusterReport:
    """Score ``tasks`` ((arch string, proxy indices) pairs, disjoint) on ``cluster``; the scores
    go to the store named in ``initargs`` (``space, proxy specs, inputs, seed, num_classes,
    store url, device``). ``on_done(n)`` after each batch of n architectures; past ``deadline``
    (``time.monotonic()``) the batches not yet finished are cancelled (what is stored stays)."""
    from distributed import as_completed

    client, local = _client(cluster, workers, timeout)
    report = ClusterReport()
    try:
        count = check_workers(client, initargs[5])
        size = batch_size or max(1, min(32, math.ceil(len(tasks) / (4 * count))))
        batches = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
        run = uuid.uuid4().hex[:12]
        keys = [f"zcnas-{run}-{i}" for i in range(len(batches))]
        start = time.perf_counter()
        futures = {
            client.submit(_task, initargs, b, threads, k, key=k, pure=False): len(b) for b, k in zip(batches, keys)
        }
        report.tasks = len(futures)
        finished = as_completed(list(futures))
        for future in finished:
            try:
                result = future.result()
            except Exception as err:  # the task's own error, raised here
                raise NasError(f"a cluster task failed: {type(err).__name__}: {err}") from None
            report.scored += result["scored"]
            report.per_worker[result["worker"]] = report.per_worker.get(result["worker"], 0) + result["scored"]
            if on_done:
                on_done(futures[future])
            if deadline is not None and time.monotonic() > deadline:
                client.cancel(list(futures))
                break
        report.seconds = time.perf_counter() - start
        starts = Counter(msg.get("key") for _, msg in client.get_events(EVENTS) if isinstance(msg, dict))
        report.retried = sum(1 for k in keys if starts.get(k, 0) > 1)
    finally:
        client.close()
        if local is not None:
            local.close()
    log.info(report.line())
    return report


__all__ = ["score_on_cluster", "parse_cluster", "check_workers", "ClusterReport"]
