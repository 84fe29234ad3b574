"""The reproduction's score archives (docs/scores): imported and checked first, increments saved after."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nas.reproduce.plan import Stage, log, stage_scorer


# -- score archives (docs/scores) -------------------------------------------------------------------
def reproduction_digests(plan: list[Stage], inputs) -> set[str]:
    """The protocol digests of every stage's proxies: what the reproduction's archives hold."""
    out = set()
    for stage in plan:
        scorer = stage_scorer(stage, inputs)
        out |= {scorer.digest(p) for p in scorer.proxies}
    return out


def import_archives(folder: Path, plan: list[Stage], inputs, store, verify: int) -> str:
    """Add the archived scores the store lacks and recompute ``verify`` random ones of each
    protocol; a protocol whose recomputed scores differ is discarded (its imported scores are
    deleted, so scoring recomputes them). Returns a sentence for the results' header."""
    from nas.archive import TOLERANCE, archive_files, import_scores, verify_scores
    from nas.errors import NasError

    files = archive_files(folder)
    if not files:
        return ""
    report = import_scores(store, files)
    log(f"archives {folder}: {len(files)} files, {len(report.added):,} scores added, {report.present:,} already stored")
    if report.conflicts:
        stored, archived = report.conflicts[0]
        raise NasError(
            f"{len(report.conflicts):,} stored scores differ from the archives' (e.g. {stored.proxy} on "
            f"{stored.arch}: {stored.score!r} stored, {archived.score!r} archived): a proxy changed "
            "without a new version, or the store is another protocol's; rerun with --no-archive"
        )
    if not report.added:
        return (
            f"The store already held every score of the archives in `docs/scores` ({report.present:,}), so "
            "none came from them in this run and none were recomputed."
        )
    checks, done = [], set()
    archs_of: dict[str, list[Any]] = {}
    for stage in plan:
        archs_of.setdefault(stage.space_name, []).extend(stage.archs)
    for stage in plan:  # each protocol once, over every cell of its space
        scorer = stage_scorer(stage, inputs)
        todo = [r for r in report.added if r.protocol not in done]
        checks += verify_scores(scorer, todo, archs_of[stage.space_name], verify, seed=0)
        done |= {scorer.digest(p) for p in scorer.proxies}
    failed = {(c.stored.space, c.stored.protocol): c for c in checks if not c.ok}
    for (space, digest), c in failed.items():
        mine = [r.arch for r in report.added if r.space == space and r.protocol == digest]
        store.delete(space, digest, mine)
        log(
            f"warning: {c.stored.proxy} ({space}) on {c.stored.arch}: {c.stored.score!r} archived, {c.fresh.score!r} "
            f"recomputed; its {len(mine):,} archived scores are discarded and will be scored again"
        )
    kept = sum(1 for r in report.added if (r.space, r.protocol) not in failed)
    if checks:
        log(f"recomputed {len(checks)} archived scores at random: {len(checks) - sum(not c.ok for c in checks)} equal")
    sentence = (
        f"{kept:,} scores came from the score archives in `docs/scores` (written by earlier runs); this "
        f"run recomputed {len(checks)} of them, {verify} drawn at random per protocol, and used a "
        "protocol's archived scores only where every recomputed one equals its archived value "
        f"(relative tolerance {TOLERANCE:g})"
    )
    if failed:
        sentence += f" (discarded: {', '.join(sorted(c.stored.proxy for c in failed.values()))})"
    return sentence + "."


def save_archive(folder: Path, store, digests: set[str]) -> None:
    """Write the reproduction's stored scores the archives lack to a new file in ``folder``."""
    from nas.archive import SUFFIX, archive_files, export_scores

    path = folder / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{SUFFIX}"
    written = export_scores(store, path, digests=digests, exclude=archive_files(folder))
    if written:
        log(f"archived {written:,} new scores in {path}")
