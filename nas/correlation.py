"""How well proxy scores rank architectures: the computation behind ``nas correlate``.

Scores (per proxy label, per architecture key: the output of :func:`nas.scoring.score_many`)
meet recorded accuracies (a :class:`~nas.benchmarks.BenchmarkTable`) here, never earlier: the
proxies and the search never see an accuracy.

For every (proxy, dataset) we report what papers report, on one explicit protocol:

- Kendall's tau-b (scipy's ``kendalltau``, the figure papers quote) and Spearman's rho;
- top-k precision: the share of the proxy's top k that are among the true top k, for
  k = 1 %, 5 %, 10 % of the architectures, in expectation over random tie-breaking
  (:func:`nas.stats.topk_precision_ties`: ``params`` takes 59 distinct values on NATS-TSS, so a
  stable sort would let the listing order decide);
- nDCG of the top ``ndcg_top`` ranks (gains ``2**acc - 1``, accuracies as fractions);
- a percentile bootstrap confidence interval of tau (resampling architectures).

Direction: a proxy whose class says ``higher_is_better = False`` is negated before ranking, so
every statistic reads "higher = agrees better". Labels that are not registered proxies (the
population-level ``ensemble(...)`` scores) are higher-is-better.

Failed scores (NaN, infinite, an exception, or no stored score at all) are never silently
dropped: the ``drop`` policy leaves them out and counts them (``n_failed``), ``worst`` ranks them
below every finite score. Architectures the table records no accuracy for are always left out
and counted (``n_no_accuracy``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas import stats
from nas.errors import NasError

#: Top-k fractions of the standard report (the curves in reports span 0.5 % .. 50 %).
FRACTIONS = (0.01, 0.05, 0.10)
FAILED_POLICIES = ("drop", "worst")
#: Readings of "unique cell" (see ``NatsTSS.unique_key``); ``pruned`` gives the 9,445 cells
#: papers cite (VKDNW), ``isomorphic`` NAS-Bench-201's own 6,466.
UNIQUE_READINGS = ("pruned", "isomorphic")
DEFAULT_UNIQUE = "pruned"
#: Bootstrap resamples of tau. scipy's kendalltau is O(n log n): one resample of 15,625
#: architectures takes ~3 ms (measured on the 2-core development machine), so 1,000 resamples
#: cost ~3 s per (proxy, dataset) on the whole space and well under a second on 1,000 cells.
DEFAULT_RESAMPLES = 1000
DEFAULT_NDCG_TOP = 100


# -- which architectures -------------------------------------------------------------------------
def proxy_direction(label: str) -> bool:
    """``higher_is_better`` of the proxy a label names (``near(repetitions=8)`` -> near's).
    Labels that are no registered proxy, such as ``ensemble(near,zico)``, are higher-is-better."""
    from nas.proxies import list_proxies, proxy_class

    name = label.split("(", 1)[0].strip()
    if name in list_proxies():
        return bool(proxy_class(name).higher_is_better)
    return True


def unique_representatives(space, reading: str = DEFAULT_UNIQUE) -> list[Any]:
    """One cell per class of functionally equal cells: the one with the lowest official index."""
    _check_unique(space, reading)
    seen: dict[str, Any] = {}
    for arch in space:
        seen.setdefault(space.unique_key(arch, reading), arch)
    return list(seen.values())


def _check_unique(space, reading: str) -> None:
    if not hasattr(space, "unique_key"):
        raise NasError(
            f"{{unique}}: the {space.name} space has no notion of functionally equal cells "
            f"(every architecture is already distinct); drop {{unique}}",
            params=("unique",),
        )
    if reading not in UNIQUE_READINGS:
        raise NasError(
            f"{{unique}}: unknown reading {reading!r}; expected one of {', '.join(UNIQUE_READINGS)}", params=("unique",)
        )


def select_population(
    space, sample: str | int | None, seed: int, archs: Sequence[str] | None = None, unique: str | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """The architectures to correlate over, and how they were chosen (for the protocol).

    Without ``unique`` this is :func:`nas.scoring.select_archs`. With a reading of ``unique``,
    ``sample="all"`` is one representative (lowest official index) per class, ``sample=N`` draws N
    of those representatives with ``numpy.random.default_rng(seed)``, and explicit ``archs`` keep
    the first of each class in the order given."""
    from nas.scoring import select_archs

    info: dict[str, Any] = {"seed": seed, "unique": unique}
    if archs:
        info["selection"] = "explicit"
    elif sample is not None and str(sample).lower() == "all":
        info["selection"] = "all"
    else:
        info["selection"] = "sample"
        info["sample"] = sample
    if unique is None:
        chosen = select_archs(space, sample, seed, archs)
    else:
        _check_unique(space, unique)
        info["representative"] = "first given of each class" if archs else "lowest official index of each class"
        if archs:
            firsts: dict[str, Any] = {}
            for arch in select_archs(space, None, seed, archs):
                firsts.setdefault(space.unique_key(arch, unique), arch)
            chosen = list(firsts.values())
        else:
            reps = unique_representatives(space, unique)
            info["classes"] = len(reps)
            if info["selection"] == "all":
                chosen = reps
            else:
                if sample is None:
                    raise NasError(
                        "say which architectures: {sample} N, {sample} all, or {archs}", params=("sample", "archs")
                    )
                try:
                    n = int(sample)
                except ValueError:
                    raise NasError(
                        f"{{sample}} must be a number or 'all', got {sample!r}", params=("sample",)
                    ) from None
                if not 0 < n <= len(reps):
                    raise NasError(
                        f"{{sample}} {n} is out of range (1..{len(reps)} unique "
                        f"{space.name} cells, reading {unique!r})",
                        params=("sample",),
                    )
                rng = np.random.default_rng(seed)
                chosen = [reps[int(i)] for i in rng.choice(len(reps), n, replace=False)]
    info["n"] = len(chosen)
    return chosen, info


# -- the accuracies ------------------------------------------------------------------------------
def check_combinations(table, datasets: Sequence[str] | None, split: str | None, epochs: int | str | None) -> list[str]:
    """Canonical dataset names after checking the table has every (dataset, split, epochs):
    nothing is defaulted, and a missing value or combination is an error that lists the table's."""
    from nas.benchmarks.table import canonical_dataset

    have = ", ".join(f"{d}/{s}/{e}" for d, s, e in table.combinations()) or "nothing"
    for option, value in (("dataset", datasets), ("split", split), ("epochs", epochs)):
        if value is None or (not isinstance(value, (str, int)) and not list(value)):
            raise NasError(
                f"{{{option}}} is required (no defaults); the {table.space_name} table has "
                f"dataset/split/epochs: {have}",
                params=(option,),
            )
    out: list[str] = []
    try:
        epochs = int(epochs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NasError(f"{{epochs}} must be an integer, got {epochs!r}", params=("epochs",)) from None
    for name in datasets:  # type: ignore[union-attr]
        canonical = canonical_dataset(name)
        if canonical not in out:
            out.append(canonical)
    for name in out:
        table.column(dataset=name, split=split, epochs=epochs)  # raises with what the table has
    return out


def _accuracies(table, keys: Sequence[str], dataset: str, split: str, epochs: int) -> np.ndarray:
    column = table.column(dataset=dataset, split=split, epochs=epochs)
    return np.array([column[table.row_of(k)] if k in table else np.nan for k in keys], dtype=np.float64)


def _value(result: Any) -> float:
    """A score as a float, NaN where it failed or is missing."""
    if result is None:
        return math.nan
    if getattr(result, "status", "ok") != "ok":
        return math.nan
    value = float(getattr(result, "score", result))
    return value if math.isfinite(value) else math.nan


# -- the computation -------------------------------------------------------------------------------
@dataclass
class Correlation:
    """Result records (one per proxy and dataset), the protocol, and the aligned arrays the
    report plots from.

    >>> import nas
    >>> corr = nas.correlate(nas.score("nats-tss", "flops", archs=range(0, 15625, 250)),
    ...                      dataset="cifar10", split="valid", epochs=200, bootstrap=0)
    >>> sorted(corr.record("flops", "cifar10"))[:5]
    ['dataset', 'epochs', 'failed_policy', 'higher_is_better', 'kendall_tau']
    >>> corr.protocol["accuracy"]["split"], corr.protocol["n_archs"]
    ('valid', 63)
    """

    keys: list[str]
    labels: list[str]
    datasets: list[str]
    split: str
    epochs: int
    scores: dict[str, np.ndarray]  # raw scores per label, NaN where failed
    higher_is_better: dict[str, bool]
    accuracies: dict[str, np.ndarray]  # per dataset, NaN where not recorded
    records: list[dict[str, Any]]
    protocol: dict[str, Any]
    failures: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # label -> first (key, reason)

    def oriented(self, label: str) -> np.ndarray:
        """Scores of a label with higher = predicted better."""
        values = self.scores[label]
        return values if self.higher_is_better[label] else -values

    def record(self, label: str, dataset: str) -> dict[str, Any]:
        return next(r for r in self.records if r["proxy"] == label and r["dataset"] == dataset)

    def to_json(self) -> dict[str, Any]:
        return _plain(
            {
                "protocol": self.protocol,
                "results": self.records,
                "failed_examples": {label: [list(f) for f in self.failures.get(label, [])] for label in self.labels},
            }
        )


def correlate(
    space,
    scores: Mapping[str, Mapping[str, Any]],
    table,
    *,
    datasets: Sequence[str],
    split: str,
    epochs: int,
    keys: Iterable[Any] | None = None,
    failed: str = "drop",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    fractions: Sequence[float] = FRACTIONS,
    ndcg_top: int = DEFAULT_NDCG_TOP,
    directions: Mapping[str, bool] | None = None,
    protocol: Mapping[str, Any] | None = None,
) -> Correlation:
    """Correlate every label of ``scores`` (a :class:`~nas.scoring.ScoreTable`, or {label: {arch
    key: result}} with results that have ``score`` and ``status`` or plain floats) with the
    table's accuracies on each dataset.

    ``keys`` is the population (arch keys or architectures; default: every key scored by any
    label, in order). ``directions`` overrides ``higher_is_better`` per label. ``protocol`` is
    merged into the returned protocol (the CLI adds the selection, inputs and proxy protocols).
    """
    if failed not in FAILED_POLICIES:
        raise NasError(f"unknown failed-score policy {failed!r}; expected one of {', '.join(FAILED_POLICIES)}")
    if resamples < 0:
        raise NasError(f"bootstrap resamples must be >= 0, got {resamples}")
    if table.space_name != space.name:
        raise NasError(f"the benchmark table {str(table.path)!r} is a {table.space_name} table, not {space.name}")
    datasets = check_combinations(table, datasets, split, epochs)
    from nas.benchmarks.table import canonical_split

    split, epochs = canonical_split(split), int(epochs)
    labels = list(scores)
    columns = getattr(scores, "columns", None)  # a ScoreTable knows its directions and order
    if columns is not None:
        directions = {**{label: column.higher_is_better for label, column in columns.items()}, **(directions or {})}
        if keys is None:
            keys = list(scores.arch_keys)  # type: ignore[attr-defined]
    if not labels:
        raise NasError("no proxy scores to correlate")
    if keys is None:
        ordered: dict[str, None] = {}
        for label in labels:
            ordered.update(dict.fromkeys(scores[label]))
        keys = list(ordered)
    else:
        keys = [k if isinstance(k, str) else space.key(k) for k in keys]
    if not keys:
        raise NasError("no architectures to correlate")
    hib = {
        label: (directions[label] if directions and label in directions else proxy_direction(label)) for label in labels
    }
    raw: dict[str, np.ndarray] = {}
    failures: dict[str, list[tuple[str, str]]] = {}
    for label in labels:
        results = scores[label]
        raw[label] = np.array([_value(results.get(k)) for k in keys], dtype=np.float64)
        reasons = []
        for k in keys:
            r = results.get(k)
            if r is None:
                reasons.append((k, "no score"))
            elif math.isnan(_value(r)):
                reasons.append((k, getattr(r, "reason", "") or "non-finite score"))
            if len(reasons) >= 5:
                break
        failures[label] = reasons
    accuracies = {d: _accuracies(table, keys, d, split, epochs) for d in datasets}

    started = time.perf_counter()
    records = []
    for label in labels:
        oriented = raw[label] if hib[label] else -raw[label]
        for dataset in datasets:
            clean = stats.drop_failed(oriented, accuracies[dataset], failed)
            records.append(
                _record(
                    label,
                    dataset,
                    split,
                    epochs,
                    clean,
                    failed,
                    hib[label],
                    resamples,
                    seed,
                    level,
                    fractions,
                    ndcg_top,
                )
            )
    seconds = time.perf_counter() - started

    n_seeds = {}
    for d in datasets:
        column = table.column(dataset=d, split=split, epochs=epochs, stat="n_seeds")
        used = np.array([column[table.row_of(k)] for k in keys if k in table])
        used = used[used > 0]
        n_seeds[d] = {"min": int(used.min()), "max": int(used.max())} if used.size else None
    out_protocol: dict[str, Any] = {
        "space": space.name,
        "n_archs": len(keys),
        "proxies": [{"label": label, "higher_is_better": hib[label]} for label in labels],
        "accuracy": {
            "table": str(table.path),
            "table_source": table.attrs.get("source"),
            "datasets": datasets,
            "split": split,
            "epochs": epochs,
            "sources": {d: table.source(d, split, epochs) for d in datasets},
            "value": "mean over the recorded training seeds",
            "n_seeds": n_seeds,
        },
        "failed_policy": failed,
        "statistics": {
            "kendall_tau": "tau-b (scipy.stats.kendalltau)",
            "spearman": "scipy.stats.spearmanr",
            "topk_precision": {
                "fractions": [float(f) for f in fractions],
                "k": "ceil(fraction * n)",
                "ties": "expected value over random tie-breaking",
            },
            "ndcg": {"top": ndcg_top, "gain": "2**(accuracy/100) - 1", "ties": "broken by listing order"},
            "bootstrap": {
                "resamples": resamples,
                "level": level,
                "seed": seed,
                "method": "percentile bootstrap over architectures drawn with replacement",
            },
        },
        "stats_seconds": round(seconds, 3),
    }
    from nas import __version__

    out_protocol["zcnas_version"] = __version__
    out_protocol["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if protocol:
        extra = dict(protocol)
        for entry in out_protocol["proxies"]:  # merge per-label protocols given by the caller
            given = extra.get("proxy_protocols", {}).get(entry["label"])
            if given is not None:
                entry["protocol"] = given
        extra.pop("proxy_protocols", None)
        out_protocol = {**out_protocol, **extra}
    return Correlation(
        keys=list(keys),
        labels=labels,
        datasets=datasets,
        split=split,
        epochs=epochs,
        scores=raw,
        higher_is_better=hib,
        accuracies=accuracies,
        records=records,
        protocol=out_protocol,
        failures=failures,
    )


def fraction_label(fraction: float) -> str:
    """0.01 -> ``"1%"``, 0.005 -> ``"0.5%"``."""
    return f"{fraction * 100:g}%"


def _record(
    label: str,
    dataset: str,
    split: str,
    epochs: int,
    clean: stats.Cleaned,
    failed: str,
    hib: bool,
    resamples: int,
    seed: int,
    level: float,
    fractions: Sequence[float],
    ndcg_top: int,
) -> dict[str, Any]:
    s, a = clean.scores, clean.accuracies
    n = len(s)
    record: dict[str, Any] = {
        "proxy": label,
        "dataset": dataset,
        "split": split,
        "epochs": epochs,
        "n": n,
        "n_total": clean.n_total,
        "n_failed": clean.n_failed,
        "n_no_accuracy": clean.n_no_accuracy,
        "failed_policy": failed,
        "higher_is_better": hib,
    }
    enough = n >= 3 and np.ptp(s) > 0 and np.ptp(a) > 0
    if not enough:
        record.update(
            kendall_tau=None,
            kendall_tau_ci=None,
            spearman=None,
            topk_precision={fraction_label(f): None for f in fractions},
            ndcg=None,
            ndcg_top=ndcg_top,
        )
        record["note"] = "fewer than 3 usable architectures or a constant column"
        return record
    # tau is rank-based: dense integer ranks give the same value and a faster bootstrap
    rs = _dense_ranks(s)
    ra = _dense_ranks(a)
    record["kendall_tau"] = stats.kendall_tau(rs, ra)
    record["kendall_tau_ci"] = (
        list(stats.bootstrap_tau_ci(rs, ra, resamples=resamples, seed=seed, level=level)) if resamples > 0 else None
    )
    record["spearman"] = stats.spearman(s, a)
    record["topk_precision"] = {fraction_label(f): stats.topk_precision_ties(s, a, f) for f in fractions}
    record["topk_k"] = {fraction_label(f): max(1, math.ceil(f * n)) for f in fractions}
    record["ndcg"] = stats.ndcg(s, a, top=ndcg_top)
    record["ndcg_top"] = min(ndcg_top, n)
    return record


def _dense_ranks(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def _plain(obj: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
