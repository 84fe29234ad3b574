"""Score architectures with proxies under one reproducible protocol.

The protocol of a score is everything it depends on: the space, the proxy (name, version,
parameters), the inputs (source, dataset, batch size, seed), the network seed and the number of
classes. Networks are built right after ``torch.manual_seed(seed)``, so the same protocol gives
the same initial weights and the same score.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nas.data import Batch, InputSpec, load_batch
from nas.errors import NasError
from nas.machine import machine_info
from nas.proxies.base import (
    Proxy,
    ProxyResult,
    evaluate_architecture,
    evaluate_together,
    protocol_digest,
    shared_groups,
)
from nas.records import Score
from nas.searchspaces.base import SearchSpace


def build_network(space: SearchSpace, arch: Any, num_classes: int, seed: int, device: str = "cpu") -> torch.nn.Module:
    """The space's network with the weights ``torch.manual_seed(seed)`` gives, built on the CPU
    (the same weights on every device; see :mod:`nas.devices`) and moved to ``device``."""
    torch.manual_seed(seed)
    model = space.build(arch, num_classes)
    return model if device == "cpu" else model.to(device)


def proxy_label(proxy: Proxy) -> str:
    """``near`` for default parameters, ``near(repetitions=8)`` otherwise."""
    return proxy.label()


class Scorer:
    """Scores architectures of one space with several proxies on one input batch.

    The batch is loaded once; each architecture's network is built once from the seed and each
    proxy gets an exact copy, so every proxy sees the same initial weights. Population proxies (an ensemble) are
    expanded: ``proxies`` holds what is scored per network (ensemble components included, each
    once), ``requested`` and ``labels`` what the caller asked for.
    """

    def __init__(
        self,
        space: SearchSpace,
        proxies: Sequence[Proxy],
        inputs: InputSpec,
        seed: int = 0,
        num_classes: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.space = space
        self.device = device  # not in the protocol: see nas.devices
        self.requested = list(proxies)
        self.inputs = inputs
        self.seed = seed
        self.num_classes = num_classes or inputs.info.num_classes
        self._batch: Batch | None = None
        labels = [proxy_label(p) for p in self.requested]
        if len(set(labels)) != len(labels):
            raise NasError(f"the same proxy twice: {labels}")
        self.labels = labels
        per_network: dict[str, Proxy] = {}
        for proxy in self.requested:
            for part in getattr(proxy, "components", None) or [proxy]:
                per_network.setdefault(proxy_label(part), part)
        self.proxies = list(per_network.values())

    @property
    def batch(self) -> Batch:
        if self._batch is None:
            self._batch = load_batch(self.inputs).to(self.device)
        return self._batch

    def protocol(self, proxy: Proxy) -> dict[str, Any]:
        if not proxy.needs.network:  # its own weights: no network seed, only the inputs it reads
            return {"space": self.space.name, "proxy": proxy.protocol(), "inputs": proxy.inputs_protocol(self.inputs)}
        return {
            "space": self.space.name,
            "proxy": proxy.protocol(),
            "inputs": self.inputs.protocol(),
            "seed": self.seed,
            "num_classes": self.num_classes,
            **self.space.network_protocol(),
        }

    def digest(self, proxy: Proxy) -> str:
        return protocol_digest(self.protocol(proxy))

    def score(self, arch: Any, proxies: Sequence[Proxy] | None = None) -> dict[str, ProxyResult]:
        """Scores of one architecture, keyed by proxy label.

        Each proxy gets its own copy of the network: the same initial weights (the same seed)
        and the same global RNG state after them, so a score does not depend on which other
        proxies ran before it. The network is built once and deep-copied for every proxy but the
        last (a copy is exact, and cheaper than a build: an NB101 build draws its weights with
        numpy, about 5 times the cost of the copy). Proxies that declare a shared pass (the
        AZ-NAS components; snip, grad_norm and fisher) share one copy and one pass, with the
        scores each would get alone."""
        todo = self.proxies if proxies is None else list(proxies)
        out: dict[str, ProxyResult] = {}
        for proxy in todo:
            if not proxy.needs.network:
                out[proxy_label(proxy)] = evaluate_architecture(proxy, self.space, arch, self.inputs, self.device)
        groups = shared_groups([p for p in todo if p.needs.network])
        if groups:
            built = build_network(self.space, arch, self.num_classes, self.seed, self.device)
            after_build = torch.get_rng_state()
            for i, group in enumerate(groups):
                model = built if i == len(groups) - 1 else copy.deepcopy(built)
                torch.manual_seed(self.seed)  # every generator as the build left it: CPU's below
                torch.set_rng_state(after_build)
                for proxy, result in zip(group, evaluate_together(group, model, self.batch)):
                    out[proxy_label(proxy)] = result
        return {proxy_label(proxy): out[proxy_label(proxy)] for proxy in todo}


# -- many architectures, many processes, one store ---------------------------------------------------
def select_archs(
    space: SearchSpace, sample: str | int | None, seed: int, archs: Sequence[str] | None = None
) -> list[Any]:
    """The architectures a run covers: explicit ``archs``, ``sample="all"``, or ``sample=N``
    drawn without replacement by ``numpy.random.default_rng(seed)`` (official indices where the
    space has them, otherwise distinct random cells)."""
    import numpy as np

    if archs:
        return [space.resolve(a) for a in archs]
    if sample is None:
        raise NasError("say which architectures: {sample} N, {sample} all, or {archs}", params=("sample", "archs"))
    if str(sample).lower() == "all":
        return list(space)
    try:
        n = int(sample)
    except ValueError:
        raise NasError(f"{{sample}} must be a number or 'all', got {sample!r}", params=("sample",)) from None
    if not 0 < n <= space.size:
        raise NasError(f"{{sample}} {n} is out of range (1..{space.size})", params=("sample",))
    rng = np.random.default_rng(seed)
    try:
        return [space.from_index(int(i)) for i in rng.choice(space.size, n, replace=False)]
    except NasError:  # no official index (NB101): distinct random cells
        out: dict[str, Any] = {}
        while len(out) < n:
            arch = space.sample(rng)
            out.setdefault(space.key(arch), arch)
        return list(out.values())


_WORKER: dict[str, Any] = {}


def in_processes(
    fn, tasks: Sequence[Any], workers: int, initializer, initargs: tuple, deadline: float | None = None, on_done=None
) -> None:
    """Run ``fn`` on every task in ``workers`` spawned processes (each set up once by
    ``initializer(*initargs)``), calling ``on_done()`` as each finishes. Past ``deadline`` the
    tasks not yet started are dropped and the running ones finish. A process that dies (killed
    for memory, say) raises a one-line :class:`NasError` instead of waiting for it forever."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # no fork of a process whose torch threads are running
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs) as pool:
        futures = [pool.submit(fn, task) for task in tasks]
        try:
            for future in as_completed(futures):
                future.result()
                if on_done:
                    on_done()
                if deadline is not None and time.monotonic() > deadline:
                    break
        except BrokenProcessPool:
            raise NasError(
                f"a scoring process died (killed by the system: out of memory?); the scores finished "
                f"so far are stored, rerun (with fewer --workers than {workers}) to go on"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(
    space_name: str,
    proxy_specs: list,
    inputs: InputSpec,
    seed: int,
    num_classes: int,
    store_url: str,
    threads: int,
    device: str = "cpu",
) -> None:
    from nas.proxies import get_proxy
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    torch.set_num_threads(threads)
    space = get_space(space_name)
    scorer = Scorer(space, [get_proxy(n, **p) for n, p in proxy_specs], inputs, seed, num_classes, device)
    _WORKER.update(scorer=scorer, store=ScoreStore(store_url))


def _worker_score(task: tuple[str, list[int]]) -> tuple[str, dict[str, ProxyResult]]:
    text, which = task
    return text, _score_and_store(_WORKER["scorer"], _WORKER["store"], text, which)


def _score_and_store(scorer: Scorer, store, text: str, which: list[int]) -> dict[str, ProxyResult]:
    space = scorer.space
    arch = space.resolve(text)
    proxies = [scorer.proxies[i] for i in which]
    results = scorer.score(arch, proxies)
    machine = machine_info()  # what computed these scores (this process's threads included)
    for proxy in proxies:
        label = proxy_label(proxy)
        store.put(
            space.name, space.key(arch), scorer.digest(proxy), label, results[label], scorer.protocol(proxy), machine
        )
    return results


def score_many(
    scorer: Scorer,
    archs: Sequence[Any],
    store,
    workers: int = 1,
    progress: bool = False,
    threads: int | None = 1,
    deadline: float | None = None,
    cluster: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Score every (architecture, proxy) pair the store lacks, in ``workers`` processes, and
    return all scores keyed by proxy label then arch key (stored ones included).

    ``cluster``: ``"local"`` (a Dask cluster of ``workers`` processes) or a Dask scheduler's
    address (``tcp://HOST:8786``) scores on that cluster instead (:mod:`nas.cluster`).

    ``deadline`` (a ``time.monotonic()`` value) stops scoring once passed: what is stored by
    then is returned, and a later call with the same store goes on from there.

    ``threads`` is torch's intra-op thread count per process while scoring (None: leave it).
    One is the default: these networks are small, and on a 2-core machine with any other load,
    two threads per process were measured 40-50x slower than one (OpenMP threads spin-waiting
    on each other); use ``workers`` for parallelism instead."""
    space = scorer.space
    keys = [space.key(a) for a in archs]
    texts = {space.key(a): space.format(a) for a in archs}
    todo: dict[str, list[int]] = {}
    for i, proxy in enumerate(scorer.proxies):
        for key in store.missing(space.name, keys, scorer.digest(proxy)):
            todo.setdefault(key, []).append(i)
    tasks = [(texts[k], which) for k, which in todo.items()]
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=f"scoring {space.name}", unit="arch")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if cluster and tasks:
            from nas.cluster import score_on_cluster

            setup = (
                space.name,
                [(p.name, p.params) for p in scorer.proxies],
                scorer.inputs,
                scorer.seed,
                scorer.num_classes,
                store.url,
                scorer.device,
            )
            score_on_cluster(
                tasks, setup, cluster, workers=workers, threads=threads or previous_threads, deadline=deadline,
                on_done=bar.update if bar else None,
            )  # fmt: skip
        elif workers <= 1 or len(tasks) <= 1:
            for text, which in tasks:
                if deadline is not None and time.monotonic() > deadline:
                    break
                _score_and_store(scorer, store, text, which)
                if bar:
                    bar.update()
        else:
            specs = [(p.name, p.params) for p in scorer.proxies]
            initargs = (
                space.name,
                specs,
                scorer.inputs,
                scorer.seed,
                scorer.num_classes,
                store.url,
                threads or previous_threads,
                scorer.device,
            )
            in_processes(_worker_score, tasks, workers, _worker_init, initargs, deadline, bar.update if bar else None)
    finally:
        torch.set_num_threads(previous_threads)
        if bar:
            bar.close()
    out: dict[str, dict[str, Any]] = {}
    for proxy in scorer.proxies:
        stored = store.get_many(space.name, scorer.digest(proxy), keys)
        out[proxy_label(proxy)] = {k: stored[k] for k in keys if k in stored}
    for proxy in scorer.requested:
        if proxy.population:
            out[proxy_label(proxy)] = population_scores(proxy, keys, out)
    return out


def population_scores(
    ensemble: Proxy, keys: Sequence[str], scores: dict[str, dict[str, ProxyResult]]
) -> dict[str, ProxyResult]:
    """An ensemble's scores of the architectures ``keys``, ranked within them, from its
    components' results (``scores[label][key]``). Architectures some component has not scored
    yet (a run stopped early) get no ensemble score."""
    import math

    from nas.proxies.ensemble import log_rank_aggregate

    parts = ensemble.components  # type: ignore[attr-defined]  # a population proxy has them
    labels = [proxy_label(p) for p in parts]
    keys = [k for k in keys if all(k in scores[label] for label in labels)]
    results = [[scores[label][k] for k in keys] for label in labels]
    columns = [[r.score if r.status == "ok" else math.nan for r in column] for column in results]
    values = log_rank_aggregate(columns, [p.higher_is_better for p in parts])
    out = {}
    for j, key in enumerate(keys):
        failed = [label for label, column in zip(labels, results) if column[j].status != "ok"]
        seconds = sum(column[j].seconds for column in results)
        if len(failed) == len(labels):
            out[key] = ProxyResult(math.nan, seconds, "failed", "every component failed")
        else:
            reason = f"ranked last for failed {', '.join(failed)}" if failed else ""
            out[key] = ProxyResult(float(values[j]), seconds, "ok", reason)
    return out


# -- what nas.score returns --------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreColumn:
    """One proxy's scores with what they mean: its direction and the protocol they were computed
    under (``digest`` is the store's key; empty for an ensemble, which is ranked, not stored)."""

    label: str
    proxy: Proxy
    higher_is_better: bool
    protocol: dict[str, Any]
    digest: str
    scores: dict[str, Score]


class ScoreTable(Mapping[str, Mapping[str, Score]]):
    """Scores of architectures of one space by several proxies: ``table[label][arch key]`` is a
    :class:`~nas.records.Score`. Columns keep their order; ``keys`` the architectures' order.

    >>> import nas
    >>> scores = nas.score("nats-tss", "params,flops", archs=[0, 9930])
    >>> scores["params"][scores.arch_keys[1]].score
    1288506.0
    >>> scores.labels, scores.higher_is_better("flops")
    (['params', 'flops'], True)
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: Sequence[Any],
        columns: Sequence[ScoreColumn],
        inputs: InputSpec,
        seed: int,
        wall_time_s: float = 0.0,
    ) -> None:
        self.space = space
        self.archs = list(archs)
        self.arch_keys = [space.key(a) for a in self.archs]
        self.columns = {c.label: c for c in columns}
        self.inputs = inputs
        self.seed = seed
        self.wall_time_s = wall_time_s

    def __getitem__(self, label: str) -> Mapping[str, Score]:
        return self.columns[label].scores

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def labels(self) -> list[str]:
        return list(self.columns)

    def higher_is_better(self, label: str) -> bool:
        return self.columns[label].higher_is_better

    def values_of(self, label: str) -> list[float]:
        """One proxy's scores in the order of :attr:`arch_keys`, NaN where failed or missing."""
        nan = float("nan")
        column = self.columns[label].scores
        return [column[k].score if k in column and column[k].ok else nan for k in self.arch_keys]

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per (architecture, proxy): space, index, arch, proxy, score, seconds,
        status, reason (what ``nas score --out`` writes)."""
        out = []
        for arch, key in zip(self.archs, self.arch_keys):
            try:
                index: Any = self.space.index_of(arch)
            except NasError:
                index = ""
            for label, column in self.columns.items():
                r = column.scores.get(key)
                out.append(
                    {
                        "space": self.space.name,
                        "index": index,
                        "arch": key,
                        "proxy": label,
                        "score": None if r is None else r.score,
                        "seconds": None if r is None else round(r.seconds, 6),
                        "status": "missing" if r is None else r.status,
                        "reason": "" if r is None else r.reason,
                    }
                )
        return out

    def __repr__(self) -> str:
        return f"ScoreTable({self.space.name}, {len(self.arch_keys)} archs, {', '.join(self.labels)})"


def score_table(
    scorer: Scorer, archs: Sequence[Any], results: Mapping[str, Mapping[str, Any]], wall_time_s: float = 0.0
) -> ScoreTable:
    """The requested proxies' columns of :func:`score_many`'s results, with directions and protocols."""
    columns = []
    for proxy, label in zip(scorer.requested, scorer.labels):
        digest = "" if proxy.population else scorer.digest(proxy)
        columns.append(
            ScoreColumn(
                label, proxy, bool(proxy.higher_is_better), scorer.protocol(proxy), digest, dict(results[label])
            )
        )
    return ScoreTable(scorer.space, archs, columns, scorer.inputs, scorer.seed, wall_time_s)
