"""Scores that other machines stored, recomputed on this one: the variation between real CPUs.

    python scripts/cross_machine.py --shared ../shared/data --stage nb101-cheap --cells 16
    python scripts/cross_machine.py --shared ../shared/data --stage tss-unique --cells 40 \\
        --proxies az_expressivity,az_progressivity,az_trainability
    python scripts/cross_machine.py --shared ../shared/data --stage nb101-costly --cells 2 --stored-on same

``scripts/score_variation.py`` imitates other CPUs on one machine with the math libraries' switches;
this script takes the real thing. The score store records the machine behind every score
(``nas store info``): it draws ``--cells`` cells of a reproduction stage whose stored scores, for
every proxy asked, came from machines with another instruction set than this one, scores them here
under the same protocol, and prints per proxy the largest relative change and the tolerance that
archive verification allows (``Proxy.tolerance``). Cells drawn with ``numpy.random.default_rng(0)``.
``--stored-on same`` takes cells scored by a machine of this one's kind (same CPU, ISA, libraries
and threads) instead: after a change meant to keep every value, all changes must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from nas.archive import relative_difference
from nas.data import parse_data_arg
from nas.machine import machine_digest, machine_info
from nas.paths import nas_home
from nas.proxies import proxy_class
from nas.reproduce.plan import import_tables, stage_scorer, stages
from nas.store import ScoreStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", required=True, help="the shared data folder")
    parser.add_argument("--stage", required=True, help="a stage of scripts/reproduce.py, e.g. nb101-cheap")
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--proxies", help="comma-separated: only these of the stage's proxies")
    parser.add_argument("--store", help="score store URL (default: $NAS_HOME/scores.db)")
    parser.add_argument(
        "--stored-on",
        choices=("other", "same"),
        default="other",
        help="cells stored by a machine with another ISA (default), or by one of this machine's kind",
    )
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the reproduction's scoring workers run one thread each

    shared = Path(args.shared)
    tables = import_tables(shared, nas_home() / "benchmarks" / "reproduce")
    plan = {s.name: s for s in stages(shared, tables)}
    if args.stage not in plan:
        print(f"cross_machine: error: unknown stage {args.stage!r}; expected {', '.join(plan)}", file=sys.stderr)
        return 2
    stage = plan[args.stage]
    if args.proxies:
        stage = stage.only(args.proxies.split(","))
    scorer = stage_scorer(stage, parse_data_arg(f"cifar10:{shared / 'cifar10' / 'cifar-10-batches-py'}"))
    store = ScoreStore(args.store)
    machines, here = store.machines(), machine_info()
    stored = {p.label(): store.get_many(scorer.space.name, scorer.digest(p)) for p in scorer.proxies}
    archs = {scorer.space.key(a): a for a in stage.archs}

    here_digest = machine_digest(here)

    def wanted(key: str) -> bool:
        """Every proxy's score of this cell is stored, by a known machine with another ISA (or, for
        ``--stored-on same``, by a machine of this one's kind)."""
        scores = [stored[label].get(key) for label in stored]
        if args.stored_on == "same":
            return all(s is not None and s.machine == here_digest for s in scores)
        return all(
            s is not None and s.machine in machines and machines[s.machine].get("isa") != here["isa"] for s in scores
        )

    candidates = [key for key in archs if wanted(key)]
    if not candidates:
        which = "this machine's kind" if args.stored_on == "same" else "another machine's ISA"
        print(f"cross_machine: error: no cell of this stage was scored by {which}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    picked = [
        candidates[i] for i in sorted(rng.choice(len(candidates), min(args.cells, len(candidates)), replace=False))
    ]
    worst = dict.fromkeys(stored, 0.0)
    from_isas = set()
    for key in picked:
        # every proxy of the cell in one call (one build, shared passes), not nas.archive.recompute's
        # one call per stored row: the same scores, a fraction of the time on NB101's large cells
        now = scorer.score(archs[key])
        for label, by_arch in stored.items():
            worst[label] = max(worst[label], relative_difference(by_arch[key].score, now[label].score))
            from_isas.add(" ".join(machines[by_arch[key].machine]["isa"]))
    result = {
        "stage": args.stage,
        "cells": len(picked),
        "stored_on": sorted(from_isas),
        "here": " ".join(here["isa"]),
        "cpu": here.get("cpu"),
        "max_relative_change": worst,
        "tolerance": {label: proxy_class(p.name).tolerance for label, p in zip(stored, scorer.proxies)},
    }
    stored_on = "; ".join(sorted(from_isas))
    print(f"{len(picked)} cells of {args.stage} stored on [{stored_on}], recomputed on [{result['here']}]")
    print("| proxy | max relative change | tolerance |\n|---|---|---|")
    for label, change in worst.items():
        print(f"| {label} | {change:.1e} | {result['tolerance'][label]:.0e} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + os.linesep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
