"""The report of a search: the chosen architectures joined with a benchmark table afterwards.

The search itself (``nas.strategies``) never sees an accuracy. Here, after it has run, the chosen
architectures meet recorded accuracies (valid and test, for a dataset and a training schedule
that are always named), the regret to the space's optimum, and a plot of the accuracy of the
best-so-far architecture against unique evaluations. :func:`nas.search` returns a
:class:`SearchRun` with these as methods; ``nas search`` prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.strategies.ledger import Evaluation  # noqa: F401  (the inherited fields name it: pdoc reads them)
from nas.strategies.run import SearchRun as _StrategyRun

SPLITS = ("valid", "test")


# -- the benchmark side (after the search; it never sees it) ------------------------------------------
def open_report_table(space: str, path: str | None):
    """The table at ``path``, else the space's imported table, else None."""
    from nas.benchmarks import BenchmarkTable, default_table_path

    if path:
        table = BenchmarkTable(path)
        if table.space_name != space:
            raise NasError(f"table {path!r} holds {table.space_name}, not {space}")
        return table
    default = default_table_path(space)
    return BenchmarkTable(default) if default.is_file() else None


def report_combo(table, dataset: str, epochs: int | None) -> tuple[str, int, list[str]]:
    """(dataset, epochs, splits) of the reported accuracies (``epochs`` None: the longest the
    table holds); errors list what the table has."""
    from nas.benchmarks.table import canonical_dataset

    dataset = canonical_dataset(dataset)
    have = ", ".join(f"{d}/{s}/{e}" for d, s, e in table.combinations())
    if dataset not in table.datasets():
        raise NasError(
            f"the {table.space_name} table has no {dataset} accuracies; it has {have} (choose the report's dataset)"
        )
    epochs = int(epochs) if epochs is not None else max(table.epochs(dataset))
    splits = [s for s in SPLITS if epochs in table.epochs(dataset, s)]
    if not splits:
        raise NasError(
            f"the {table.space_name} table has no {dataset} valid/test accuracies after "
            f"{epochs} epochs; it has {have} (choose the report's epochs)"
        )
    return dataset, epochs, splits


def _accuracy(table, key: str, combo: tuple[str, int, list[str]]) -> dict[str, Any]:
    dataset, epochs, _ = combo
    out: dict[str, Any] = {"dataset": dataset, "epochs": epochs}
    for split in SPLITS:
        value = None
        if epochs in table.epochs(dataset, split):
            acc = float(table.accuracies([key], dataset=dataset, split=split, epochs=epochs)[0])
            value = None if math.isnan(acc) else round(acc, 4)
        out[split] = value
    return out


def _optimum(table, space, combo) -> dict[str, Any]:
    dataset, epochs, splits = combo
    out = {}
    for split in splits:
        key, acc = table.optimum(dataset=dataset, split=split, epochs=epochs)
        entry: dict[str, Any] = {"arch": key, "accuracy": round(acc, 4)}
        try:
            entry["index"] = space.index_of(space.resolve(key))
        except NasError:
            pass
        out[split] = entry
    return out


# -- the result -----------------------------------------------------------------------------------------
def _chosen(result, top: int | None):
    from nas.strategies import best, pareto_front

    if len(result.directions) > 1:
        front = pareto_front(result.evaluations, result.directions)
        return front[:top] if top else front
    return best(result.evaluations, result.directions, k=top or 1)


def result_json(result, config, space, table, combo, top: int | None) -> dict[str, Any]:
    """The search's result as JSON: the chosen architectures, with recorded accuracies and regret
    when a table is given."""
    chosen = _chosen(result, top)
    best_rows = []
    for e in chosen:
        row: dict[str, Any] = {"arch": e.arch, "index": e.index, "params": e.params, "score": e.values[0]}
        if table is not None:
            row["accuracy"] = _accuracy(table, e.key, combo)
        if len(result.labels) > 1:
            row["objectives"] = dict(zip(result.labels, e.values))
        best_rows.append(row)
    out: dict[str, Any] = {
        "space": space.name,
        "study": result.study,
        "sampler": config.sampler,
        "evaluations": len(result.evaluations),
        "wall_time_s": round(result.wall_time_s, 2),
        "best": best_rows,
        "objectives": [{"name": label, "direction": d} for label, d in zip(result.labels, result.directions)],
        "sampler_options": dict(config.sampler_options),
        "seed": config.seed,
        "trials": result.trials,
        "optuna_trials": result.total_trials,
        "repeats": result.repeats,
        "failed": sum(not e.ok for e in result.evaluations),
        "complete": result.complete,
        "stop_reason": result.stop_reason,
        "storage": result.storage,
    }
    if table is not None:
        dataset, epochs, splits = combo
        optimum = _optimum(table, space, combo)
        regret = {}
        if best_rows:
            for split in splits:
                acc = best_rows[0]["accuracy"][split]
                regret[split] = None if acc is None else round(optimum[split]["accuracy"] - acc, 4)
        out["report"] = {
            "table": str(table.path),
            "dataset": dataset,
            "epochs": epochs,
            "splits": splits,
            "optimum": optimum,
            "regret": regret,
        }
    return out


# -- the plot -------------------------------------------------------------------------------------------
def plot_search(path: str | Path, result, config, space, table, combo) -> None:
    """A PNG: accuracy of the best so far against unique evaluations (and the Pareto front)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.strategies import fronts_so_far, incumbents, pareto_front

    evaluations = sorted(result.evaluations, key=lambda e: e.position)
    multi = len(result.directions) > 1
    fig, axes = plt.subplots(1, 2 if multi else 1, figsize=(11 if multi else 6.5, 4.2), squeeze=False)
    ax = axes[0][0]
    x = list(range(1, len(evaluations) + 1))
    title = f"{space.name}: {config.sampler} guided by {' + '.join(result.labels)}, seed {config.seed}"
    if table is not None:
        dataset, epochs, splits = combo
        split = "test" if "test" in splits else splits[0]

        def acc(e) -> float:
            return float(table.accuracies([e.key], dataset=dataset, split=split, epochs=epochs)[0])

        if multi:
            curve = [
                max((acc(f) for f in front), default=math.nan)
                for front in fronts_so_far(evaluations, result.directions)
            ]
            label = "best on the Pareto front so far"
        else:
            curve = [acc(e) if e is not None else math.nan for e in incumbents(evaluations, result.directions)]
            label = f"best by {result.labels[0]} so far"
        ax.scatter(x, [acc(e) for e in evaluations], s=6, color="0.75", label="evaluated architectures")
        ax.step(x, curve, where="post", color="C0", linewidth=2, label=label)
        _, optimum = table.optimum(dataset=dataset, split=split, epochs=epochs)
        ax.axhline(optimum, color="C3", linestyle="--", linewidth=1, label=f"space optimum {optimum:.2f}")
        ax.set_ylabel(f"recorded {dataset} {split} accuracy, {epochs} epochs (%)")
        finite = [c for c in curve if not math.isnan(c)]
        if finite:
            ax.set_ylim(max(min(finite) - 5, 0), optimum + 1)
    else:
        sign = 1.0 if result.directions[0] == "maximize" else -1.0
        curve, current = [], math.nan
        for e in evaluations:
            if e.ok and (math.isnan(current) or sign * e.values[0] > sign * current):
                current = e.values[0]
            curve.append(current)
        ax.step(x, curve, where="post", color="C0", linewidth=2, label=f"best {result.labels[0]} so far")
        ax.set_ylabel(result.labels[0])
    ax.set_xlabel("unique evaluations")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if multi:
        ax2 = axes[0][1]
        ok = [e for e in evaluations if e.ok]
        front = pareto_front(ok, result.directions)
        ax2.scatter(
            [_objectives(e)[1] for e in ok], [_objectives(e)[0] for e in ok], s=8, color="0.7", label="evaluated"
        )
        points = sorted(front, key=lambda e: _objectives(e)[1])
        if table is not None:
            colours = [acc(e) for e in points]
            floor = max(min(colours), optimum - 10)  # a degenerate cell must not wash out the scale
            sc = ax2.scatter(
                [_objectives(e)[1] for e in points],
                [_objectives(e)[0] for e in points],
                s=30,
                c=colours,
                vmin=floor,
                vmax=optimum,
                cmap="viridis",
                zorder=3,
                label="Pareto front",
            )
            fig.colorbar(sc, ax=ax2, label=f"{dataset} {split} accuracy (%)")
        else:
            ax2.scatter(
                [_objectives(e)[1] for e in points],
                [_objectives(e)[0] for e in points],
                s=30,
                color="C3",
                zorder=3,
                label="Pareto front",
            )
        ax2.plot([_objectives(e)[1] for e in points], [_objectives(e)[0] for e in points], color="C3", linewidth=1)
        ax2.set_xlabel(f"{result.labels[1]} ({result.directions[1][:3]})")
        ax2.set_ylabel(f"{result.labels[0]} ({result.directions[0][:3]})")
        ax2.set_title("Pareto front", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _objectives(evaluation: Any) -> tuple[float, ...]:
    """The objective values of an evaluation that did not fail (those are the ones plotted)."""
    assert evaluation.values is not None, "a failed evaluation has no objective values"
    return tuple(evaluation.values)


# -- the Python API's run ------------------------------------------------------------------------------
@dataclass
class SearchRun(_StrategyRun):
    """A finished (or stopped) search with its configuration, as :func:`nas.search` returns it.

    ``report`` and ``plot`` join the chosen architectures with a benchmark table afterwards
    (the search never saw it); dataset and epochs are always named.

    >>> import nas
    >>> run = nas.search("nats-tss", "params", sampler="random", trials=4, seed=2)
    >>> report = run.report(dataset="cifar10", epochs=200)   # the embedded table: valid, 200 epochs
    >>> report["report"]["splits"], len(report["best"]), report["best"][0]["score"] > 0
    (['valid'], 1, True)
    """

    config: Any = None
    space: Any = None

    @classmethod
    def of(cls, run: _StrategyRun, config: Any, space: Any) -> SearchRun:
        return cls(**{**run.__dict__, "config": config, "space": space})

    def _combo(self, table: Any, dataset: str | None, epochs: int | None):
        from nas.benchmarks import open_table

        table = open_table(self.space.name) if table is None else table
        if isinstance(table, (str, Path)):
            table = open_table(table)
        if dataset is None or epochs is None:
            have = ", ".join(f"{d}/{s}/{e}" for d, s, e in table.combinations())
            raise NasError(f"name the report's dataset and epochs (no defaults); the table has {have}")
        return table, report_combo(table, dataset, epochs)

    def report(
        self, table: Any = None, *, dataset: str | None = None, epochs: int | None = None, top: int | None = None
    ) -> dict[str, Any]:
        """The chosen architectures (``top``, default 1; the Pareto front for several objectives)
        with their recorded accuracies on ``dataset`` after ``epochs``, the space's optimum and
        the regret (``table``: a BenchmarkTable, a path, or None for the imported one)."""
        table, combo = self._combo(table, dataset, epochs)
        return result_json(self, self.config, self.space, table, combo, top)

    def plot(
        self, path: str | Path, table: Any = None, *, dataset: str | None = None, epochs: int | None = None
    ) -> Path:
        """Write the best-so-far curve (and the Pareto front) as a PNG at ``path``."""
        table, combo = self._combo(table, dataset, epochs)
        plot_search(path, self, self.config, self.space, table, combo)
        return Path(path)
