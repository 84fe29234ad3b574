"""The reproduction behind docs/results.md (``make reproduce``, ``scripts/reproduce.py``): how well
every proxy ranks NATS-TSS, NAS-Bench-101 and NATS-SSS cells.

    make reproduce                     # = python scripts/reproduce.py --shared ../shared/data
    python scripts/reproduce.py --minutes 60 --workers 2   # score for an hour, then write results
    python scripts/reproduce.py --stages tss-all-cheap --proxies near,params   # one proxy first
    python scripts/reproduce.py --plan --verify off   # what is left to score, and its projected cost

Protocol (the same for every score, so every command shares the store): proxies score each
network right after ``torch.manual_seed(0)`` on one batch of 64 real CIFAR-10 training images
(seed 0) from ``SHARED/cifar10``, with the 10-class head. No CIFAR-100 or ImageNet16-120 pixels
are available here, so the CIFAR-100 and ImageNet16-120 columns rank the same CIFAR-10-input
scores against those datasets' accuracies.

Scoring runs in stages, most useful first, and every score goes to the score store (default
``$NAS_HOME/scores.db``): stop it at any time (or give ``--minutes``) and run it again, it goes on
where it stopped; results are written for what is scored, with the coverage stated.

1. NATS-TSS, the 500 reference cells of ``SHARED/reference/peer_scores_nb201_500.csv``, every proxy
2. NATS-TSS, 1,000 cells drawn with ``numpy.random.default_rng(0)``, every proxy
3. NATS-SSS, the official fixture cells (the pipeline end to end; too few cells to correlate)
4. NATS-TSS, 500 held-out cells outside the 1,000, the ensembles' components (their blind test)
5. NATS-TSS, the 9,445 unique cells (VKDNW's cell set), every proxy; then the default ensemble's
   components again on the CIFAR-100 and on the ImageNet16-120 network (their own head and size)
6. NATS-TSS, all 15,625 cells, the cheap proxies (the unique cells first: ``scoring_order``)
7. NAS-Bench-101, the 1,000-cell subset, the cheap proxies
8. NATS-TSS, all 15,625 cells, the other proxies (likewise)
9. NAS-Bench-101, the 1,000-cell subset, the other proxies
10. NATS-SSS, all 32,768 cells (``sss_order``: a seeded permutation), NEAR, params, flops,
    synflow, meco_opt and meco, against the 90-epoch validation accuracy of
    ``SHARED/nats_sss/nats_sss_hp90_valid.csv.gz``
11. NATS-SSS, the first 3,000 cells of that order, every other proxy but AZ-NAS's
12. NATS-SSS, all 32,768 cells, AZ-NAS's three scores (with flops and meco: the default ensemble)
13. NAS-Bench-101, 10,000 cells of ``SHARED/nb101/nb101_all_test.csv.gz`` drawn with a fixed seed
    (``nb101_sample``), NEAR, params, flops, synflow, meco_opt, meco, naswot; against the mean test
    accuracy of 3 runs, 108 epochs (so is the 1,000-cell subset, beside its validation figures)
14. The same 10,000 cells, zico and AZ-NAS's three scores
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nas.reproduce.archives import import_archives, reproduction_digests, save_archive
from nas.reproduce.plan import ALL, import_tables, log, projection, score_stages, stages
from nas.reproduce.results import write_all


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """``scripts/reproduce.py``: ``root`` is the repository (the defaults of --shared, --archive, --out)."""
    root = Path.cwd() if root is None else Path(root)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(root.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--store", help="score store URL (default sqlite:///$NAS_HOME/scores.db)")
    parser.add_argument("--workers", type=int, default=2, help="scoring processes (default 2)")
    parser.add_argument(
        "--cluster", help="score on Dask: 'local' (--workers processes) or a scheduler address tcp://HOST:8786"
    )
    parser.add_argument("--minutes", type=float, help="stop scoring after this many minutes, then write results")
    parser.add_argument("--stages", help="comma-separated stage names to score (default: all, in order)")
    parser.add_argument(
        "--proxies",
        help="comma-separated: score only these of each stage's proxies (e.g. near first on the whole space)",
    )
    parser.add_argument("--no-score", action="store_true", help="only write results from stored scores")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="score nothing: print what each stage still misses and its projected core-hours, from the "
        "seconds the store records (after importing the archives)",
    )
    parser.add_argument(
        "--no-results",
        action="store_true",
        help="only score (e.g. several runs in a row); write the results later with --no-score",
    )
    parser.add_argument(
        "--archive",
        default=str(root / "docs" / "scores"),
        help="folder of score archives: its scores are imported first (a random few of each "
        "protocol recomputed and checked), and new ones are added as a new file "
        "(default docs/scores)",
    )
    parser.add_argument("--no-archive", action="store_true", help="neither read nor write the archives")
    parser.add_argument(
        "--verify",
        default="tolerant",
        help="how archived scores are checked: strict (recomputed ones must be identical), tolerant (within "
        "each proxy's documented tolerance; the default) or off (not recomputed)",
    )
    parser.add_argument(
        "--verify-sample",
        type=int,
        default=3,
        help="archived scores recomputed per protocol (default 3; 8 for the cheap proxies)",
    )
    parser.add_argument("--out", default=str(root / "docs" / "results.md"))
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of tau (default 1000)")
    args = parser.parse_args(argv)

    from nas.cluster import parse_cluster
    from nas.data import parse_data_arg
    from nas.errors import NasError
    from nas.paths import nas_home
    from nas.store import ScoreStore

    started = time.monotonic()
    shared = Path(args.shared).resolve()
    cifar = shared / "cifar10" / "cifar-10-batches-py"
    for needed in (cifar, shared / "nb201" / "nb201_accuracies.csv", shared / "reference"):
        if not needed.exists():
            print(f"reproduce: error: {needed} is missing (pass --shared)", file=sys.stderr)
            return 2
    if args.no_score and args.no_results:
        print("reproduce: error: --no-score and --no-results together leave nothing to do", file=sys.stderr)
        return 2
    inputs = parse_data_arg(f"cifar10:{cifar}", batch_size=64, seed=0)
    store = ScoreStore(args.store)
    tables = import_tables(shared, nas_home() / "benchmarks" / "reproduce")
    plan = stages(shared, tables)
    if args.stages:
        wanted = set(args.stages.split(","))
        unknown = wanted - {s.name for s in plan}
        if unknown:
            print(
                f"reproduce: error: unknown stage(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(s.name for s in plan)}",
                file=sys.stderr,
            )
            return 2
        plan_to_score = [s for s in plan if s.name in wanted]
    else:
        plan_to_score = plan
    if args.proxies:
        only = args.proxies.split(",")
        unknown = set(only) - set(ALL)
        if unknown:
            print(
                f"reproduce: error: unknown proxy(ies) {', '.join(sorted(unknown))}; expected {', '.join(ALL)}",
                file=sys.stderr,
            )
            return 2
        plan_to_score = [s.only(only) for s in plan_to_score]
        plan_to_score = [s for s in plan_to_score if s.proxies]
    log(f"store {store.url}; inputs {inputs.source}:{inputs.path} batch 64 seed 0")
    provenance = ""
    if not args.no_archive:
        try:
            provenance = import_archives(
                Path(args.archive),
                plan,
                inputs,
                store,
                args.verify,
                args.verify_sample,
                max(args.verify_sample, 8),
                tables,
            )
        except NasError as err:
            print(f"reproduce: error: {err}", file=sys.stderr)
            return 2
    if args.plan:
        print("\n".join(projection(plan_to_score, inputs, store, args.workers)))
        return 0
    if not args.no_score:
        deadline = started + 60 * args.minutes if args.minutes else None
        try:
            score_stages(plan_to_score, inputs, store, args.workers, deadline, parse_cluster(args.cluster))
        except NasError as err:  # e.g. a worker killed for memory: what was scored is stored
            print(f"reproduce: error: {err}", file=sys.stderr)
            return 2
        if not args.no_archive:
            save_archive(Path(args.archive), store, reproduction_digests(plan, inputs))
    scoring_seconds = time.monotonic() - started
    if args.no_results:
        log(f"scored for {scoring_seconds:.0f} s; results not written (--no-results)")
        return 0

    write_all(Path(args.out), plan, tables, inputs, store, shared, args.resamples, scoring_seconds, started, provenance)
    log(f"total runtime {time.monotonic() - started:.0f} s")
    return 0
