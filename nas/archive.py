"""Score archives: stored scores in one portable file, to carry them between machines.

A score costs seconds to hours of compute; an archive lets a user move scores from one store to
another (a laptop to a cluster's PostgreSQL, or back), publish the scores behind a results table,
and resume a long reproduction on a fresh machine. Scores keep their keys (space, architecture,
protocol digest), so an imported score is used only by a run of the very same protocol; and
:func:`verify_scores` recomputes a sample of them, so a reused score is checked, not trusted.

The file is gzip'ed JSON Lines, the same bytes for the same scores (sorted; no time or name in
the gzip header):

    {"format": "zcnas-scores", "version": 1}
    {"protocol": DIGEST, "space": SPACE, "proxy": LABEL, "spec": {...the protocol...}}
    [ARCH, SCORE, SECONDS]                      # an "ok" score
    [ARCH, SCORE, SECONDS, STATUS, REASON]      # any other
    ...                                         # then the next protocol's header and rows

Non-finite scores are written as the strings "nan", "inf" and "-inf" (strict JSON); seconds keep
four significant digits.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NasError
from nas.store import ScoreRow, ScoreStore

if TYPE_CHECKING:
    from nas.scoring import Scorer

FORMAT, VERSION = "zcnas-scores", 1
SUFFIX = ".jsonl.gz"


def write_archive(
    path: str | Path,
    rows: Iterable[ScoreRow],
    protocols: dict[str, dict[str, Any]],
    machines: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Write ``rows`` (with the protocol of each digest, and the machine record of each machine
    digest) to ``path``; returns the row count."""
    rows = sorted(rows, key=lambda r: (r.space, r.protocol, r.machine, r.arch))
    used = {r.machine for r in rows if r.machine}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    group = None
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out:

        def line(obj: Any) -> None:
            out.write(json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n")

        head: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if used:  # which machines computed the scores (readers before 0.2 ignore these keys)
            head["machines"] = {d: (machines or {}).get(d) for d in sorted(used)}
        line(head)
        for row in rows:
            if (row.space, row.protocol, row.machine) != group:
                group = (row.space, row.protocol, row.machine)
                header: dict[str, Any] = {"protocol": row.protocol, "space": row.space, "proxy": row.proxy}
                header["spec"] = protocols.get(row.protocol)
                if row.machine:
                    header["machine"] = row.machine
                line(header)
            item = [row.arch, _encode(row.score), float(f"{row.seconds:.4g}")]
            if row.status != "ok" or row.reason:
                item += [row.status, row.reason]
            line(item)
    return len(rows)


@dataclass
class Archive:
    """What an archive file holds."""

    rows: list[ScoreRow] = field(default_factory=list)
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: machine digest -> record (empty for archives written before 0.2: machine unrecorded)
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_archive(path: str | Path) -> Archive:
    """Read one archive; any damage is a one-line :class:`NasError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise NasError(f"score archive not found: {path}")
    archive, header = Archive(), None
    number = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, text in enumerate(lines, 1):
                obj = json.loads(text)
                if number == 1:
                    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                        raise ValueError(f"not a {FORMAT} archive")
                    if obj.get("version") != VERSION:
                        raise ValueError(f"archive version {obj.get('version')!r}; this zcnas reads {VERSION}")
                    archive.machines = {k: v for k, v in (obj.get("machines") or {}).items() if v}
                elif isinstance(obj, dict):
                    header = obj
                    if obj.get("spec") is not None:
                        archive.protocols[obj["protocol"]] = obj["spec"]
                else:
                    if header is None:
                        raise ValueError("a score before any protocol header")
                    arch, score, seconds, *rest = obj
                    status, reason = (rest + ["ok", ""][len(rest) :])[:2]
                    archive.rows.append(
                        ScoreRow(
                            _decode(score),
                            float(seconds),
                            status,
                            reason,
                            proxy=header["proxy"],
                            space=header["space"],
                            arch=arch,
                            protocol=header["protocol"],
                            machine=header.get("machine", ""),
                        )
                    )
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as err:
        where = f" line {number}" if number else ""
        raise NasError(f"corrupt score archive {path}{where}: {err}") from None
    if number == 0:
        raise NasError(f"corrupt score archive {path}: empty")
    return archive


def archive_files(folder: str | Path) -> list[Path]:
    """The archives of a folder, oldest name first."""
    folder = Path(folder)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def export_scores(
    store: ScoreStore,
    path: str | Path,
    space: str | None = None,
    digests: Iterable[str] | None = None,
    proxies: Iterable[str] | None = None,
    exclude: Sequence[str | Path] = (),
) -> int:
    """Write the store's scores (of one space, of some protocols or proxy labels) to ``path``,
    leaving out the keys already in the ``exclude`` archives (so a folder of archives grows by
    increments). Returns the number of rows written; writes nothing when there are none."""
    known = {(r.space, r.protocol, r.arch) for p in exclude for r in read_archive(p).rows}
    wanted = None if proxies is None else set(proxies)
    rows = [
        r
        for r in store.rows(space, digests)
        if (r.space, r.protocol, r.arch) not in known and (wanted is None or r.proxy in wanted)
    ]
    if not rows:
        return 0
    return write_archive(path, rows, store.protocols(), store.machines())


@dataclass
class ImportReport:
    """What importing archives did: rows added, rows the store had already (``present``), and
    those of them whose stored score differs from the archive's (``conflicts``: store, archive)."""

    added: list[ScoreRow] = field(default_factory=list)
    present: int = 0
    conflicts: list[tuple[ScoreRow, ScoreRow]] = field(default_factory=list)


def import_scores(store: ScoreStore, paths: Sequence[str | Path]) -> ImportReport:
    """Add the archives' scores the store lacks; a stored score is never replaced (nor, between
    archives, an earlier archive's by a later one's)."""
    by_key: dict[tuple[str, str, str], ScoreRow] = {}
    protocols: dict[str, dict[str, Any]] = {}
    machines: dict[str, dict[str, Any]] = {}
    for path in paths:
        archive = read_archive(path)
        protocols.update(archive.protocols)
        machines.update(archive.machines)
        for row in archive.rows:
            by_key.setdefault((row.space, row.protocol, row.arch), row)
    report = ImportReport()
    if not by_key:
        return report
    stored = {(r.space, r.protocol, r.arch): r for r in store.rows(digests={k[1] for k in by_key})}
    for key, row in by_key.items():
        if key in stored:
            report.present += 1
            if not same_score(stored[key], row):
                report.conflicts.append((stored[key], row))
    report.added = store.add_new([r for k, r in by_key.items() if k not in stored], protocols, machines)
    return report


#: Relative tolerance of "the same score". Float sums in another order move a score: from one
#: torch thread to two, with the reproduction's protocol, zico moved by up to 0.29% on six NATS-TSS
#: cells (0.36% on a NATS-SSS one), grasp by 0.02%, snip and grad_norm by < 1e-6, the others not
#: at all. So 1% admits another machine's rounding, and a changed protocol still shows.
TOLERANCE = 1e-2


def same_score(a: ScoreRow, b: ScoreRow, rel_tol: float = TOLERANCE) -> bool:
    """The same outcome: the same status and, for scores, equal to ``rel_tol`` (nan equals nan)."""
    if a.status != b.status:
        return False
    if math.isnan(a.score) or math.isnan(b.score):
        return math.isnan(a.score) and math.isnan(b.score)
    if math.isinf(a.score) or math.isinf(b.score):
        return a.score == b.score
    return math.isclose(a.score, b.score, rel_tol=rel_tol, abs_tol=1e-12)


@dataclass
class Check:
    """A stored score recomputed: the stored row and the fresh one."""

    stored: ScoreRow
    fresh: ScoreRow

    @property
    def ok(self) -> bool:
        return same_score(self.stored, self.fresh)


def verification_sample(
    scorer: Scorer,
    rows: Sequence[ScoreRow],
    archs: Sequence[Any],
    per_protocol: int | Callable[[Any], int],
    seed: int = 0,
) -> list[ScoreRow]:
    """``per_protocol`` randomly drawn rows of each of the scorer's protocols among ``rows`` (say,
    the scores just imported) whose architecture is one of ``archs``: what :func:`recompute`
    checks. Drawing is cheap, so a caller can size a progress bar before recomputing."""
    space = scorer.space
    keys = {space.key(a) for a in archs}
    rng = random.Random(seed)
    sample = []
    for proxy in scorer.proxies:
        digest = scorer.digest(proxy)
        mine = sorted(
            (r for r in rows if r.space == space.name and r.protocol == digest and r.arch in keys),
            key=lambda r: r.arch,
        )
        count = per_protocol(proxy) if callable(per_protocol) else per_protocol
        sample += rng.sample(mine, min(count, len(mine)))
    return sample


def recompute(
    scorer: Scorer,
    sample: Sequence[ScoreRow],
    archs: Sequence[Any],
    threads: int = 1,
    progress: Callable[[], None] | None = None,
) -> list[Check]:
    """Score each row of ``sample`` (rows of the scorer's protocols, architectures among ``archs``)
    again and return it beside its fresh score; ``progress`` is called after each.

    ``threads``: torch's thread count while recomputing, that of the run that stored the scores
    (:func:`nas.scoring.score_many` uses 1): some proxies move with the order of float sums
    (ZiCo by up to 0.36% from one thread to two), so only the same count can be exact."""
    import torch

    space = scorer.space
    by_key = {space.key(a): a for a in archs}
    proxy_of = {scorer.digest(p): p for p in scorer.proxies}
    checks = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for row in sample:
            proxy = proxy_of[row.protocol]
            result = scorer.score(by_key[row.arch], [proxy])[proxy.label()]
            checks.append(
                Check(row, replace(result, proxy=row.proxy, space=row.space, arch=row.arch, protocol=row.protocol))
            )
            if progress is not None:
                progress()
    finally:
        torch.set_num_threads(before)
    return checks


def verify_scores(
    scorer: Scorer,
    rows: Sequence[ScoreRow],
    archs: Sequence[Any],
    per_protocol: int | Callable[[Any], int],
    seed: int = 0,
    threads: int = 1,
) -> list[Check]:
    """Recompute ``per_protocol`` randomly drawn rows of each of the scorer's protocols among
    ``rows`` whose architecture is one of ``archs`` (:func:`verification_sample`, then
    :func:`recompute`), and return each stored row beside its fresh score."""
    return recompute(scorer, verification_sample(scorer, rows, archs, per_protocol, seed), archs, threads)


# -- what a verification found, and what it means under each mode --------------------------------------
#: ``strict``: a protocol's archived scores are used only if every recomputed one is identical;
#: ``tolerant`` (the default): if every one is within its proxy's documented tolerance
#: (``Proxy.tolerance``, measured across CPUs: docs/proxies.md); ``off``: nothing is recomputed.
VERIFY_MODES = ("strict", "tolerant", "off")


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``; 0 for equal values (NaN equals NaN), inf for finite vs not."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


@dataclass
class ProtocolCheck:
    """The recomputed scores of one protocol: how far they are from the archived ones, whether
    they rank the cells alike, and whether the protocol passes under a mode."""

    space: str
    protocol: str
    proxy: str
    tolerance: float
    checks: list[Check]

    @property
    def max_difference(self) -> float:
        worst = 0.0
        for c in self.checks:
            if c.stored.status != c.fresh.status:
                return math.inf
            worst = max(worst, relative_difference(c.stored.score, c.fresh.score))
        return worst

    @property
    def identical(self) -> bool:
        return self.max_difference == 0.0

    @property
    def rank_agreement(self) -> float | None:
        """Kendall's tau between the archived and the recomputed scores (None under 3 cells)."""
        pairs = [(c.stored.score, c.fresh.score) for c in self.checks if c.stored.ok and c.fresh.ok]
        if len(pairs) < 3:
            return None
        from scipy.stats import kendalltau

        tau = kendalltau(*zip(*pairs)).statistic
        return None if math.isnan(tau) else float(tau)

    def passes(self, mode: str) -> bool:
        if mode == "off":
            return True
        if mode == "strict":
            return self.identical
        return self.max_difference <= self.tolerance

    def line(self, mode: str) -> str:
        """One line: ``zico (nb101, 24b1f228...): 3 recomputed, max relative difference 1.8e-02
        (tolerance 5.0e-02), rank agreement tau 1.00: used``."""
        tau = self.rank_agreement
        agreement = "" if tau is None else f", rank agreement tau {tau:.2f}"
        verdict = "used" if self.passes(mode) else f"discarded ({mode})"
        difference = "identical" if self.identical else f"max relative difference {self.max_difference:.1e}"
        return (
            f"{self.proxy} ({self.space}, {self.protocol[:8]}): {len(self.checks)} recomputed, {difference} "
            f"(tolerance {self.tolerance:.1e}){agreement}: {verdict}"
        )


def check_protocols(checks: Sequence[Check], tolerance: Callable[[str], float]) -> list[ProtocolCheck]:
    """Group recomputed scores by protocol; ``tolerance(proxy label)`` gives each its tolerance."""
    groups: dict[tuple[str, str], list[Check]] = {}
    for check in checks:
        groups.setdefault((check.stored.space, check.stored.protocol), []).append(check)
    return [
        ProtocolCheck(space, digest, group[0].stored.proxy, tolerance(group[0].stored.proxy), group)
        for (space, digest), group in sorted(groups.items())
    ]


def _encode(score: float) -> float | str:
    return score if math.isfinite(score) else str(score)


def _decode(score: Any) -> float:
    if score is None:
        return math.nan
    return float(score)
