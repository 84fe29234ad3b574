"""Markdown reports with PNG plots for ``nas correlate --report DIR``.

``write_report(correlation, DIR)`` writes ``report.md``, ``results.json`` and:

- ``scatter_<proxy>_<dataset>.png``: proxy score against accuracy (values, left) and the two
  rankings against each other (percentile ranks, right), tau and rho in the title;
- ``spearman.png``: Spearman's rho between every pair of proxies and each dataset's accuracy;
- ``topk_<dataset>.png``: top-k precision for k from 0.5 % to 50 % per proxy, with the
  expected precision of a random ranking.

Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from nas import stats
from nas.correlation import Correlation, fraction_label

#: k of the top-k precision curves, as fractions of the population (0.5 % .. 50 %).
CURVE_FRACTIONS = (0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


#: Above this many architectures the rank panel is a hexagonal density instead of a scatter.
DENSITY_ABOVE = 3000


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _tau_text(record: dict[str, Any]) -> str:
    tau = record.get("kendall_tau")
    if tau is None:
        return "τ = n/a"
    ci = record.get("kendall_tau_ci")
    return f"τ = {tau:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


# -- plots ---------------------------------------------------------------------------------------------
def plot_scatter(corr: Correlation, label: str, dataset: str, path: Path) -> Path:
    """Values (left) and percentile ranks (right) of one proxy against one dataset's accuracy."""
    plt = _pyplot()
    record = corr.record(label, dataset)
    raw = corr.scores[label]
    acc = corr.accuracies[dataset]
    ok = ~np.isnan(raw) & ~np.isnan(acc)
    x, y = raw[ok], acc[ok]
    n = int(ok.sum())
    alpha = float(min(0.8, max(0.15, 400.0 / max(n, 1))))
    size = 10 if n <= 2000 else 5
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.2))
    direction = "" if corr.higher_is_better[label] else " (lower is better)"
    _value_axis(left, x, y, size, alpha)
    left.set_xlabel(f"{label} score{direction}")
    left.set_ylabel(f"{dataset} {corr.split} accuracy (%, {corr.epochs} epochs)")
    left.set_title("values")
    left.grid(True, alpha=0.3)
    if n:
        oriented = corr.oriented(label)[ok]
        rx = _percentile_ranks(oriented)
        ry = _percentile_ranks(y)
        if n > DENSITY_ABOVE:  # thousands of points: a density shows where they are
            cells = right.hexbin(
                rx, ry, gridsize=40, extent=(0, 100, 0, 100), bins="log", cmap="Purples", mincnt=1, linewidths=0.2
            )
            fig.colorbar(cells, ax=right, fraction=0.046, pad=0.04, label="architectures per cell")
        else:
            right.scatter(rx, ry, s=size, alpha=alpha, color="tab:purple", edgecolors="none", rasterized=True)
        right.plot([0, 100], [0, 100], color="0.4", linewidth=1, linestyle="--", label="perfect ranking")
        right.legend(loc="upper left", fontsize=9)
    right.set_xlim(0, 100)
    right.set_ylim(0, 100)
    right.set_aspect("equal")
    right.set_xlabel(f"rank by {label} (percentile, 100 = predicted best)")
    right.set_ylabel("rank by accuracy (percentile, 100 = best)")
    right.set_title("ranks")
    right.grid(True, alpha=0.3)
    dropped = record["n_failed"] if record["failed_policy"] == "drop" else 0
    note = f", {dropped:,} failed left out" if dropped else ""
    if record["failed_policy"] == "worst" and record["n_failed"]:
        note = f", {record['n_failed']:,} failed ranked worst (not drawn)"
    fig.suptitle(
        f"{label} vs {dataset} {corr.split} accuracy ({corr.epochs} epochs): {_tau_text(record)}, "
        f"ρ = {_fmt(record.get('spearman'))}, n = {record['n']:,}{note}",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _value_axis(ax, x: np.ndarray, y: np.ndarray, size: float, alpha: float) -> None:
    """Scatter scores against accuracies on a log axis when they span many decades (synflow
    reaches 1e48). Zero scores, which a log axis cannot show, are drawn as crosses at its left
    edge; scores of both signs over many decades get a symlog axis."""
    nonzero = np.abs(x[x != 0])
    wide = nonzero.size >= 2 and nonzero.max() / nonzero.min() > 1e3
    if wide and np.all(x >= 0):
        positive = x > 0
        ax.scatter(x[positive], y[positive], s=size, alpha=alpha, color="tab:blue", edgecolors="none", rasterized=True)
        ax.set_xscale("log")
        zeros = ~positive
        if zeros.any():
            edge = float(nonzero.min()) / 10
            ax.scatter(
                np.full(int(zeros.sum()), edge),
                y[zeros],
                s=size * 4,
                marker="x",
                color="tab:red",
                alpha=min(1.0, alpha * 3),
                linewidths=0.8,
                label=f"score = 0 ({int(zeros.sum()):,})",
                rasterized=True,
            )
            ax.legend(loc="lower right", fontsize=9)
        return
    ax.scatter(x, y, s=size, alpha=alpha, color="tab:blue", edgecolors="none", rasterized=True)
    if wide:
        ax.set_xscale("symlog", linthresh=float(nonzero.min()))
    elif wide is False and nonzero.size >= 2 and np.all(x > 0) and nonzero.max() / nonzero.min() > 100:
        ax.set_xscale("log")


def _percentile_ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    n = len(values)
    if n <= 1:
        return np.full(n, 50.0)
    return (rankdata(values) - 1) / (n - 1) * 100


def spearman_table(corr: Correlation) -> tuple[list[str], np.ndarray, int]:
    """Names, the Spearman matrix of oriented proxy scores and accuracies, and the number of
    architectures it was computed on (those with every score and every accuracy)."""
    names = list(corr.labels) + [f"accuracy {d}" for d in corr.datasets]
    columns = [corr.oriented(label) for label in corr.labels] + [corr.accuracies[d] for d in corr.datasets]
    matrix = np.column_stack(columns)
    rows = ~np.isnan(matrix).any(axis=1)
    if rows.sum() < 3:
        return names, np.full((len(names), len(names)), np.nan), int(rows.sum())
    return names, stats.spearman_matrix(matrix[rows]), int(rows.sum())


def plot_heatmap(corr: Correlation, path: Path) -> Path:
    plt = _pyplot()
    names, rho, n = spearman_table(corr)
    m = len(names)
    side = max(4.5, 0.9 * m + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(rho, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(m))
    ax.set_yticks(range(m))
    ax.set_xticklabels(names, rotation=40, ha="right")
    ax.set_yticklabels(names)
    for i in range(m):
        for j in range(m):
            if not np.isnan(rho[i, j]):
                ax.text(
                    j,
                    i,
                    f"{rho[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="white" if abs(rho[i, j]) > 0.6 else "black",
                )
    if corr.labels:
        edge = len(corr.labels) - 0.5
        ax.axhline(edge, color="black", linewidth=1)
        ax.axvline(edge, color="black", linewidth=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Spearman ρ")
    ax.set_title(
        f"Spearman ρ between proxies and accuracies\n({corr.split}, {corr.epochs} epochs; "
        f"n = {n:,} with every score; lower-is-better proxies negated)",
        fontsize=11,
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def topk_curves(
    corr: Correlation, dataset: str, fractions: tuple[float, ...] = CURVE_FRACTIONS
) -> dict[str, list[float | None]]:
    """Top-k precision per proxy over ``fractions`` (the failed-score policy of the run applies)."""
    out: dict[str, list[float | None]] = {}
    for label in corr.labels:
        clean = stats.drop_failed(corr.oriented(label), corr.accuracies[dataset], corr.protocol["failed_policy"])
        if len(clean.scores) < 2:
            out[label] = [None] * len(fractions)
            continue
        out[label] = [stats.topk_precision_ties(clean.scores, clean.accuracies, f) for f in fractions]
    return out


def plot_topk(corr: Correlation, dataset: str, path: Path, fractions: tuple[float, ...] = CURVE_FRACTIONS) -> Path:
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    curves = topk_curves(corr, dataset, fractions)
    count = len(curves)
    outside = count > 6  # a long legend goes beside the axes, not over the curves
    fig, ax = plt.subplots(figsize=(10.5 if outside else 8, 5.2))
    xs = np.array(fractions) * 100
    markers = "osD^v<>ph*"
    styles = ("-", "--", "-.", ":")
    colours = plt.get_cmap("tab20" if count > 10 else "tab10").colors  # no two proxies share a colour
    for i, (label, values) in enumerate(curves.items()):
        ys = np.array([np.nan if v is None else v for v in values])
        # earlier curves wider, so proxies that rank alike (params, flops) stay visible
        ax.plot(
            xs,
            ys,
            marker=markers[i % len(markers)],
            markersize=4 + 2 * (count - 1 - i) / max(count - 1, 1),
            linewidth=1.4 + 2.0 * (count - 1 - i) / max(count - 1, 1),
            linestyle=styles[i % len(styles)],
            color=colours[i % len(colours)],
            label=label,
            alpha=0.9,
        )
    ax.plot(xs, np.array(fractions), color="0.5", linestyle="--", linewidth=1, label="random ranking")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_xticks([0.5, 1, 2, 5, 10, 20, 50])
    ax.set_ylim(0, 1)
    ax.set_xlabel("k (share of the architectures)")
    ax.set_ylabel("precision: share of the proxy's top k in the true top k")
    n = max((corr.record(label, dataset)["n"] for label in corr.labels), default=0)
    ax.set_title(f"Top-k precision, {dataset} {corr.split} accuracy ({corr.epochs} epochs), n = {n:,}")
    ax.grid(True, which="both", alpha=0.3)
    if outside:
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the Markdown -------------------------------------------------------------------------------------
def write_report(corr: Correlation, directory: str | Path, payload: dict[str, Any] | None = None) -> Path:
    """Write ``report.md``, ``results.json`` and the PNGs into ``directory``; return the report path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    payload = payload if payload is not None else corr.to_json()
    (out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    scatters: list[tuple[str, str, str]] = []
    for label in corr.labels:
        for dataset in corr.datasets:
            name = f"scatter_{_slug(label)}_{_slug(dataset)}.png"
            plot_scatter(corr, label, dataset, out / name)
            scatters.append((label, dataset, name))
    plot_heatmap(corr, out / "spearman.png")
    topks = []
    for dataset in corr.datasets:
        name = f"topk_{_slug(dataset)}.png"
        plot_topk(corr, dataset, out / name)
        topks.append((dataset, name))
    path = out / "report.md"
    path.write_text(_markdown(corr, scatters, topks))
    return path


def _markdown(corr: Correlation, scatters, topks) -> str:
    p = corr.protocol
    sel = p.get("archs", {})
    acc = p["accuracy"]
    st = p["statistics"]
    lines = [f"# Proxy correlation report: {p['space']}", ""]
    lines.append(
        f"Created {p.get('created', '?')} by zcnas {p.get('zcnas_version', '?')}. "
        "Machine-readable results: [results.json](results.json)."
    )
    lines += ["", "## Protocol", ""]
    what = {
        "all": "every architecture of the space",
        "explicit": "the architectures given",
        "sample": f"a random sample of {sel.get('sample')} (numpy default_rng({sel.get('seed')}))",
    }
    chosen = what.get(sel.get("selection"), "the architectures scored")
    if sel.get("unique"):
        chosen += (
            f", one per class of functionally equal cells (reading `{sel['unique']}`"
            + (f", {sel['classes']:,} classes" if sel.get("classes") else "")
            + f"; {sel.get('representative', '')})"
        )
    lines.append(f"- **Architectures**: {p['n_archs']:,}: {chosen}.")
    seeds = []
    for d in acc["datasets"]:
        ns = acc["n_seeds"].get(d)
        seeds.append(
            f"{d}: {acc['sources'][d]}"
            + (
                f", {ns['min']}–{ns['max']} seeds"
                if ns and ns["min"] != ns["max"]
                else f", {ns['min']} seed(s)"
                if ns
                else ", seed count not recorded"
            )
        )
    lines.append(
        f"- **Accuracies**: {acc['split']} split, {acc['epochs']} epochs, {acc['value']}, "
        f"from `{acc['table']}` (source `{acc.get('table_source')}`): " + "; ".join(seeds) + "."
    )
    for entry in p["proxies"]:
        proto = entry.get("protocol")
        detail = ""
        if proto:
            proxy = proto.get("proxy", {})
            params = proxy.get("params") or {}
            detail = f"; version {proxy.get('version', '?')}" + (
                f", params {json.dumps(params, sort_keys=True)}" if params else ""
            )
        lines.append(
            f"- **Proxy `{entry['label']}`**: {'higher' if entry['higher_is_better'] else 'lower'} is better{detail}."
        )
    if "inputs" in p:
        i = p["inputs"]
        lines.append(
            f"- **Inputs**: {i.get('source')}"
            + (f" ({i['path']})" if i.get("path") else "")
            + f", {i.get('dataset')} shape, batch {i.get('batch_size')}, seed {i.get('seed')}; "
            f"networks built after torch.manual_seed({p.get('network_seed')}), "
            f"{p.get('num_classes')} classes. One score per architecture is compared with "
            "every dataset's accuracies."
        )
    policy = {
        "drop": "left out of the statistics and counted (`failed`)",
        "worst": "ranked below every finite score and counted (`failed`)",
    }
    lines.append(
        f"- **Failed scores** (NaN, infinite, error, missing): {policy[p['failed_policy']]}. "
        "Architectures without a recorded accuracy are left out and counted (`no acc`)."
    )
    fr = ", ".join(fraction_label(f) for f in st["topk_precision"]["fractions"])
    lines.append(
        f"- **Statistics**: Kendall {st['kendall_tau']}; Spearman ρ; top-k precision for "
        f"k = {fr} ({st['topk_precision']['k']}, {st['topk_precision']['ties']}); "
        f"nDCG@{st['ndcg']['top']} with gain {st['ndcg']['gain']} (ties: {st['ndcg']['ties']}); "
        f"tau CI: {st['bootstrap']['method']}, {st['bootstrap']['resamples']} resamples "
        f"(level {st['bootstrap']['level']}, seed {st['bootstrap']['seed']})."
    )
    lines += ["", "## Results", ""]
    fractions = list(corr.records[0]["topk_precision"]) if corr.records else []
    head = (
        ["proxy", "dataset", "n", "failed", "no acc", "τ-b", "95% CI", "ρ"]
        + [f"P@{f}" for f in fractions]
        + [f"nDCG@{st['ndcg']['top']}"]
    )
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
    for r in corr.records:
        ci = r.get("kendall_tau_ci")
        cells = [
            f"`{r['proxy']}`",
            r["dataset"],
            f"{r['n']:,}",
            f"{r['n_failed']:,}",
            f"{r['n_no_accuracy']:,}",
            _fmt(r["kendall_tau"]),
            f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–",
            _fmt(r["spearman"]),
        ]
        cells += [_fmt(r["topk_precision"][f]) for f in fractions] + [_fmt(r["ndcg"])]
        lines.append("| " + " | ".join(cells) + " |")
    failures = [(label, key, reason) for label in corr.labels for key, reason in corr.failures.get(label, [])[:3]]
    if failures:
        lines += ["", "First failed scores:", ""]
        lines += [f"- `{label}` on `{key}`: {reason}" for label, key, reason in failures]
    lines += [
        "",
        "## Proxy against accuracy",
        "",
        (
            "Left: the scores as computed; right: both rankings as percentiles (100 = best), "
            "where a perfect proxy lies on the diagonal."
        ),
        "",
    ]
    for label, dataset, name in scatters:
        lines += [f"### `{label}`, {dataset}", "", f"![{label} vs {dataset}]({name})", ""]
    lines += [
        "## Agreement between proxies",
        "",
        (
            "Spearman ρ over the architectures that have every score and every accuracy "
            "(lower-is-better proxies negated, so positive means they agree)."
        ),
        "",
        "![Spearman heatmap](spearman.png)",
        "",
    ]
    lines += [
        "## Top-k precision",
        "",
        (
            "Share of each proxy's top k that is in the true top k, for k from 0.5 % to 50 % of the "
            "architectures; the dashed line is a random ranking."
        ),
        "",
    ]
    for dataset, name in topks:
        lines += [f"### {dataset}", "", f"![top-k precision {dataset}]({name})", ""]
    return "\n".join(lines)
