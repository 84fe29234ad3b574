"""The Python API: score, correlate and search in a few lines, as the CLI does.

>>> import nas
>>> scores = nas.score("nats-tss", ["params", "synflow"], archs=[0, 9930, 13714])
>>> [round(v) for v in scores.values_of("params")]
[129306, 1288506, 1073466]

``nas.score`` reads and fills the same score store as ``nas score`` (``$NAS_HOME/scores.db``
unless ``store=`` names another), so a rerun scores only what is missing. ``nas.correlate``
joins the scores with a benchmark table, and ``nas.search`` runs an Optuna study guided by a
proxy; its :class:`~nas.search_report.SearchRun` reports the chosen architectures' accuracies
afterwards. Dataset, split and epochs of accuracies are always named: there are no defaults.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nas.errors import NasError

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from nas.benchmarks import BenchmarkTable
    from nas.correlation import Correlation
    from nas.data import InputSpec
    from nas.proxies import Proxy
    from nas.scoring import ScoreTable
    from nas.search_report import SearchRun
    from nas.searchspaces import SearchSpace


def _space(space: str | SearchSpace) -> SearchSpace:
    from nas.searchspaces import get_space

    return get_space(space) if isinstance(space, str) else space


def _proxies(proxies: str | Proxy | Sequence[str | Proxy]) -> list[Proxy]:
    """A spec string (``"near,synflow(...)"``), one proxy, or a list of either."""
    from nas.proxies import Proxy, get_proxy, parse_proxy_spec

    items: Sequence[str | Proxy] = [proxies] if isinstance(proxies, (str, Proxy)) else proxies
    out: list[Proxy] = []
    for item in items:
        if isinstance(item, Proxy):
            out.append(item)
        else:
            out += [get_proxy(name, **params) for name, params in parse_proxy_spec(item)]
    if not out:
        raise NasError("proxies: none given")
    return out


def _inputs(data: str | InputSpec, input_dataset: str | None, batch_size: int, seed: int) -> InputSpec:
    from nas.data import InputSpec, parse_data_arg

    if isinstance(data, InputSpec):
        return data
    return parse_data_arg(data, dataset=input_dataset or "cifar10", batch_size=batch_size, seed=seed)


def score(
    space: str | SearchSpace,
    proxies: str | Proxy | Sequence[str | Proxy],
    *,
    archs: Sequence[Any] | None = None,
    sample: int | str | None = None,
    seed: int = 0,
    data: str | InputSpec = "gaussian",
    input_dataset: str | None = None,
    batch_size: int = 64,
    workers: int = 1,
    threads: int | None = 1,
    store: str | None = None,
    device: str | None = None,
    progress: bool = False,
    cluster: str | None = None,
) -> ScoreTable:
    """Score architectures of ``space`` with ``proxies`` through the score store.

    Parameters
    ----------
    space: a space name (``"nats-tss"``) or a :class:`~nas.searchspaces.SearchSpace`.
    proxies: ``"near,synflow"``, a :class:`~nas.proxies.Proxy`, or a list of either.
    archs: the architectures (anything the space resolves: indices, strings, arch values);
        or ``sample``: N architectures drawn with ``seed``, or ``"all"``.
    seed: seed of the sample, the input batch and the networks' initialisation.
    data: ``"gaussian"``, ``"cifar10:DIR"``, ``"cifar100:DIR"``, ``"npz:FILE"`` or an InputSpec;
        ``input_dataset`` gives the shape and classes of gaussian/npz inputs (default cifar10).
    workers, threads: processes, and torch threads per process (None: torch's default).
    cluster: ``"local"`` (a Dask cluster of ``workers`` processes) or a Dask scheduler address
        (``"tcp://HOST:8786"``) to score on (``pip install 'zcnas[cluster]'``); None: processes.
    store: the score store URL (default ``sqlite:///$NAS_HOME/scores.db``).
    device: where networks run (``"cpu"``, ``"cuda"``, ``"mps"``; None: CUDA when present).

    Returns a :class:`~nas.scoring.ScoreTable`: ``table[label][arch key]`` is a Score.

    >>> import nas
    >>> scores = nas.score("nats-sss", "params", sample=3, seed=0)
    >>> len(scores.arch_keys), scores.labels, all(s.ok for s in scores["params"].values())
    (3, ['params'], True)
    """
    from nas.devices import resolve_device
    from nas.scoring import Scorer, score_many, score_table, select_archs
    from nas.store import ScoreStore

    space = _space(space)
    chosen = select_archs(space, sample, seed) if archs is None else [space.resolve(a) for a in archs]
    scorer = Scorer(
        space,
        _proxies(proxies),
        _inputs(data, input_dataset, batch_size, seed),
        seed=seed,
        device=resolve_device(device),
    )
    _ = scorer.batch  # read the inputs now: bad data fails before any work starts
    start = time.perf_counter()
    from nas.cluster import parse_cluster

    results = score_many(
        scorer,
        chosen,
        ScoreStore(store),
        workers=workers,
        progress=progress,
        threads=threads,
        cluster=parse_cluster(cluster),
    )
    return score_table(scorer, chosen, results, time.perf_counter() - start)


def correlate(
    scores: ScoreTable,
    table: BenchmarkTable | str | None = None,
    *,
    dataset: str | Sequence[str],
    split: str,
    epochs: int,
    failed: str = "drop",
    bootstrap: int = 1000,
    seed: int = 0,
    ndcg_top: int = 100,
) -> Correlation:
    """How well each proxy of ``scores`` ranks the architectures against recorded accuracies.

    ``table`` is a BenchmarkTable, a path, or None for the space's imported table. ``dataset``
    (one name or several), ``split`` and ``epochs`` are required. ``failed`` is ``"drop"`` or
    ``"worst"``; ``bootstrap`` resamples give tau's confidence interval (0: none).
    Returns a :class:`~nas.correlation.Correlation`: ``.records`` has one dict per (proxy, dataset)
    with ``kendall_tau``, ``kendall_tau_ci``, ``spearman``, ``topk_precision`` and ``ndcg``.

    >>> import nas
    >>> scores = nas.score("nats-tss", "params", archs=range(0, 15625, 125))
    >>> corr = nas.correlate(scores, dataset="cifar10", split="valid", epochs=200, bootstrap=0)
    >>> record = corr.records[0]                 # the embedded table: NB201 validation accuracies
    >>> record["proxy"], record["n"], round(record["kendall_tau"], 2)
    ('params', 125, 0.58)
    """
    from nas.benchmarks import open_table
    from nas.correlation import correlate as _correlate

    space = scores.space
    table = open_table(table or space.name) if not hasattr(table, "accuracies") else table
    datasets = [dataset] if isinstance(dataset, str) else list(dataset)
    extra = {
        "inputs": scores.inputs.protocol(),
        "network_seed": scores.seed,
        "proxy_protocols": {label: c.protocol for label, c in scores.columns.items()},
    }
    return _correlate(
        space,
        scores,
        table,
        datasets=datasets,
        split=split,
        epochs=epochs,
        failed=failed,
        resamples=bootstrap,
        seed=seed,
        ndcg_top=ndcg_top,
        protocol=extra,
    )


def search(
    space: str | SearchSpace,
    proxy: str | Proxy | None = None,
    *,
    objectives: str | None = None,
    sampler: str | BaseSampler = "tpe",
    sampler_options: dict[str, Any] | None = None,
    trials: int = 100,
    seed: int = 0,
    data: str | InputSpec = "gaussian",
    input_dataset: str | None = None,
    batch_size: int = 64,
    score_seed: int = 0,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    store: str | None = None,
    device: str | None = None,
    progress: bool = False,
) -> SearchRun:
    """Search ``space`` with an Optuna sampler guided by ``proxy`` (or several ``objectives``,
    e.g. ``"near,params"``); ``trials`` counts unique evaluations. Rerunning with the same
    settings continues the same stored study.

    ``sampler`` is a name (``"tpe"``, ``"evolution"``, any of ``optuna.samplers`` by class name
    such as ``"qmc"``, or a plugin's) with ``sampler_options``, or an Optuna sampler object (its
    class names the study; each extra worker reseeds its copy). ``seed`` seeds the sampler;
    ``score_seed`` the input batch and the networks, as ``nas.score``'s ``seed``.

    >>> import nas
    >>> run = nas.search("nats-tss", "params", sampler="random", trials=5, seed=1)
    >>> len(run.evaluations)
    5
    """
    from nas.devices import resolve_device
    from nas.search_report import SearchRun
    from nas.strategies import RunOptions, SearchConfig, parse_objectives, run_search

    space = _space(space)
    if isinstance(proxy, str) or proxy is None:
        spec = proxy
    else:
        spec = proxy.label()
    inputs = _inputs(data, input_dataset, batch_size, score_seed)
    config = SearchConfig(
        space.name,
        tuple(parse_objectives(objectives, spec)),
        sampler=sampler,
        sampler_options=tuple((sampler_options or {}).items()),
        seed=seed,
        inputs=inputs,
        score_seed=score_seed,
        device=resolve_device(device),
    )
    options = RunOptions(trials=trials, storage=storage, study=study, workers=workers, store=store)
    return SearchRun.of(run_search(config, options, progress=progress), config, space)
