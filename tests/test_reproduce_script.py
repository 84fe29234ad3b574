"""The reproduction (``nas.reproduce``, run by ``scripts/reproduce.py``): its plan, archives, and
comparisons with the authors' code on the same cells."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reproduce():
    """The reproduction's names (the modules of the library's ``nas.reproduce``) as one namespace."""
    from nas.reproduce import archives, compare, full_tables, plan, published, results

    names: dict = {}
    for module in (plan, published, archives, compare, results, full_tables):
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return SimpleNamespace(**names)


def write_reference(folder: Path, rows: list[dict[str, str]]) -> Path:
    (folder / "reference").mkdir()
    with open(folder / "reference" / "peer_scores_nb201_500.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_peer_results_compare_on_the_cells_both_sides_scored(reproduce, tmp_path):
    rng = np.random.default_rng(3)
    acc = rng.normal(90, 2, 40)
    theirs = acc + rng.normal(0, 1, 40)
    # The authors scored grasp on the first 20 cells only (the reference file's grasp and fisher).
    rows = [
        {"index": str(i), "cifar10_test_200ep": f"{acc[i]:.6f}", "grasp": f"{theirs[i]:.6f}" if i < 20 else ""}
        for i in range(40)
    ]
    shared = write_reference(tmp_path, rows)
    ours = {i: float(acc[i] + rng.normal(0, 3)) for i in range(40) if i != 5}  # one failed on our side
    peer = reproduce.peer_results(shared, {"grasp": ours})["grasp"]

    both = [i for i in range(20) if i != 5]
    assert peer.n == len(both) == 19
    assert peer.tau == pytest.approx(kendalltau(theirs[both], acc[both]).statistic)
    assert peer.ours_tau == pytest.approx(kendalltau([ours[i] for i in both], acc[both]).statistic)
    assert peer.agreement == pytest.approx(spearmanr(theirs[both], [ours[i] for i in both]).statistic)
    # Ours over all 39 scored cells differs from ours on the 19 shared ones: the gap uses the latter.
    all_ours = kendalltau([ours[i] for i in sorted(ours)], acc[sorted(ours)]).statistic
    assert not math.isclose(all_ours, peer.ours_tau)


def test_reference_table_reports_the_same_cell_gap(reproduce):
    record = {"proxy": "grasp", "dataset": "cifar10", "n": 39, "kendall_tau": 0.5, "kendall_tau_ci": [0.4, 0.6]}
    peer = reproduce.Peer(tau=0.30, ours_tau=0.36, agreement=0.9, n=19)
    lines = reproduce.section_reference([record], {"grasp": peer})
    row = next(line for line in lines if line.startswith("| `grasp`"))
    assert "+0.060 (over 0.05) (ours on those 19: 0.360)" in row
    assert row.endswith("| 0.900 |")


def test_holdout_cells_are_outside_the_sample_and_fixed(reproduce):
    from nas.scoring import select_archs
    from nas.searchspaces import get_space

    tss = get_space("nats-tss")
    sample = select_archs(tss, 1000, 0)
    held = reproduce.holdout_cells(tss, sample)
    keys, seen = [tss.key(a) for a in held], {tss.key(a) for a in sample}
    assert len(held) == len(set(keys)) == 500
    assert not set(keys) & seen
    first = [int(i) for i in np.random.default_rng(1).permutation(tss.size)[:20]]
    assert [tss.index_of(a) for a in held[:3]] == [i for i in first if tss.key(tss.from_index(i)) not in seen][:3]
    # the stage scores every ensemble's components
    from nas.proxies import get_proxy, parse_proxy_spec

    for text in reproduce.ENSEMBLES:
        name, params = parse_proxy_spec(text)[0]
        assert {c.label() for c in get_proxy(name, **params).components} <= set(reproduce.HOLDOUT)


def test_the_whole_space_stages_score_every_cell_once_unique_cells_first(reproduce):
    from nas.correlation import unique_representatives
    from nas.searchspaces import get_space

    tss = get_space("nats-tss")
    unique = unique_representatives(tss, "pruned")
    order = reproduce.scoring_order(tss, unique)
    keys = [tss.key(a) for a in order]
    assert len(keys) == len(set(keys)) == tss.size
    head = set(keys[: len(unique)])
    assert head == {tss.key(a) for a in unique}
    # a random order within the group, not the index order
    assert [tss.index_of(a) for a in order[: len(unique)]] != sorted(tss.index_of(a) for a in unique)
    assert order == reproduce.scoring_order(tss, unique)


def test_naslib_comparison_pairs_the_same_cells_and_skips_failed_scores(reproduce, tmp_path):
    from nas.searchspaces import get_space
    from nas.store import StoredScore

    tss = get_space("nats-tss")
    cells = [tss.format(tss.from_index(i)) for i in range(8)]
    rng = np.random.default_rng(0)
    accuracy = {d: dict(zip(cells, rng.random(8))) for d in ("cifar10", "cifar100", "imagenet16-120")}
    theirs = {d: dict(zip(cells, rng.random(8))) for d in ("cifar10", "cifar100", "imagenet16-120")}

    class Table:
        def accuracies(self, archs, *, dataset, split, epochs):
            assert (split, epochs) == ("test", 200)
            return np.array([accuracy[dataset][tss.format(a)] for a in archs])

    (tmp_path / "reference").mkdir()
    columns = list(reproduce.NASLIB_COLUMNS.values())
    with open(tmp_path / "reference" / "naslib_zc_nb201.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "arch_str", *columns])
        for ours_name, file_name in reproduce.NASLIB_DATASETS.items():
            for i, cell in enumerate(cells):
                value = "" if (ours_name == "cifar100" and i == 7) else str(float(theirs[ours_name][cell]))
                writer.writerow([file_name, cell, *[value] * len(columns)])
    ours = {"synflow": {tss.key(tss.resolve(c)): StoredScore(float(i), 0.0, "ok", "") for i, c in enumerate(cells[:6])}}
    ours["synflow"][tss.key(tss.resolve(cells[5]))] = StoredScore(float("nan"), 0.0, "failed", "constant")

    result = reproduce.naslib_results(tmp_path, tss, Table(), ours)["synflow"]
    both = cells[:5]  # cell 5 failed with us, 6 and 7 never scored
    assert result.n == 5
    assert result.agreement == pytest.approx(spearmanr([theirs["cifar10"][c] for c in both], range(5)).statistic)
    assert result.ours_tau == pytest.approx(kendalltau(range(5), [accuracy["cifar10"][c] for c in both]).statistic)
    n, own, c10 = result.inputs["cifar100"]
    assert n == 7  # their empty CIFAR-100 value is left out
    a = [accuracy["cifar100"][c] for c in cells[:7]]
    assert own == pytest.approx(kendalltau([theirs["cifar100"][c] for c in cells[:7]], a).statistic)
    assert c10 == pytest.approx(kendalltau([theirs["cifar10"][c] for c in cells[:7]], a).statistic)
    assert reproduce.naslib_results(tmp_path, tss, Table(), {})["snip"].n == 0
    lines = reproduce.section_naslib(reproduce.naslib_results(tmp_path, tss, Table(), ours))
    assert any(line.startswith("| `synflow` | 5 |") for line in lines)


def test_own_network_stages_score_each_datasets_network_and_report_coverage(reproduce):
    stage = reproduce.Stage("x", "nats-tss", [], reproduce.OWN_NETWORK, "imagenet16-120")
    spec = stage.inputs(common=None)
    assert (spec.source, spec.info.num_classes, spec.info.input_size) == ("gaussian", 120, 16)
    assert reproduce.Stage("y", "nats-tss", [], []).inputs(common="real") == "real"
    # the default ensemble and az_nas are computable from what these stages score
    from nas.proxies import get_proxy

    for name in ("ensemble", "az_nas"):
        assert {c.label() for c in get_proxy(name).components} <= set(reproduce.OWN_NETWORK)

    def record(label, dataset, n, tau):
        return {"proxy": label, "dataset": dataset, "n_total": n, "kendall_tau": tau, "kendall_tau_ci": None}

    own = {
        "cifar100": [record("ensemble", "cifar100", 9445, 0.731), record("az_nas", "cifar100", 120, 0.64)],
        "imagenet16-120": [],
    }
    ten = {
        "cifar100": [record("ensemble", "cifar100", 9445, 0.718), record("az_nas", "cifar100", 120, 0.61)],
        "imagenet16-120": [],
    }
    lines = reproduce.section_own_network(own, ten, 9445)
    ensemble = next(line for line in lines if line.startswith("| `ensemble`"))
    assert "0.731 / 0.718 / 0.753 (VKDNW_agg) |" in ensemble
    assert "– / – / 0.743 (VKDNW_agg)" in ensemble
    az = next(line for line in lines if line.startswith("| `az_nas`"))
    # a cut-short stage: its random head, beside the 10-class network on the same cells
    assert "0.640 / 0.610 / 0.696 (AZ-NAS, VKDNW's re-run); 120 of 9,445 (random subset)" in az


def test_drawn_subset_keeps_only_cells_random_draws_chose(reproduce):
    order = ["a", "b", "c", "d", "e", "f"]
    # a, b: the scored head of the order; e: a random set's cell; d: scored out of turn (c is
    # missing) and f: a user's own pick, neither from a draw
    assert reproduce.drawn_subset(order, {"e", "x"}, {"a", "b", "d", "e", "f"}) == ["a", "b", "e"]
    assert reproduce.drawn_subset(order, set(), set(order)) == order
    assert reproduce.drawn_subset(order, set(), {"b"}) == []


def test_nb101_reading_quotes_this_runs_figures_beside_the_published_ones(reproduce):
    def record(label, tau, rho, n=1000):
        return {"proxy": label, "dataset": "cifar10", "n": n, "kendall_tau": tau, "spearman": rho}

    records = {
        "near": record("near", 0.388, 0.546),
        "synflow": record("synflow", 0.288, 0.426, 338),
        "snip": record("snip", -0.110, -0.159),
    }
    near, baselines = reproduce.nb101_reading(records, {})
    assert "**NEAR is 0.13 below its paper's tau 0.52 here** (rho 0.546 against 0.70)" in near
    assert "`synflow` 0.426 (|rho| 0.372; ours on 338 cells)" in baselines
    assert "`snip` -0.159 (|rho| 0.164)" in baselines
    assert "`snip` ranks NB101 cells inversely" in baselines and "`synflow` rank" not in baselines
    assert "`snip`, `synflow` are within 0.1" in baselines
    assert "grasp" not in baselines  # no published comparison for a proxy this run has not scored
    assert reproduce.nb101_reading({}, {}) == []


def test_nb101_reading_explains_a_far_baseline_with_the_measured_batch_effect(reproduce):
    def record(label, tau, rho, n=1000):
        return {"proxy": label, "dataset": "cifar10", "n": n, "kendall_tau": tau, "spearman": rho}

    records = {
        "jacob_cov": record("jacob_cov", -0.104, -0.157),
        "near": record("near", 0.388, 0.546),
        "ensemble": record("ensemble", 0.584, 0.781),
        "az_nas": record("az_nas", 0.545, 0.740),
    }
    paragraphs = reproduce.nb101_reading(records, {})
    jacob = next(p for p in paragraphs if p.startswith("**`jacob_cov` is far"))
    assert "(|rho| 0.157 against 0.378)" in jacob and "measured" not in jacob
    ensemble = paragraphs[-1]
    assert "tau 0.584 (rho 0.781), against 0.545 for AZ-NAS's own aggregate and 0.388 for the best" in ensemble
    assert "(`near`), and above the NEAR paper's NB101 tau 0.52" in ensemble

    same = {64: record("jacob_cov", -0.114, -0.167, 200), 256: record("jacob_cov", -0.10, -0.15, 200)}
    jacob = reproduce.jacob_cov_reading(-0.157, same)
    assert "on the first 200 subset cells jacob_cov with batch 256 reaches tau -0.100 (rho -0.150)" in jacob
    assert "(its rho moves by +0.02): the batch size does not explain the gap" in jacob
    flipped = {64: same[64], 256: record("jacob_cov", 0.2, 0.3, 200)}
    assert "the batch size moves its rho by +0.47, and explains" in reproduce.jacob_cov_reading(-0.157, flipped)


def test_a_stage_can_score_the_common_images_in_another_batch_size(reproduce):
    from nas.data import parse_data_arg

    common = parse_data_arg("gaussian", batch_size=64, seed=0)
    stage = reproduce.Stage("b", "nb101", [], ["jacob_cov", "snip"], batch_size=256)
    assert stage.inputs(common) == parse_data_arg("gaussian", batch_size=256, seed=0)
    stage.max_workers = 1
    narrowed = stage.only(["snip"])
    assert (narrowed.proxies, narrowed.inputs(common).batch_size, narrowed.max_workers) == (["snip"], 256, 1)


def test_archived_scores_are_imported_checked_and_a_protocol_that_differs_is_discarded(reproduce, tmp_path):
    from dataclasses import replace

    from nas.archive import archive_files, read_archive, write_archive
    from nas.data import parse_data_arg
    from nas.errors import NasError
    from nas.proxies import ProxyResult
    from nas.scoring import score_many, select_archs
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    space = get_space("nats-tss")
    archs = select_archs(space, 4, seed=1)
    plan = [reproduce.Stage("tiny", "nats-tss", archs, ["params", "synflow"])]
    inputs = parse_data_arg("gaussian")
    first = ScoreStore(f"sqlite:///{tmp_path / 'first.db'}")
    score_many(reproduce.stage_scorer(plan[0], inputs), archs, first)
    folder = tmp_path / "scores"
    reproduce.save_archive(folder, first, reproduce.reproduction_digests(plan, inputs))
    reproduce.save_archive(folder, first, reproduce.reproduction_digests(plan, inputs))  # nothing new
    assert len(archive_files(folder)) == 1

    fresh = ScoreStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    sentence = reproduce.import_archives(folder, plan, inputs, fresh)
    assert sentence.startswith("8 scores came from the score archives")
    assert "recomputed 8 of them (8 per protocol of the cheap proxies, 3 of the others" in sentence
    assert "2 of 2 protocols gave identical scores" in sentence
    assert len(fresh.rows()) == 8
    again = reproduce.import_archives(folder, plan, inputs, fresh)  # the store has them all
    assert again.startswith("The store already held every score of the archives in `docs/scores` (8)")

    rows = read_archive(archive_files(folder)[0])

    def archive_with(factor: float, name: str):
        """The archive with its synflow scores multiplied by ``factor``."""
        changed = [r if r.proxy != "synflow" else replace(r, score=r.score * factor) for r in rows.rows]
        (folder / name).mkdir()
        write_archive(folder / name / "a.jsonl.gz", changed, rows.protocols)
        return folder / name

    # Scores that are not this code's (twice the value): discarded under the default, params kept.
    third = ScoreStore(f"sqlite:///{tmp_path / 'third.db'}")
    sentence = reproduce.import_archives(archive_with(2.0, "double"), plan, inputs, third)
    assert sentence.startswith("4 scores came") and "discarded: synflow (nats-tss)" in sentence
    assert {r.proxy for r in third.rows()} == {"params"}

    # Another machine's rounding (1e-9 relative, within synflow's tolerance): used under tolerant,
    # discarded under strict, not even looked at under off. Discarding is the mode's, never silent.
    noisy = archive_with(1 + 1e-9, "noisy")
    for mode, proxies in (("tolerant", {"params", "synflow"}), ("strict", {"params"}), ("off", {"params", "synflow"})):
        store = ScoreStore(f"sqlite:///{tmp_path / (mode + '.db')}")
        sentence = reproduce.import_archives(noisy, plan, inputs, store, verify=mode)
        assert {r.proxy for r in store.rows()} == proxies, mode
    summary = reproduce.import_archives(noisy, plan, inputs, ScoreStore(f"sqlite:///{tmp_path / 'again.db'}"))
    assert "1 differed within their proxies' tolerances, closest to them synflow (nats-tss) by 1.0e-09" in summary
    with pytest.raises(NasError, match="--verify must be one of strict, tolerant, off"):
        reproduce.import_archives(noisy, plan, inputs, store, verify="loose")

    # A store whose own score differs from the archive's: a stop, not a silent choice.
    fresh.put("nats-tss", rows.rows[0].arch, rows.rows[0].protocol, rows.rows[0].proxy, ProxyResult(-1.0, 0.1))
    with pytest.raises(NasError, match="differ from the archives"):
        reproduce.import_archives(folder, plan, inputs, fresh)


def test_a_differing_protocol_reports_whether_the_ranking_against_accuracy_moves(reproduce):
    from nas.archive import Check, ProtocolCheck
    from nas.records import Score

    class Table:
        accuracies = {"a": 70.0, "b": 80.0, "c": 90.0}

        def __contains__(self, key):
            return key in self.accuracies

        def accuracy(self, key, *, dataset, split, epochs):
            assert (dataset, split, epochs) == ("cifar10", "valid", 108)
            return self.accuracies[key]

    archived = {"a": 1.0, "b": 2.0, "c": 3.0}
    fresh = {"a": 1.0, "b": 3.5, "c": 3.0}  # swaps b and c
    checks = [Check(Score(archived[k], 0, arch=k), Score(fresh[k], 0, arch=k)) for k in "abc"]
    check = ProtocolCheck("nb101", "d" * 16, "zico", 5e-2, checks)
    assert not check.identical and check.max_difference == pytest.approx(1.5 / 3.5)
    assert check.rank_agreement == pytest.approx(1 / 3)
    assert "discarded (tolerant)" in check.line("tolerant") and check.passes("off")
    assert reproduce.accuracy_shift(check, {"nb101": Table()}) == (
        "; over those 3 cells tau against cifar10 valid accuracy 1.00 archived, 0.33 recomputed"
    )


@pytest.fixture(scope="module")
def nb101_subset_table(shared_data, tmp_path_factory):
    """The 1,000-cell NB101 subset as a table: a small stand-in for the whole-space table."""
    from nas.benchmarks import BenchmarkTable, import_benchmark

    from conftest import require

    source = require(shared_data / "nb101" / "nb101_subset_1000.csv")
    return BenchmarkTable(import_benchmark("nb101", str(source), out=tmp_path_factory.mktemp("nb101") / "t.h5"))


def test_full_table_stages_draw_fixed_cells_and_the_sss_sample_heads_the_sss_order(reproduce, nb101_subset_table):
    from nas.searchspaces import get_space

    sss, nb101 = get_space("nats-sss"), get_space("nb101")
    assert reproduce.full_table_stages({}) == []  # no table, no stage
    order = reproduce.sss_order(sss)
    assert sorted(sss.index_of(a) for a in order) == list(range(32768))
    assert [sss.index_of(a) for a in order[:3]] == [int(i) for i in np.random.default_rng(3).permutation(32768)[:3]]
    drawn = reproduce.nb101_sample(nb101_subset_table, 50)
    again = reproduce.nb101_sample(nb101_subset_table, 50)
    assert [nb101.key(a) for a in drawn] == [nb101.key(a) for a in again]
    assert len({nb101.key(a) for a in drawn}) == 50 and all(nb101.key(a) in nb101_subset_table for a in drawn)
    stages = reproduce.full_table_stages({"nats-sss-hp90": object(), "nb101-all": nb101_subset_table})
    by_name = {s.name: s for s in stages}
    assert [s.name for s in stages] == [
        "sss-all-cheap",
        "sss-sample-costly",
        "sss-all-az",
        "nb101-sample-cheap",
        "nb101-sample-costly",
    ]
    assert by_name["sss-sample-costly"].archs == by_name["sss-all-cheap"].archs[: reproduce.SSS_SAMPLE]
    assert not set(by_name["sss-sample-costly"].proxies) & set(reproduce.SSS_EVERY_CHEAP + reproduce.AZ)
    assert set(reproduce.ALL) == set(
        by_name["sss-all-cheap"].proxies + by_name["sss-sample-costly"].proxies + by_name["sss-all-az"].proxies
    )


def test_spearman_interval_and_the_whole_space_check(reproduce, nb101_subset_table):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    rho, low, high = reproduce.spearman_ci(x, y, 200)
    assert rho == pytest.approx(spearmanr(x, y).statistic) and low < rho < high

    class Whole:  # a space of 2,000 cells whose accuracy follows the parameter count loosely
        keys = [f"k{i}" for i in range(2000)]
        params = rng.normal(size=2000)
        acc = params + 2 * rng.normal(size=2000)

        def cost_names(self):
            return [("cifar10", "params")]

        def combinations(self):
            return [("cifar10", "test", 108)]

        def cost(self, key, name, *, dataset):
            return self.params[int(key[1:])]

        def column(self, *, dataset, split, epochs):
            return self.acc

        def row_of(self, key):
            return int(key[1:])

    whole = spearmanr(Whole.params, Whole.acc).statistic
    text = reproduce.whole_space_params(Whole(), [f"k{i}" for i in range(0, 2000, 2)], 300)
    assert f"rho {whole:.3f} with test accuracy over all 2,000 cells" in text and "lies inside" in text
    assert reproduce.whole_space_params(nb101_subset_table, [], 10) == ""  # no test column: no claim


def test_proxies_that_beat_the_baseline_need_their_interval_above_its_tau(reproduce):
    def record(proxy, tau, ci, n=3000):
        return {"proxy": proxy, "dataset": "cifar10", "kendall_tau": tau, "kendall_tau_ci": ci, "n_total": n}

    records = [
        record("params", 0.60, [0.55, 0.65]),
        record("near", 0.70, [0.62, 0.78]),
        record("synflow", 0.66, [0.58, 0.72]),  # above in the mean, not by its interval
        record("zico", 0.90, [0.85, 0.95], n=300),  # on other cells: not compared
    ]
    assert reproduce.beats(records, "params", "cifar10") == ["near"]
    assert reproduce.beats(records, "flops", "cifar10") == []


def test_a_table_no_proxy_has_scored_yet_says_so(reproduce):
    lines = reproduce.section_table("NB101", "Cells: the subset.", [], ["cifar10"], 1000, published=False)
    assert lines[0] == "## NB101" and not any(line.startswith("|") for line in lines)
    assert "Not scored yet" in "\n".join(lines)
    record = {
        "proxy": "near",
        "dataset": "cifar10",
        "n": 3,
        "n_total": 3,
        "kendall_tau": 0.5,
        "kendall_tau_ci": [0.1, 0.9],
    }
    table = reproduce.section_table("NB101", "Cells.", [record], ["cifar10"], 3, published=False)
    assert any(line.startswith("| `near` |") for line in table)


def test_the_plan_projects_the_missing_scores_cost_from_the_stored_seconds(reproduce, tmp_path):
    from nas.data import InputSpec
    from nas.proxies import ProxyResult
    from nas.searchspaces import get_space
    from nas.store import ScoreStore

    tss = get_space("nats-tss")
    cells = [tss.from_index(i) for i in (3, 30, 300)]
    keys = [tss.key(a) for a in cells]
    inputs = InputSpec()
    sized = reproduce.Stage("sized", "nats-tss", cells, ["params", "synflow"])
    other = reproduce.Stage("other", "nats-tss", cells, ["near", "meco"])
    store = ScoreStore(f"sqlite:///{tmp_path / 'plan.db'}")
    scorer = reproduce.stage_scorer(sized, inputs)
    params, synflow = scorer.proxies
    for key in keys:
        store.put("nats-tss", key, scorer.digest(params), "params", ProxyResult(1.0, 0.0))
    store.put("nats-tss", keys[0], scorer.digest(synflow), "synflow", ProxyResult(1.0, 1800.0))
    # near was timed under another protocol only: a rougher guess, marked; meco never
    store.put("nats-tss", keys[0], "an-older-near", "near", ProxyResult(1.0, 3600.0))

    lines = reproduce.projection([sized, other], inputs, store, workers=2)
    assert "| sized | synflow | 2 | 1800.00 | 1.0 |" in lines
    assert "| other | near | 3 | ~3600.00 | 3.0 |" in lines
    assert "| other | meco | 3 | ? | ? |" in lines
    assert not any("| params |" in line for line in lines)  # nothing missing
    assert lines[-1] == (
        "8 scores missing: about 4.0 core-hours, 2.0 wall-hours on 2 worker(s); "
        "not counted, never timed here: other meco"
    )
    for key in keys[1:]:
        store.put("nats-tss", key, scorer.digest(synflow), "synflow", ProxyResult(1.0, 1.0))
    assert reproduce.projection([sized], inputs, store, workers=2) == ["every score of these stages is stored"]
