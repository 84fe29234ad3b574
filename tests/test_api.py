"""The Python API (``import nas``): it does what the CLI does, on the same store, with the same
numbers; importing it does nothing; errors name parameters, the CLI spells them as flags."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import optuna
import pytest
from scipy import stats as sps

import nas
from nas.cli import main
from nas.errors import NasError

from conftest import require


def test_import_nas_loads_nothing_heavy():
    code = (
        "import sys, nas\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'optuna', 'h5py')"
        " or m.startswith('nas.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(nas.__all__) >= {
        "score",
        "correlate",
        "search",
        "get_space",
        "get_proxy",
        "list_proxies",
        "open_table",
        "Score",
        "ScoreTable",
        "SearchRun",
    }


def test_score_returns_a_table_equal_to_the_cli(capsys):
    table = nas.score("nats-tss", "params,synflow", archs=[0, 9930, "13714"])
    assert table.labels == ["params", "synflow"] and len(table.arch_keys) == 3
    assert table.values_of("params") == [129306.0, 1288506.0, 1073466.0]
    column = table.columns["synflow"]
    assert column.higher_is_better and column.protocol["proxy"]["name"] == "synflow" and len(column.digest) == 16
    assert all(s.ok and s.arch == key and s.protocol == column.digest for key, s in column.scores.items())
    assert main(["score", "--space", "nats-tss", "--proxy", "synflow", "--archs", "0,9930,13714", "--json"]) == 0
    cli = {r["arch"]: r["score"] for r in json.loads(capsys.readouterr().out)["scores"]}
    assert cli == dict(zip(table.arch_keys, table.values_of("synflow")))  # the same store, the same values


def test_correlate_and_search_through_the_api(shared_data, tmp_path):
    csv_path = require(shared_data / "nb201" / "nb201_accuracies.csv")
    nas.import_benchmark("nats-tss", str(csv_path), epochs=200)
    archs = list(range(0, 15625, 157))
    scores = nas.score("nats-tss", ["params", nas.get_proxy("flops")], archs=archs)
    corr = nas.correlate(scores, dataset="cifar10", split="test", epochs=200, bootstrap=0)
    record = corr.records[0]
    with open(csv_path, newline="") as f:
        accuracy = {int(r["index"]): float(r["cifar10_test"]) for r in csv.DictReader(f)}
    expected = sps.kendalltau(scores.values_of("params"), [accuracy[i] for i in archs]).statistic
    assert record["proxy"] == "params" and record["kendall_tau"] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(NasError, match="split is required"):
        nas.correlate(scores, dataset="cifar10", split=None, epochs=200)

    run = nas.search("nats-tss", "params", sampler="random", trials=8, seed=3)
    assert len(run.evaluations) == 8 and run.complete
    report = run.report(dataset="cifar10", epochs=200)
    best = report["best"][0]
    assert best["accuracy"]["test"] == accuracy[best["index"]]
    assert report["report"]["regret"]["test"] == pytest.approx(
        max(accuracy.values()) - accuracy[best["index"]], abs=1e-4
    )
    with pytest.raises(NasError, match="name the report's dataset and epochs"):
        run.report()
    png = run.plot(tmp_path / "search.png", dataset="cifar10", epochs=200)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_search_takes_an_optuna_sampler_object(tmp_path):
    run = nas.search(
        "nats-tss",
        "params",
        sampler=optuna.samplers.QMCSampler(seed=0),
        trials=4,
        storage=f"sqlite:///{tmp_path / 'studies.db'}",
    )
    assert len(run.evaluations) == 4 and run.study.startswith("nats-tss-params-optuna.samplers")
    with pytest.raises(NasError, match="sampler must be a name or an optuna.samplers.BaseSampler"):
        nas.search("nats-tss", "params", sampler=42, trials=2)


def test_library_errors_name_parameters_and_the_cli_spells_flags(capsys):
    with pytest.raises(NasError, match=r"^sample must be a number or 'all', got 'many'$"):
        nas.score("nats-tss", "params", sample="many")
    assert main(["score", "--space", "nats-tss", "--proxy", "params", "--sample", "many"]) == 2
    assert capsys.readouterr().err == "nas: error: --sample must be a number or 'all', got 'many'\n"
    assert main(["search", "--space", "nats-tss", "--proxy", "params", "--max-repeats", "0"]) == 2
    assert capsys.readouterr().err == "nas: error: --max-repeats must be positive, got 0\n"


def test_the_same_proxy_with_other_parameters_reports_its_own_protocol(capsys):
    """`--proxy 'near,near(repetitions=8)'` used to report the default protocol for both."""
    assert (
        main(["score", "--space", "nats-tss", "--proxy", "params,synflow,synflow(bn=true)", "--archs", "0", "--json"])
        == 0
    )
    summary = {
        row["proxy"]: row["protocol"]["proxy"]["params"] for row in json.loads(capsys.readouterr().out)["summary"]
    }
    assert summary["synflow"] == {"bn": False} and summary["synflow(bn=True)"] == {"bn": True}


def test_old_spellings_work_with_a_warning(capsys, tmp_path):
    assert (
        main(["score", "--space", "nats-sss", "--proxy", "params", "--archs", "0", "--dataset", "cifar100", "--json"])
        == 0
    )
    captured = capsys.readouterr()
    assert "--dataset is deprecated here" in captured.err and "use --input-dataset" in captured.err
    assert json.loads(captured.out)["summary"][0]["protocol"]["num_classes"] == 100
    out = tmp_path / "run.json"
    assert (
        main(["search", "--space", "nats-tss", "--proxy", "params", "--trials", "2", "--json", str(out), "--quiet"])
        == 0
    )
    assert "--json FILE is deprecated" in capsys.readouterr().err and json.loads(out.read_text())["evaluations"] == 2


def test_device_is_checked_and_not_part_of_the_protocol(capsys):
    from nas.devices import resolve_device

    assert resolve_device(None) in ("cpu", "cuda")
    if not __import__("torch").cuda.is_available():
        assert main(["score", "--space", "nats-tss", "--proxy", "params", "--archs", "0", "--device", "cuda"]) == 2
        assert "CUDA is not available here" in capsys.readouterr().err
    default = nas.score("nats-tss", "synflow,naswot", archs=[7, 70])
    explicit = nas.score("nats-tss", "synflow,naswot", archs=[7, 70], device="cpu", store="sqlite:///:memory:")
    for label in default.labels:
        assert default.columns[label].digest == explicit.columns[label].digest
        assert default.values_of(label) == explicit.values_of(label)
