"""Kendall tau of each cheap proxy against NB101 validation accuracy under network versions 1 and
2, on the subset cells both have scored, and tau between the two versions' scores.

    python scripts/nb101_network_versions.py

It reads the reproduction's store ($NAS_HOME/scores.db) and its imported NB101 subset table, and
tells the versions apart by each protocol's spec (``"network": "2"``, or none for version 1).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    from scipy.stats import kendalltau

    from nas.benchmarks import BenchmarkTable
    from nas.paths import nas_home
    from nas.store import ScoreStore

    store = ScoreStore(None)
    table = BenchmarkTable(Path(nas_home()) / "benchmarks" / "reproduce" / "nb101.h5")
    protocols = store.protocols()
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for row in store.rows("nb101"):
        spec = protocols.get(row.protocol) or {}
        if row.ok and "seed" in spec:  # a network score
            scores.setdefault((row.proxy, str(spec.get("network", "1"))), {})[row.arch] = row.score
    for proxy in ("near", "meco", "meco_opt", "synflow", "naswot"):
        v1, v2 = scores.get((proxy, "1"), {}), scores.get((proxy, "2"), {})
        keys = [k for k in v2 if k in v1 and k in table]
        if len(keys) < 3:
            print(f"{proxy}: fewer than 3 cells scored under both versions")
            continue
        acc = [table.accuracy(k, dataset="cifar10", split="valid", epochs=108) for k in keys]
        a, b = [v1[k] for k in keys], [v2[k] for k in keys]
        print(
            f"{proxy}: {len(keys)} cells, tau vs valid accuracy v1 {kendalltau(a, acc).statistic:.3f} "
            f"v2 {kendalltau(b, acc).statistic:.3f}; tau(v1, v2) {kendalltau(a, b).statistic:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
