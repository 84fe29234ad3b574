"""Score archives: a store's scores carried to another store, and checked by recomputing them."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from nas.archive import (
    archive_files,
    export_scores,
    import_scores,
    read_archive,
    recompute,
    same_score,
    verification_sample,
    verify_scores,
)
from nas.cli import main
from nas.data import parse_data_arg
from nas.errors import NasError
from nas.proxies import ProxyResult, get_proxy
from nas.scoring import Scorer, score_many, select_archs
from nas.searchspaces import get_space
from nas.store import ScoreStore


def new_store(tmp_path, name: str) -> ScoreStore:
    return ScoreStore(f"sqlite:///{tmp_path / name}")


def fill(store: ScoreStore) -> None:
    store.put("nats-tss", "a", "d1", "near", ProxyResult(1.25, 0.123456), {"proxy": "near"})
    store.put("nats-tss", "b", "d1", "near", ProxyResult(math.nan, 0.2, "failed", "singular matrix"))
    store.put("nats-tss", "c", "d1", "near", ProxyResult(-math.inf, 0.3))
    store.put("nats-tss", "a", "d2", "synflow", ProxyResult(1e37, 0.5), {"proxy": "synflow"})
    store.put("nb101", "h", "d3", "params", ProxyResult(3.0, 0.0), {"proxy": "params"})


def test_an_archive_carries_every_score_and_its_protocol(tmp_path):
    source, target = new_store(tmp_path, "a.db"), new_store(tmp_path, "b.db")
    fill(source)
    assert export_scores(source, tmp_path / "all.jsonl.gz") == 5
    report = import_scores(target, [tmp_path / "all.jsonl.gz"])
    assert len(report.added) == 5 and report.present == 0 and not report.conflicts
    got = {(r.space, r.protocol, r.arch): r for r in target.rows()}
    assert got[("nats-tss", "d1", "a")].score == 1.25
    assert got[("nats-tss", "d1", "a")].seconds == 0.1235  # four significant digits
    failed = got[("nats-tss", "d1", "b")]
    assert failed.status == "failed" and failed.reason == "singular matrix" and math.isnan(failed.score)
    assert got[("nats-tss", "d1", "c")].score == -math.inf
    assert got[("nats-tss", "d2", "a")].score == 1e37
    assert target.protocol("d1") == {"proxy": "near"} and target.protocol("d3") == {"proxy": "params"}
    # Strict JSON (no bare NaN/Infinity), and the same scores give the same bytes.
    for text in gzip.open(tmp_path / "all.jsonl.gz", "rt"):
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    export_scores(target, tmp_path / "again.jsonl.gz")
    assert (tmp_path / "again.jsonl.gz").read_bytes() == (tmp_path / "all.jsonl.gz").read_bytes()


def test_export_filters_and_increments_leave_out_what_archives_hold(tmp_path):
    store = new_store(tmp_path, "a.db")
    fill(store)
    assert export_scores(store, tmp_path / "near.jsonl.gz", proxies=["near"]) == 3
    assert export_scores(store, tmp_path / "tss.jsonl.gz", space="nats-tss", digests=["d2"]) == 1
    store.put("nats-tss", "d", "d1", "near", ProxyResult(2.0, 0.1))
    written = export_scores(
        store, tmp_path / "next.jsonl.gz", exclude=[tmp_path / "near.jsonl.gz", tmp_path / "tss.jsonl.gz"]
    )
    assert written == 2  # the new near score and the nb101 one
    assert {r.arch for r in read_archive(tmp_path / "next.jsonl.gz").rows} == {"d", "h"}
    everything = [tmp_path / f"{n}.jsonl.gz" for n in ("near", "tss", "next")]
    assert export_scores(store, tmp_path / "none.jsonl.gz", exclude=everything) == 0
    assert not (tmp_path / "none.jsonl.gz").exists()
    assert archive_files(tmp_path) == sorted(everything)


def test_import_never_replaces_a_stored_score_and_reports_differences(tmp_path):
    source, target = new_store(tmp_path, "a.db"), new_store(tmp_path, "b.db")
    fill(source)
    export_scores(source, tmp_path / "all.jsonl.gz")
    target.put("nats-tss", "a", "d1", "near", ProxyResult(9.0, 0.1))  # differs
    target.put("nats-tss", "a", "d2", "synflow", ProxyResult(1e37 * (1 + 3e-3), 0.1))  # float-order noise only
    report = import_scores(target, [tmp_path / "all.jsonl.gz"])
    assert len(report.added) == 3 and report.present == 2
    assert [(s.score, a.score) for s, a in report.conflicts] == [(9.0, 1.25)]
    assert target.get("nats-tss", "a", "d1").score == 9.0


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b"not gzip at all"), "corrupt score archive"),
        (lambda p: p.write_bytes(p.read_bytes()[:-20]), "corrupt score archive"),
        (lambda p: p.write_bytes(gzip.compress(b'{"format": "other"}\n')), "not a zcnas-scores archive"),
        (lambda p: p.write_bytes(gzip.compress(b'{"format": "zcnas-scores", "version": 9}\n')), "version 9"),
        (
            lambda p: p.write_bytes(gzip.compress(b'{"format": "zcnas-scores", "version": 1}\n["a", 1.0, 0.1]\n')),
            "before any protocol",
        ),
    ],
)
def test_a_damaged_archive_is_one_line_error_naming_it(tmp_path, damage, message, capsys):
    store = new_store(tmp_path, "a.db")
    fill(store)
    path = tmp_path / "all.jsonl.gz"
    export_scores(store, path)
    damage(path)
    with pytest.raises(NasError, match=message):
        read_archive(path)
    assert main(["store", "import", str(path), "--store", f"sqlite:///{tmp_path / 'b.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and str(path) in err and err.count("\n") == 1


def test_recomputing_archived_scores_finds_one_that_is_not_this_codes(tmp_path):
    space = get_space("nats-tss")
    archs = select_archs(space, 3, seed=5)
    scorer = Scorer(space, [get_proxy("params"), get_proxy("synflow")], parse_data_arg("gaussian"), seed=0)
    source, target = new_store(tmp_path, "a.db"), new_store(tmp_path, "b.db")
    score_many(scorer, archs, source)
    export_scores(source, tmp_path / "all.jsonl.gz")
    added = import_scores(target, [tmp_path / "all.jsonl.gz"]).added
    checks = verify_scores(scorer, added, archs, per_protocol=2)
    assert len(checks) == 4 and all(c.ok for c in checks)
    assert {c.stored.proxy for c in checks} == {"params", "synflow"}

    tampered = [r if r.proxy != "synflow" else type(r)(**{**r.__dict__, "score": r.score * 1.05}) for r in added]
    checks = verify_scores(scorer, tampered, archs, per_protocol=3)
    assert [c.ok for c in checks if c.stored.proxy == "params"] == [True] * 3
    assert [c.ok for c in checks if c.stored.proxy == "synflow"] == [False] * 3

    # The sample is drawn before anything is recomputed, so a progress bar knows its total.
    sample = verification_sample(scorer, added, archs, per_protocol=2)
    ticks = []
    checks = recompute(scorer, sample, archs, progress=lambda: ticks.append(len(ticks)))
    assert len(sample) == 4 and len(ticks) == 4 and [c.stored for c in checks] == sample


def test_store_commands(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    fill(ScoreStore(url))
    assert main(["store", "info", "--store", url, "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert {(g["proxy"], g["scores"], g["failed"]) for g in groups} == {
        ("near", 3, 1),
        ("synflow", 1, 0),
        ("params", 1, 0),
    }
    # the mean stored seconds, what a user projects a larger run's cost from
    per_score = {g["proxy"]: g["seconds_per_score"] for g in groups}
    assert per_score["near"] == pytest.approx((0.123456 + 0.2 + 0.3) / 3) and per_score["synflow"] == 0.5
    assert main(["store", "info", "--store", url]) == 0
    near_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("nats-tss  near"))
    assert near_line.split()[-3:] == ["3", "1", "0.21"]
    out = tmp_path / "near.jsonl.gz"
    assert main(["store", "export", str(out), "--store", url, "--proxy", "near"]) == 0
    assert "wrote 3 scores" in capsys.readouterr().out
    assert main(["store", "export", str(tmp_path / "x.jsonl.gz"), "--store", url, "--proxy", "nope"]) == 2
    assert "no scores of nope" in capsys.readouterr().err
    assert main(["store", "export", str(tmp_path / "x.csv"), "--store", url]) == 2
    assert main(["store", "import", str(out), "--store", f"sqlite:///{tmp_path / 'b.db'}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 3
    assert main(["store", "import", str(tmp_path / "missing.jsonl.gz"), "--store", url]) == 2
    assert "score archive not found" in capsys.readouterr().err


def test_store_info_marks_scores_of_an_older_proxy_version(tmp_path, capsys):
    from nas.proxies import proxy_class

    store = new_store(tmp_path, "v.db")
    current = proxy_class("az_trainability").version
    for digest, version in (("old", "0"), ("new", current)):
        spec = {"proxy": {"name": "az_trainability", "params": {}, "version": version}}
        store.put("nats-tss", "a", digest, "az_trainability", ProxyResult(-1.0, 0.1), spec)
    assert main(["store", "info", "--store", store.url, "--json"]) == 0
    groups = {g["protocol"]: g for g in json.loads(capsys.readouterr().out)["groups"]}
    assert (groups["old"]["version"], groups["old"]["current_version"]) == ("0", current)
    assert groups["new"]["version"] == groups["new"]["current_version"] == current
    assert main(["store", "info", "--store", store.url]) == 0
    text = capsys.readouterr().out
    assert f"0 (now {current})" in text and "of older proxy or network versions: 1 scores" in text


def test_store_info_marks_scores_of_an_older_network_version(tmp_path, capsys):
    from nas.proxies import proxy_class

    store = new_store(tmp_path, "n.db")
    near = {"name": "near", "params": {}, "version": proxy_class("near").version}
    specs = {
        "v1": {"space": "nb101", "proxy": near, "seed": 0},  # before NB101's network version 2
        "v2": {"space": "nb101", "proxy": near, "seed": 0, "network": "2"},
        "tss": {"space": "nats-tss", "proxy": near, "seed": 0},  # version 1 is current there
        "nonet": {"space": "nb101", "proxy": near},  # no network seed: builds no network
    }
    for digest, spec in specs.items():
        store.put(spec["space"], "a", digest, "near", ProxyResult(1.0, 0.1), spec)
    assert main(["store", "info", "--store", store.url, "--json"]) == 0
    groups = {g["protocol"]: g for g in json.loads(capsys.readouterr().out)["groups"]}
    assert (groups["v1"]["network_version"], groups["v1"]["current_network_version"]) == ("1", "2")
    assert groups["v2"]["network_version"] == groups["v2"]["current_network_version"] == "2"
    assert groups["tss"]["network_version"] == groups["tss"]["current_network_version"] == "1"
    assert groups["nonet"]["network_version"] is None
    assert main(["store", "info", "--store", store.url]) == 0
    text = capsys.readouterr().out
    assert "network 1 (now 2)" in text and "of older proxy or network versions: 1 scores" in text


def test_same_score_admits_float_order_noise_not_another_value():
    from nas.store import ScoreRow

    def row(score, status="ok"):
        return ScoreRow(score, 0.1, status, "", proxy="zico", space="nats-tss", arch="a", protocol="d")

    assert same_score(row(243.23), row(244.11))  # zico, one torch thread against two (0.36%)
    assert not same_score(row(243.23), row(250.0))
    assert not same_score(row(1.0), row(1.0, "failed"))
    assert same_score(row(math.nan, "failed"), row(math.nan, "failed"))
    assert not same_score(row(-math.inf), row(1.0)) and same_score(row(math.inf), row(math.inf))
    assert same_score(row(0.0), row(0.0)) and not same_score(row(0.0), row(1e-3))


# -- the machine that computed a score ---------------------------------------------------------------
XEON = {
    "cpu": "Intel Xeon",
    "isa": ["avx2", "avx512f"],
    "machine": "x86_64",
    "python": "3.11",
    "torch": "2.13.0",
    "mkl": "2024.2",
    "onednn": "3.12.0",
    "threads": 1,
}


def test_the_machine_of_each_score_travels_with_it(tmp_path, capsys):
    from nas.machine import machine_digest, machine_info

    source, target = new_store(tmp_path, "a.db"), new_store(tmp_path, "b.db")
    source.put("nats-tss", "a", "d1", "near", ProxyResult(1.0, 0.1), {"proxy": "near"}, XEON)
    here = machine_info(threads=1)
    source.put("nats-tss", "b", "d1", "near", ProxyResult(2.0, 0.1), None, here)
    source.put("nats-tss", "c", "d1", "near", ProxyResult(3.0, 0.1))  # not recorded
    export_scores(source, tmp_path / "m.jsonl.gz")
    archive = read_archive(tmp_path / "m.jsonl.gz")
    assert {r.arch: r.machine for r in archive.rows} == {"a": machine_digest(XEON), "b": machine_digest(here), "c": ""}
    assert archive.machines[machine_digest(XEON)] == XEON
    import_scores(target, [tmp_path / "m.jsonl.gz"])
    assert target.machine_counts() == {machine_digest(XEON): 1, machine_digest(here): 1, "": 1}
    assert target.machines()[machine_digest(here)] == here
    assert main(["store", "info", "--store", target.url, "--json"]) == 0
    scored_on = {m["machine"]: m["info"] for m in json.loads(capsys.readouterr().out)["machines"]}
    assert scored_on[machine_digest(XEON)]["cpu"] == "Intel Xeon" and scored_on[None] is None


def test_archives_and_stores_from_before_machines_still_read(tmp_path, shared_data):
    """The published archives (written before 0.2) read, with machines unrecorded; a store made
    before 0.2 (no machine column) gets the column on opening, its scores kept."""
    import sqlite3
    from pathlib import Path

    oldest = sorted((Path(__file__).resolve().parents[1] / "docs" / "scores").glob("*.jsonl.gz"))[0]
    archive = read_archive(oldest)
    assert archive.rows and not archive.machines and {r.machine for r in archive.rows} == {""}
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE scores (space VARCHAR(32), arch VARCHAR(512), protocol VARCHAR(32), "
            "proxy VARCHAR(128) NOT NULL, score FLOAT, seconds FLOAT, status VARCHAR(16) NOT NULL, "
            "reason TEXT, created FLOAT, PRIMARY KEY (space, arch, protocol))"
        )
        conn.execute("INSERT INTO scores VALUES ('nats-tss', 'a', 'd1', 'near', 1.5, 0.1, 'ok', '', 0)")
    store = ScoreStore(f"sqlite:///{path}")
    assert store.get("nats-tss", "a", "d1").score == 1.5 and store.machine_counts() == {"": 1}
