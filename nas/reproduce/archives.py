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


#: The accuracy each space's archive check ranks against: (table of the reproduction, dataset,
#: split, epochs); the SSS fixtures' table is too small to rank anything.
ACCURACY = {
    "nats-tss": ("nats-tss", "cifar10", "test", 200),
    "nb101": ("nb101", "cifar10", "valid", 108),
    "nats-sss": ("nats-sss-hp90", "cifar10", "valid", 90),
}


def accuracy_shift(check, tables: dict[str, Any]) -> str:
    """Whether the ranking against accuracy moves, over the recomputed cells: Kendall tau of the
    archived and of the recomputed scores against the results' accuracy ("" when it cannot say)."""
    import math

    from scipy.stats import kendalltau

    name, dataset, split, epochs = ACCURACY.get(check.space, (None, None, None, None))
    table = tables.get(name) if name else None
    if table is None:
        return ""
    pairs = [(c.stored.score, c.fresh.score, c.stored.arch) for c in check.checks if c.stored.ok and c.fresh.ok]
    pairs = [(a, b, k) for a, b, k in pairs if k in table]
    if len(pairs) < 3:
        return ""
    acc = [table.accuracy(k, dataset=dataset, split=split, epochs=epochs) for _, _, k in pairs]
    old = kendalltau([a for a, _, _ in pairs], acc).statistic
    new = kendalltau([b for _, b, _ in pairs], acc).statistic
    if math.isnan(old) or math.isnan(new):
        return ""
    return (
        f"; over those {len(pairs)} cells tau against {dataset} {split} accuracy "
        f"{old:.2f} archived, {new:.2f} recomputed"
    )


def import_archives(
    folder: Path,
    plan: list[Stage],
    inputs,
    store,
    verify: str = "tolerant",
    sample: int = 3,
    cheap_sample: int = 8,
    tables: dict[str, Any] | None = None,
) -> str:
    """Add the archived scores the store lacks, then check them by recomputing some of each
    protocol (``cheap_sample`` for the cheap proxies, ``sample`` for the others; none with
    ``verify="off"``). One line per protocol says how far the recomputed scores are from the
    archived ones and whether they rank the cells alike. Under ``strict`` a protocol is used only if
    every recomputed score is identical; under ``tolerant`` (the default) if each is within its
    proxy's documented tolerance. A protocol that fails is discarded (its imported scores are
    deleted, so scoring recomputes them), as the mode the user chose says. Returns a sentence for
    the results' header."""
    from nas.archive import VERIFY_MODES, archive_files, check_protocols, import_scores, recompute, verification_sample
    from nas.errors import NasError
    from nas.proxies.base import proxy_tolerance
    from nas.reproduce.plan import CHEAP

    if verify not in VERIFY_MODES:
        raise NasError(f"--verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
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
    if verify == "off":
        log("archives not verified (--verify off)")
        return (
            f"{len(report.added):,} scores came from the score archives in `docs/scores`, used without "
            "recomputing any (`--verify off`)."
        )
    checks, done = [], set()
    archs_of: dict[str, list[Any]] = {}
    for stage in plan:
        archs_of.setdefault(stage.space_name, []).extend(stage.archs)

    def count(proxy) -> int:
        return cheap_sample if proxy.name in CHEAP else sample

    drawn = []
    for stage in plan:  # each protocol once, over every cell of its space
        scorer = stage_scorer(stage, inputs)
        todo = [r for r in report.added if r.protocol not in done]
        drawn.append((scorer, verification_sample(scorer, todo, archs_of[stage.space_name], count, seed=0)))
        done |= {scorer.digest(p) for p in scorer.proxies}
    from tqdm import tqdm

    with tqdm(total=sum(len(rows) for _, rows in drawn), desc="verifying archived scores", unit="score") as bar:
        for scorer, rows in drawn:
            checks += recompute(scorer, rows, archs_of[scorer.space.name], progress=bar.update)
    protocols = check_protocols(checks, proxy_tolerance)
    failed = [p for p in protocols if not p.passes(verify)]
    for p in protocols:
        shift = "" if p.identical else accuracy_shift(p, tables or {})
        log(("verify " if p.passes(verify) else "warning: ") + p.line(verify) + shift)
    for p in failed:
        mine = [r.arch for r in report.added if r.space == p.space and r.protocol == p.protocol]
        store.delete(p.space, p.protocol, mine)
        log(f"{p.proxy} ({p.space}): its {len(mine):,} archived scores are discarded and will be scored again")
    identical = sum(p.identical for p in protocols)
    log(
        f"recomputed {len(checks)} archived scores of {len(protocols)} protocols: {identical} protocols identical, "
        f"{len(protocols) - identical - len(failed)} within tolerance, {len(failed)} discarded (--verify {verify})"
    )
    bad = {(p.space, p.protocol) for p in failed}
    kept = sum(1 for r in report.added if (r.space, r.protocol) not in bad)
    differing = [p for p in protocols if not p.identical and p.passes(verify)]
    sentence = (
        f"{kept:,} scores came from the score archives in `docs/scores` (written by earlier runs). This run "
        f"recomputed {len(checks)} of them ({cheap_sample} per protocol of the cheap proxies, {sample} of the "
        f"others, drawn at random): {identical} of {len(protocols)} protocols gave identical scores"
    )
    if differing:
        closest = sorted(differing, key=lambda p: p.max_difference / p.tolerance, reverse=True)[:3]
        sentence += (
            f"; {len(differing)} differed within their proxies' tolerances, closest to them "
            + ", ".join(
                f"{p.proxy} ({p.space}) by {p.max_difference:.1e} (tolerance {p.tolerance:.0e})" for p in closest
            )
            + "; every sample ranked its cells as the archive did"
            * all(p.rank_agreement in (None, 1.0) for p in differing)
        )
    sentence += f". A protocol's archived scores are used only within its proxy's tolerance (`--verify {verify}`)"
    if failed:
        sentence += f"; discarded: {', '.join(f'{p.proxy} ({p.space})' for p in failed)}"
    return sentence + "."


def save_archive(folder: Path, store, digests: set[str]) -> None:
    """Write the reproduction's stored scores the archives lack to a new file in ``folder``."""
    from nas.archive import SUFFIX, archive_files, export_scores

    path = folder / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{SUFFIX}"
    written = export_scores(store, path, digests=digests, exclude=archive_files(folder))
    if written:
        log(f"archived {written:,} new scores in {path}")
