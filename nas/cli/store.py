"""``nas store``: what a score store holds, and archives to carry its scores elsewhere
(:mod:`nas.archive`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from typing import Any

from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas store info                                  # scores (and seconds each) per space, proxy and protocol\n"
    "  nas store export scores.jsonl.gz --space nats-tss\n"
    "  nas store export new.jsonl.gz --exclude old.jsonl.gz   # only what old.jsonl.gz lacks\n"
    "  nas store import scores.jsonl.gz --store postgresql://user@host/db\n"
    "\n"
    "An archive keeps each score's key (space, architecture, protocol digest): an imported score\n"
    "is reused only by a run of the same protocol, and a stored score is never replaced."
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    store = subparsers.add_parser(
        "store", help="inspect a score store; export and import score archives", epilog=EXAMPLES, formatter_class=fmt
    )
    sub = store.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="score store URL (default sqlite:///$NAS_HOME/scores.db)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("info", help="scores per space, proxy and protocol", epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("--space", help="one space (default: all)")
    common(p)
    p.set_defaults(func=cmd_info, parser=p)

    p = sub.add_parser(
        "export", help="write stored scores to an archive (.jsonl.gz)", epilog=EXAMPLES, formatter_class=fmt
    )
    p.add_argument("archive", help="the file to write (FILE.jsonl.gz)")
    p.add_argument("--space", help="one space (default: all)")
    p.add_argument("--proxy", help="comma-separated proxy labels, e.g. near,synflow (default: all)")
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="ARCHIVE",
        help="leave out the scores these archives hold (write an increment)",
    )
    common(p)
    p.set_defaults(func=cmd_export, parser=p)

    p = sub.add_parser("import", help="add an archive's scores the store lacks", epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("archives", nargs="+", metavar="ARCHIVE", help="archive files (.jsonl.gz)")
    common(p)
    p.set_defaults(func=cmd_import, parser=p)
    return store


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> int:
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from nas.machine import describe
    from nas.store import ScoreStore, mean_seconds

    store = ScoreStore(args.store)
    by_protocol: dict[tuple[str, str, str], list] = defaultdict(list)  # its groups, one per machine
    by_machine: Counter = Counter()
    for group in store.group_counts(args.space):
        by_protocol[(group.space, group.proxy, group.protocol)].append(group)
        by_machine[group.machine] += group.scores
    machines = store.machines()
    protocols = store.protocols()
    groups = []
    for (s, p, d), mine in sorted(by_protocol.items()):
        spec = protocols.get(d)
        version, current = _versions(spec)
        network, current_network = _network_versions(spec)
        groups.append(
            {"space": s, "proxy": p, "protocol": d, "version": version, "current_version": current,
             "network_version": network, "current_network_version": current_network,
             "scores": sum(g.scores for g in mine), "failed": sum(g.failed for g in mine),
             "seconds": sum(g.seconds for g in mine), "seconds_per_score": mean_seconds(mine), "spec": spec}
        )  # fmt: skip
    lines = [f"{store.url}: {sum(by_machine.values()):,} scores"]
    if groups:
        lines.append(
            f"{'space':<10}{'proxy':<30}{'protocol':<18}{'version':<31}{'inputs':<30}{'scores':>9}{'failed':>8}{'s/score':>9}"
        )
    stale = 0
    for g in groups:
        inputs = (g["spec"] or {}).get("inputs") or {}
        source, dataset = inputs.get("source", "?"), inputs.get("dataset", "?")
        where = (source if source == dataset else f"{source} ({dataset})") + f", batch {inputs.get('batch_size', '?')}"
        version = g["version"] or "?"
        if g["current_version"] not in (None, g["version"]):
            version += f" (now {g['current_version']})"
        if g["current_network_version"] not in (None, g["network_version"]):
            version += f", network {g['network_version']} (now {g['current_network_version']})"
        if version != (g["version"] or "?"):
            stale += g["scores"]
        per_score = "-" if g["seconds_per_score"] is None else f"{g['seconds_per_score']:.2f}"
        lines.append(
            f"{g['space']:<10}{g['proxy']:<30}{g['protocol']:<18}{version:<31}{where:<30}{g['scores']:>9,}"
            f"{g['failed']:>8,}{per_score:>9}"
        )
    if stale:
        lines.append(
            f"of older proxy or network versions: {stale:,} scores, which no run of today's proxies reads "
            "(CHANGELOG.md, Proxy versions and Network versions)"
        )
    if groups:
        lines.append(
            "s/score: the mean seconds a score took, as stored (one core; a shared pass's time split among "
            "its proxies; on whichever machines computed them)"
        )
    if by_machine:
        lines.append("computed on:")
    scored_on = []
    for digest, n in by_machine.most_common():
        info = machines.get(digest)
        what = describe(info) if info else "machine not recorded (scores stored before zcnas 0.2)"
        scored_on.append({"machine": digest or None, "scores": n, "info": info})
        lines.append(f"  {n:>9,}  {digest or '-':<13} {what}")
    return _emit(args, {"store": store.url, "groups": groups, "machines": scored_on}, "\n".join(lines))


def _versions(spec: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The proxy version a protocol was scored with, and the registered proxy's version today
    (None where the protocol names no version or the proxy is not registered here)."""
    from nas.proxies import list_proxies, proxy_class

    proxy = (spec or {}).get("proxy")
    if not isinstance(proxy, dict):
        return None, None
    name, version = proxy.get("name"), proxy.get("version")
    if not isinstance(name, str) or name not in list_proxies():
        return version, None
    return version, str(proxy_class(name).version)


def _network_versions(spec: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The network version of the space a protocol built its networks in ("1" where it names
    none), and that space's version today; (None, None) for a protocol that builds no network
    (it has no network seed) or a space not registered here."""
    from nas.searchspaces import get_space, list_spaces

    spec = spec or {}
    if "seed" not in spec or spec.get("space") not in list_spaces():
        return None, None
    return str(spec.get("network", "1")), get_space(spec["space"]).network_version


def cmd_export(args: argparse.Namespace) -> int:
    from nas.archive import export_scores
    from nas.store import ScoreStore

    if not args.archive.endswith(".jsonl.gz"):
        raise NasError(f"an archive's name ends in .jsonl.gz, got {args.archive!r}")
    store = ScoreStore(args.store)
    proxies = None
    if args.proxy:
        proxies = {p.strip() for p in args.proxy.split(",") if p.strip()}
        unknown = proxies - {r.proxy for r in store.rows(args.space)}
        if unknown:
            raise NasError(f"the store holds no scores of {', '.join(sorted(unknown))}")
    written = export_scores(store, args.archive, args.space, proxies=proxies, exclude=args.exclude)
    text = f"wrote {written:,} scores to {args.archive}" if written else "nothing to write: no new scores"
    return _emit(args, {"archive": args.archive, "written": written}, text)


def cmd_import(args: argparse.Namespace) -> int:
    from nas.archive import import_scores
    from nas.store import ScoreStore

    store = ScoreStore(args.store)
    report = import_scores(store, args.archives)
    payload = {
        "store": store.url,
        "added": len(report.added),
        "present": report.present,
        "conflicts": [
            {
                "space": s.space,
                "arch": s.arch,
                "proxy": s.proxy,
                "protocol": s.protocol,
                "stored": s.score,
                "archive": a.score,
            }
            for s, a in report.conflicts
        ],
    }
    text = f"added {len(report.added):,} scores; {report.present:,} were stored already"
    if report.conflicts:
        text += (
            f"; {len(report.conflicts):,} of those differ from the archive (kept the stored ones), e.g. "
            + "; ".join(
                f"{s.proxy} on {s.arch}: {s.score!r} stored, {a.score!r} archived" for s, a in report.conflicts[:3]
            )
        )
    return _emit(args, payload, text)
