"""Merging two imports of one space into one table (``nas bench import ... --merge``).

The rule, the same for every space and format: **the newer import wins**. Rows are the union of
both tables' architectures (the existing table's order, then the new rows); every (dataset,
split, epochs) column and every cost the new source holds replaces the existing one on the rows
the new source records (a NaN of the new source never erases a recorded value); columns only the
existing table has are kept. So a user who imports the shared CSV tables first and the official
files after (``--merge``) ends with the official values wherever both record one, and the CSV's
rows and budgets where the official files are silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nas.benchmarks.table import STATS, TableData
from nas.errors import BenchmarkError


@dataclass
class MergeReport:
    """What a merge did: rows added, columns added or updated, recorded values that changed."""

    rows_added: int = 0
    columns_added: list[str] = field(default_factory=list)
    columns_updated: list[str] = field(default_factory=list)
    values_changed: int = 0
    largest_change: float = 0.0

    def line(self) -> str:
        parts = [f"{self.rows_added:,} rows added"]
        if self.columns_added:
            parts.append("new " + ", ".join(self.columns_added))
        if self.columns_updated:
            parts.append("updated " + ", ".join(self.columns_updated))
        if self.values_changed:
            parts.append(
                f"{self.values_changed:,} recorded values replaced by the new source's "
                f"(largest change {self.largest_change:.3g})"
            )
        return "merged (the new import wins where both record a value): " + "; ".join(parts)


def _grow(values: np.ndarray, rows: int, fill) -> np.ndarray:
    """``values`` with rows appended up to ``rows``, filled with ``fill``."""
    extra = np.full((rows - len(values), *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, extra])


def merge_tables(old: TableData, new: TableData) -> tuple[TableData, MergeReport]:
    """``new`` merged into ``old`` by the module's rule; ``old`` is left unchanged."""
    if old.space != new.space:
        raise BenchmarkError(f"cannot merge a {new.space} table into a {old.space} table")
    report = MergeReport()
    row = {key: i for i, key in enumerate(old.keys)}
    added = [key for key in new.keys if key not in row]
    keys = [*old.keys, *added]
    row.update({key: len(old.keys) + i for i, key in enumerate(added)})
    report.rows_added = len(added)
    n = len(keys)
    at = np.array([row[key] for key in new.keys], dtype=np.int64)  # new source's rows in the merge
    new_index = dict(zip(new.keys, np.asarray(new.indices)))
    indices = np.concatenate([np.asarray(old.indices), np.array([new_index[k] for k in added], dtype=np.int64)])
    out = TableData(space=old.space, keys=keys, indices=indices, provenance=dict(old.provenance))
    out.provenance.update({f"merged_{k}": v for k, v in new.provenance.items()})

    for combo in sorted(set(old.metrics) | set(new.metrics)):
        name = "/".join(map(str, combo))
        if combo in old.metrics:
            cols = {s: _grow(old.metrics[combo][s], n, np.nan if s != "n_seeds" else 0) for s in STATS}
        else:
            cols = {"mean": np.full(n, np.nan), "std": np.full(n, np.nan), "n_seeds": np.zeros(n, dtype=np.int64)}
        source = old.metric_sources.get(combo, "")
        if combo in new.metrics:
            fresh = new.metrics[combo]
            recorded = ~np.isnan(np.asarray(fresh["mean"], dtype=float))
            target = at[recorded]
            before = cols["mean"][target]
            after = np.asarray(fresh["mean"], dtype=float)[recorded]
            changed = ~np.isnan(before) & (before != after)
            if changed.any():
                report.values_changed += int(changed.sum())
                report.largest_change = max(report.largest_change, float(np.max(np.abs(before - after)[changed])))
            for s in STATS:
                cols[s] = cols[s].astype(np.result_type(cols[s].dtype, np.asarray(fresh[s]).dtype))
                cols[s][target] = np.asarray(fresh[s])[recorded]
            (report.columns_updated if combo in old.metrics else report.columns_added).append(name)
            source = (
                new.metric_sources.get(combo, "")
                if combo not in old.metrics
                else f"{source}; {new.metric_sources.get(combo, '')} (wins)"
            )
        out.metrics[combo] = cols
        out.metric_sources[combo] = source

    for cost in sorted(set(old.costs) | set(new.costs)):
        values = _grow(np.asarray(old.costs[cost], dtype=float), n, np.nan) if cost in old.costs else np.full(n, np.nan)
        if cost in new.costs:
            incoming = np.asarray(new.costs[cost], dtype=float)
            recorded = ~np.isnan(incoming)
            values[at[recorded]] = incoming[recorded]
        out.costs[cost] = values

    for name in sorted(set(old.extras) | set(new.extras)):
        if name not in old.extras or name not in new.extras:
            lacking = "existing table" if name not in old.extras else "new source"
            if (name not in old.extras and len(old.keys)) or (name not in new.extras and added):
                raise BenchmarkError(
                    f"cannot merge: the {lacking} has no {name!r} for its rows, which the merged table needs"
                )
        base, incoming_extra = old.extras.get(name), new.extras.get(name)
        template = incoming_extra if base is None else base
        merged = np.zeros((n, *np.asarray(template).shape[1:]), dtype=np.asarray(template).dtype)
        if base is not None:
            merged[: len(old.keys)] = base
        if incoming_extra is not None:
            merged[at] = incoming_extra
        out.extras[name] = merged
    return out, report
