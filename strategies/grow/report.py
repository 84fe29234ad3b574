"""Accuracy against parameters, the plot people look at for growth."""

from __future__ import annotations

from pathlib import Path


def plot_growth(
    runs: dict[str, list[dict]], path: str | Path, baselines: dict[str, tuple[int, float]] | None = None
) -> None:
    """Test accuracy (solid) and train accuracy (dotted) against parameters, one line per run;
    ``baselines`` adds single points (e.g. the final architecture trained from scratch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, history in runs.items():
        params = [r["params"] for r in history]
        line = ax.plot(params, [r["test_acc"] for r in history], marker=".", label=f"{label} (test)")[0]
        ax.plot(params, [r["train_acc"] for r in history], ls=":", color=line.get_color(), label=f"{label} (train)")
    for label, (size, acc) in (baselines or {}).items():
        ax.scatter([size], [acc], marker="*", s=90, zorder=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
