"""`nas correlate`: statistics against scipy, the JSON contract, failed scores, unique cells,
reports, and the data README's reference figure through the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from nas import stats
from nas.benchmarks import BenchmarkTable, TableData, import_benchmark, write_table
from nas.cli import main
from nas.correlation import correlate, proxy_direction, select_population
from nas.errors import NasError
from nas.proxies import ProxyResult, register_proxy
from nas.searchspaces import get_space

from conftest import require

TSS = get_space("nats-tss")
RESULT_KEYS = {"proxy", "dataset", "split", "n", "kendall_tau", "kendall_tau_ci", "spearman", "topk_precision"}


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    """Synthetic accuracies for every TSS cell: log(params) plus noise on two datasets (test
    split, 200 epochs); cifar10 has no record for the cells with index % 97 == 5."""
    rng = np.random.default_rng(1)
    cells = list(TSS)
    params = np.array([TSS.num_params(c) for c in cells], dtype=np.float64)
    base = 60 + 5 * np.log(params / params.min())
    c10 = base + rng.normal(0, 3, len(cells))
    c10[np.arange(len(cells)) % 97 == 5] = np.nan
    c100 = base - 25 + rng.normal(0, 4, len(cells))
    data = TableData(
        space="nats-tss",
        keys=[str(c) for c in cells],
        indices=np.arange(len(cells)),
        provenance={"source": "synthetic (tests)", "importer": "test"},
    )
    data.add_metric(("cifar10", "test", 200), c10, "synthetic c10")
    data.add_metric(("cifar100", "test", 200), c100, "synthetic c100")
    return write_table(data, tmp_path_factory.mktemp("table") / "tiny.h5")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the computation ---------------------------------------------------------------------------------
def test_statistics_equal_scipy_and_failed_scores_are_counted(tiny_table):
    table = BenchmarkTable(tiny_table)
    archs = [TSS.from_index(i) for i in range(0, 15625, 50)]  # 313 cells, 3 without a c10 accuracy
    keys = [str(a) for a in archs]
    rng = np.random.default_rng(0)
    values = {k: float(TSS.num_params(a)) * math.exp(rng.normal(0, 0.3)) for k, a in zip(keys, archs)}
    results = {k: ProxyResult(v, 0.0) for k, v in values.items()}
    results[keys[1]] = ProxyResult(math.nan, 0.0, "failed", "boom")
    results[keys[2]] = ProxyResult(math.inf, 0.0, "failed", "non-finite score inf")
    del results[keys[3]]  # never scored: failed as well
    corr = correlate(
        TSS,
        {"noisy": results},
        table,
        datasets=["cifar10", "cifar-100"],
        split="test",
        epochs=200,
        keys=keys,
        resamples=200,
        seed=0,
    )
    assert corr.datasets == ["cifar10", "cifar100"]
    c10 = corr.record("noisy", "cifar10")
    acc = table.column(dataset="cifar10", split="test", epochs=200)
    ok = [k for k in keys if k in results and results[k].ok and not math.isnan(acc[table.row_of(k)])]
    s = np.array([values[k] for k in ok])
    a = np.array([acc[table.row_of(k)] for k in ok])
    no_acc = sum(math.isnan(acc[table.row_of(k)]) for k in keys)
    assert no_acc == 3 and (c10["n"], c10["n_failed"], c10["n_no_accuracy"], c10["n_total"]) == (len(ok), 3, 3, 313)
    assert c10["kendall_tau"] == pytest.approx(sps.kendalltau(s, a).statistic, abs=1e-12)
    assert c10["spearman"] == pytest.approx(sps.spearmanr(s, a).statistic, abs=1e-12)
    low, high = c10["kendall_tau_ci"]
    assert low < c10["kendall_tau"] < high and high - low < 0.2
    assert c10["topk_precision"]["5%"] == pytest.approx(stats.topk_precision(s, a, 0.05))  # no ties here
    assert c10["topk_k"] == {"1%": 4, "5%": 16, "10%": 31}
    assert c10["ndcg"] == pytest.approx(stats.ndcg(s, a, top=100))
    assert corr.record("noisy", "cifar100")["n_no_accuracy"] == 0
    assert corr.failures["noisy"][:3] == [(keys[1], "boom"), (keys[2], "non-finite score inf"), (keys[3], "no score")]

    worst = correlate(
        TSS,
        {"noisy": results},
        table,
        datasets=["cifar10"],
        split="test",
        epochs=200,
        keys=keys,
        failed="worst",
        resamples=0,
    )
    w = worst.record("noisy", "cifar10")
    assert (w["n"], w["n_failed"], w["kendall_tau_ci"]) == (len(ok) + 3, 3, None)
    has_acc = [k for k in keys if not math.isnan(acc[table.row_of(k)])]
    ranked = np.array([values[k] if k in results and results[k].ok else -1.0 for k in has_acc])
    expected = sps.kendalltau(ranked, [acc[table.row_of(k)] for k in has_acc]).statistic
    assert w["kendall_tau"] == pytest.approx(expected, abs=1e-12)
    assert json.loads(json.dumps(worst.to_json()))["results"][0]["kendall_tau_ci"] is None


def test_direction_of_lower_is_better_and_ensemble_labels(tiny_table):
    @register_proxy("corr_test_smaller", higher_is_better=False)
    def smaller(model, batch):
        return 0.0

    assert proxy_direction("corr_test_smaller") is False and proxy_direction("params") is True
    assert proxy_direction("ensemble(near,zico)") is True
    table = BenchmarkTable(tiny_table)
    keys = [str(TSS.from_index(i)) for i in range(0, 15625, 125)]
    params = {k: float(TSS.num_params(TSS.parse(k))) for k in keys}
    corr = correlate(
        TSS,
        {"params": params, "corr_test_smaller": {k: -v for k, v in params.items()}},
        table,
        datasets=["cifar100"],
        split="test",
        epochs=200,
        resamples=0,
    )
    a, b = corr.records
    assert a["kendall_tau"] == pytest.approx(b["kendall_tau"]) and a["kendall_tau"] > 0.5
    assert b["higher_is_better"] is False and corr.protocol["proxies"][1]["higher_is_better"] is False


def test_tie_aware_topk_and_spearman_matrix():
    x = np.array([5.0, 4.0, 4.0, 4.0, 1.0])
    assert stats.topk_membership(x, 2).tolist() == pytest.approx([1, 1 / 3, 1 / 3, 1 / 3, 0])
    acc = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # top 2 by accuracy: items 3, 4; item 3 is in the score's top 2 with probability 1/3
    assert stats.topk_precision_ties(x, acc, 0.4) == pytest.approx((1 / 3) / 2)
    rng = np.random.default_rng(0)
    y = rng.random(50)
    noisy = y + rng.normal(0, 0.1, 50)
    assert stats.topk_precision_ties(y, noisy, 0.1) == stats.topk_precision(y, noisy, 0.1)  # no ties
    z = rng.random((40, 3))
    np.testing.assert_allclose(stats.spearman_matrix(z), sps.spearmanr(z).statistic)
    assert stats.spearman_matrix(z[:, :2])[0, 1] == pytest.approx(sps.spearmanr(z[:, 0], z[:, 1]).statistic)


def test_unique_cells():
    every, info = select_population(TSS, "all", 0, unique="pruned")
    assert len(every) == 9445 and info["classes"] == 9445 and every[0] == TSS.from_index(0)
    assert len(select_population(TSS, "all", 0, unique="isomorphic")[0]) == 6466
    sample, info = select_population(TSS, 300, 3, unique="pruned")
    assert len({TSS.unique_key(a, "pruned") for a in sample}) == 300 and info["n"] == 300
    assert sample == select_population(TSS, 300, 3, unique="pruned")[0]
    # explicit architectures: the first of each class stays (index 0 and its pruned twins)
    twins = [
        str(i)
        for i in range(15625)
        if TSS.unique_key(TSS.from_index(i), "pruned") == TSS.unique_key(TSS.from_index(0), "pruned")
    ][:3]
    chosen, _ = select_population(TSS, None, 0, twins + ["9930"], unique="pruned")
    assert chosen == [TSS.from_index(int(twins[0])), TSS.from_index(9930)]
    with pytest.raises(NasError, match="nats-sss space has no notion"):
        select_population(get_space("nats-sss"), 10, 0, unique="pruned")
    with pytest.raises(NasError, match="unknown reading 'both'"):
        select_population(TSS, 10, 0, unique="both")
    with pytest.raises(NasError, match=r"out of range \(1..6466"):
        select_population(TSS, 7000, 0, unique="isomorphic")


# -- the command -------------------------------------------------------------------------------------
def test_cli_json_report_and_unique(tiny_table, tmp_path, capsys):
    base = [
        "correlate",
        "--space",
        "nats-tss",
        "--proxy",
        "params",
        "--table",
        tiny_table,
        "--split",
        "test",
        "--epochs",
        "200",
        "--quiet",
        "--bootstrap",
        "100",
    ]
    out_json = tmp_path / "r.json"
    code, out, err = run(
        capsys,
        *base,
        "--dataset",
        "cifar10",
        "--sample",
        40,
        "--seed",
        2,
        "--json",
        out_json,
        "--report",
        tmp_path / "report",
    )
    assert code == 0, err
    assert "params" in out and "tau-b" in out and "P@5%" in out and "wrote" in out
    payload = json.loads(out_json.read_text())
    assert set(payload) >= {"protocol", "results"}
    (record,) = payload["results"]
    assert RESULT_KEYS <= set(record) and record["proxy"] == "params" and record["split"] == "test"
    assert record["n"] + record["n_failed"] + record["n_no_accuracy"] == 40
    assert set(record["topk_precision"]) == {"1%", "5%", "10%"} and len(record["kendall_tau_ci"]) == 2
    proto = payload["protocol"]
    assert proto["archs"]["selection"] == "sample" and proto["archs"]["seed"] == 2
    assert proto["accuracy"]["epochs"] == 200 and proto["failed_policy"] == "drop"
    assert proto["proxies"][0]["protocol"]["inputs"]["source"] == "gaussian"
    report = tmp_path / "report"
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == ["scatter_params_cifar10.png", "spearman.png", "topk_cifar10.png"]
    assert all((report / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    markdown = (report / "report.md").read_text()
    assert all(f"]({p})" in markdown for p in pngs) and "| `params` | cifar10 | " in markdown
    assert json.loads((report / "results.json").read_text())["results"] == payload["results"]

    # JSON on stdout: the same records (the scores now come from the store)
    code, out, _ = run(capsys, *base, "--dataset", "cifar10", "--sample", 40, "--seed", 2, "--json")
    again = json.loads(out)
    assert code == 0 and again["results"] == payload["results"] and again["wall_time_s"]["scoring"] < 2

    # --unique (default reading: pruned) keeps one cell per class
    code, out, _ = run(
        capsys, *base, "--dataset", "cifar100", "--archs", "0,1,2,3,4,5,6,7,8,9,9930", "--unique", "--json"
    )
    unique = json.loads(out)
    classes = {TSS.unique_key(TSS.from_index(i), "pruned") for i in (*range(10), 9930)}
    assert unique["protocol"]["archs"]["unique"] == "pruned"
    assert unique["results"][0]["n"] == unique["protocol"]["n_archs"] == len(classes)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--split", "test", "--epochs", "200"],
            (
                "--dataset is required (no defaults); the nats-tss table has "
                "dataset/split/epochs: cifar10/test/200, cifar100/test/200"
            ),
        ),
        (["--dataset", "cifar10", "--epochs", "200"], "--split is required"),
        (["--dataset", "cifar10", "--split", "test"], "--epochs is required"),
        (
            ["--dataset", "cifar10", "--split", "valid", "--epochs", "200"],
            "has no cifar10/valid/200; it has dataset/split/epochs: cifar10/test/200",
        ),
        (["--dataset", "imagenet16", "--split", "test", "--epochs", "200"], "has no imagenet16-120/test/200"),
        (["--dataset", "cifar10", "--split", "test", "--epochs", "two"], "--epochs must be an integer"),
        (
            ["--dataset", "cifar10", "--split", "test", "--epochs", "200", "--bootstrap", "-1"],
            "--bootstrap must be >= 0",
        ),
    ],
)
def test_missing_or_unknown_entries_are_one_line_errors(tiny_table, capsys, argv, message):
    code, out, err = run(
        capsys, "correlate", "--space", "nats-tss", "--proxy", "params", "--sample", 5, "--table", tiny_table, *argv
    )
    assert code == 2 and out == ""
    assert err.startswith("nas: error: ") and message in err and err.count("\n") == 1


def test_unique_on_a_space_without_equal_cells_is_an_error(tmp_path, capsys):
    data = TableData(space="nats-sss", keys=["8:8:8:8:8"], indices=np.array([0]))
    data.add_metric(("cifar10", "test", 90), np.array([50.0]), "synthetic")
    table = write_table(data, tmp_path / "sss.h5")
    code, _, err = run(
        capsys,
        "correlate",
        "--space",
        "nats-sss",
        "--proxy",
        "params",
        "--sample",
        5,
        "--table",
        table,
        "--dataset",
        "cifar10",
        "--split",
        "test",
        "--epochs",
        90,
        "--unique",
    )
    assert code == 2 and "the nats-sss space has no notion of functionally equal cells" in err


def test_reference_figure_through_the_command(shared_data, tmp_path, capsys):
    """The data README: tau-b of params vs cifar10_test over all 15,625 cells is 0.577 (recorded
    parameter counts). Our params proxy counts the built network's parameters; the store is
    filled from the closed form (checked equal to the proxy here), so the command runs in seconds."""
    import sqlalchemy as sa

    from nas.data import parse_data_arg
    from nas.proxies import get_proxy
    from nas.scoring import Scorer
    from nas.store import SCORES, ScoreStore

    csv_path = require(shared_data / "nb201" / "nb201_accuracies.csv")
    table = import_benchmark("nats-tss", str(csv_path), epochs=200, out=tmp_path / "nb201.h5")
    store = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")
    proxy = get_proxy("params")
    scorer = Scorer(TSS, [proxy], parse_data_arg("gaussian"), seed=0)
    for index in (0, 9930):
        cell = TSS.from_index(index)
        assert scorer.score(cell)["params"].score == TSS.num_params(cell)
    digest = scorer.digest(proxy)
    rows = [
        {
            "space": "nats-tss",
            "arch": str(c),
            "protocol": digest,
            "proxy": "params",
            "score": float(TSS.num_params(c)),
            "seconds": 0.0,
            "status": "ok",
            "reason": "",
            "created": 0.0,
        }
        for c in TSS
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(SCORES), rows)
    code, out, err = run(
        capsys,
        "correlate",
        "--space",
        "nats-tss",
        "--proxy",
        "params",
        "--sample",
        "all",
        "--dataset",
        "cifar10",
        "--split",
        "test",
        "--epochs",
        200,
        "--table",
        table,
        "--store",
        store.url,
        "--bootstrap",
        20,
        "--json",
        "--quiet",
    )
    assert code == 0, err
    (record,) = json.loads(out)["results"]
    assert record["n"] == 15625 and record["n_failed"] == 0 and record["n_no_accuracy"] == 0
    assert abs(record["kendall_tau"] - 0.577) < 0.002  # 0.5778: 204 cells' recorded counts differ
    acc = BenchmarkTable(table).column(dataset="cifar10", split="test", epochs=200)
    ours = [TSS.num_params(c) for c in TSS]
    assert record["kendall_tau"] == pytest.approx(sps.kendalltau(ours, acc).statistic, abs=1e-12)
