"""`nas search` in one process: samplers, the dedupe ledger, resume, evolution, the report.

Scores are the `params` proxy (a network build, ~20 ms) or the closed-form costs, so every
search here takes seconds; the proxies themselves are tested elsewhere.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.cli import main
from nas.data import InputSpec
from nas.searchspaces import get_space
from nas.store import ScoreStore
from nas.strategies import (
    Ledger,
    ProxyObjective,
    RegularizedEvolutionSampler,
    RunOptions,
    SearchConfig,
    make_sampler,
    parse_objectives,
    run_search,
    tournament,
)
from nas.strategies.evolution import Member
from nas.strategies.ledger import CLAIM

ROOT = Path(__file__).resolve().parents[1]
TSS = get_space("nats-tss")
TOP_LEVEL_KEYS = {"space", "study", "sampler", "evaluations", "wall_time_s", "best"}
BEST_KEYS = {"arch", "index", "params", "score"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(
    sampler: str = "random", proxy: str | None = "params", objectives: str | None = None, seed: int = 0, **options
) -> SearchConfig:
    return SearchConfig(
        "nats-tss",
        tuple(parse_objectives(objectives, proxy)),
        sampler=sampler,
        sampler_options=tuple(options.items()),
        seed=seed,
        inputs=InputSpec(batch_size=8),
    )


def roles(run_or_study) -> Counter:
    trials = run_or_study.trials
    return Counter(t.user_attrs.get(CLAIM, {}).get("role") for t in trials)


def check_unique(run) -> None:
    keys = [e.key for e in run.evaluations]
    assert len(keys) == len(set(keys)) == run.trials, (len(keys), len(set(keys)), run.trials)
    assert [e.position for e in run.evaluations] == sorted({e.position for e in run.evaluations})


@pytest.mark.parametrize(
    "sampler, objectives, options",
    [
        ("random", None, {}),
        ("tpe", None, {"n_startup_trials": 4}),
        ("gp", None, {"n_startup_trials": 4}),
        ("brute", None, {}),
        ("evolution", None, {"population": 5, "tournament": 2}),
        ("nsga2", "params,flops", {"population": 3}),
    ],
)
def test_every_sampler_spends_exactly_the_budget(sampler, objectives, options):
    run = run_search(config(sampler, None if objectives else "params", objectives, **options), RunOptions(trials=6))
    assert run.complete and run.stop_reason == "budget"
    check_unique(run)
    assert len(run.directions) == (2 if objectives else 1)
    assert all(e.ok and e.index == TSS.index_of(TSS.parse(e.arch)) for e in run.evaluations)
    # repeats (NSGA-II makes them) were served, not scored
    assert run.total_trials >= 6 + run.repeats


def test_repeated_architectures_do_not_spend_the_budget(tmp_path):
    """Enqueued repeats are served from the study; --trials counts unique architectures only."""
    cells = [TSS.from_index(i) for i in (5, 9930, 77, 123, 4000, 6111)]
    order = [0, 1, 0, 0, 2, 1, 3, 0, 4, 5]
    store = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")
    objective = ProxyObjective(TSS, parse_objectives(None, "params"), InputSpec(batch_size=8), budget=4, store=store)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for i in order:
        study.enqueue_trial(TSS.encode(cells[i]))
    study.optimize(objective, n_trials=len(order))
    ledger = Ledger.read(study)
    assert [e.key for e in ledger.evaluations()] == [str(cells[i]) for i in (0, 1, 2, 3)]
    assert ledger.claimed == ledger.finished == 4 and objective.evaluated == 4
    assert roles(study) == Counter({"evaluate": 4, "duplicate": 4, "over_budget": 2})
    values = {e.key: e.values[0] for e in ledger.evaluations()}
    for t in study.trials:
        role = t.user_attrs[CLAIM]["role"]
        if role == "duplicate":  # a repeat gets the value of the architecture's evaluation
            assert t.state == optuna.trial.TrialState.COMPLETE and t.value == values[t.user_attrs["arch"]]
        elif role == "over_budget":
            assert t.state == optuna.trial.TrialState.PRUNED
    assert objective.stop_reason == "budget"


def test_a_converged_sampler_stops():
    objective = ProxyObjective(TSS, parse_objectives("params", None), InputSpec(), budget=50, max_repeats=5)
    study = optuna.create_study(direction="minimize")
    for _ in range(20):
        study.enqueue_trial(TSS.encode(TSS.from_index(7)))
    study.optimize(objective, n_trials=20, callbacks=[lambda s, t: objective.stop_reason and s.stop()])
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 6 and Ledger.read(study).claimed == 1  # 1 evaluation, then 5 repeats
    assert "5 repeated or invalid proposals in a row" in objective.stop_reason


def test_resume_continues_without_repeating():
    cfg = config("tpe", n_startup_trials=3)
    first = run_search(cfg, RunOptions(trials=8))
    again = run_search(cfg, RunOptions(trials=8))  # the same command: nothing left to do
    assert again.total_trials == first.total_trials and [e.key for e in again.evaluations] == [
        e.key for e in first.evaluations
    ]
    more = run_search(cfg, RunOptions(trials=16))
    check_unique(more)
    assert [e.key for e in more.evaluations[:8]] == [e.key for e in first.evaluations]
    assert more.study == first.study


def test_a_study_rejects_other_settings():
    run_search(config("random"), RunOptions(trials=2, study="shared"))
    with pytest.raises(Exception, match="made with other settings.*sampler"):
        run_search(config("tpe"), RunOptions(trials=2, study="shared"))


def test_interrupted_evaluations_are_retried_on_resume(monkeypatch):
    """Ctrl-C fails the running trial; the next run queues its evaluation again first."""
    cfg = config("random")
    calls = {"n": 0}
    original = ProxyObjective.values

    def flaky(self, arch, scores):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, arch, scores)

    monkeypatch.setattr(ProxyObjective, "values", flaky)
    stopped = run_search(cfg, RunOptions(trials=6))
    assert stopped.interrupted and len(stopped.evaluations) == 3
    resumed = run_search(cfg, RunOptions(trials=6))
    check_unique(resumed)
    retried = [
        t
        for t in optuna.load_study(study_name=resumed.study, storage=resumed.storage).trials
        if "zcnas.retry_of" in t.system_attrs
    ]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    assert retried[0].system_attrs["zcnas.retry_of"] == 3


# -- regularised evolution --------------------------------------------------------------------------
def test_tournament_picks_the_best_of_its_draw():
    rng = np.random.default_rng(0)
    population = [Member(None, str(i), float(v)) for i, v in enumerate([3, 9, 1, 7, 5])]
    assert tournament(population, 5, rng).value == 9  # everyone: the best
    assert tournament(population, 5, rng, maximize=False).value == 1
    draws = Counter(tournament(population, 2, rng).value for _ in range(2000))
    assert set(draws) == {3, 9, 7, 5}  # the worst never wins a duel
    assert draws[9] > draws[7] > draws[5] > draws[3]


def test_evolution_mutates_a_tournament_winner():
    space = TSS
    sampler = RegularizedEvolutionSampler(space, population=4, tournament=4, seed=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    best = space.from_index(9930)
    members = [space.from_index(i) for i in (0, 1, 2)] + [best]
    for i, arch in enumerate(members):  # best has the highest value
        study.add_trial(
            optuna.trial.create_trial(
                params=space.encode(arch),
                value=float(i),
                distributions={
                    k: optuna.distributions.CategoricalDistribution(
                        ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
                    )
                    for k in space.encode(arch)
                },
            )
        )
    assert [m.key for m in sampler.history(study)] == [str(m) for m in members]
    for _ in range(20):
        child = sampler.propose(study)  # tournament = whole population: always the best's child
        assert child in space.neighbours(best)
        assert sum(a != b for a, b in zip(child.ops, best.ops)) == 1


def test_evolution_population_is_the_latest_unique_members():
    sampler = RegularizedEvolutionSampler(TSS, population=3, tournament=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: float(TSS.num_params(TSS.suggest(t))), n_trials=12)
    history = sampler.history(study)
    assert len({m.key for m in history}) == len(history) == len({TSS.suggest(t) for t in study.trials})
    with pytest.raises(Exception, match="population must be at least 2"):
        RegularizedEvolutionSampler(TSS, population=1)
    with pytest.raises(Exception, match="tournament must be between"):
        make_sampler("evolution", 0, space=TSS, population=4, tournament=5)


def test_sampler_options_are_checked():
    with pytest.raises(Exception, match="sampler tpe: unknown option.*population"):
        make_sampler("tpe", 0, population=3)
    with pytest.raises(Exception, match="unknown sampler 'simplex'"):
        make_sampler("simplex")
    # Optuna's other samplers by class name, their constructor's arguments as options
    assert type(make_sampler("qmc", 0, qmc_type="halton")).__name__ == "QMCSampler"
    with pytest.raises(Exception, match="sampler qmc: unknown option.*population"):
        make_sampler("QMCSampler", 0, population=3)
    assert type(make_sampler("NSGA-II", 0, population=8)).__name__ == "NSGAIISampler"


# -- the import rule ---------------------------------------------------------------------------------
def test_strategies_never_import_benchmarks():
    """The search never sees an accuracy: nas.strategies imports no nas.benchmarks module."""
    code = (
        "import sys, nas.strategies, nas.strategies.run, nas.strategies.liveness\n"
        "print([m for m in sys.modules if m.startswith('nas.benchmarks')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for path in sorted((ROOT / "strategies").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n.startswith(("nas.benchmarks", "benchmarks")) for n in names), (path.name, names)


# -- the command -------------------------------------------------------------------------------------
def fake_table(home: Path) -> dict[str, float]:
    """A synthetic NATS-TSS table (valid and test, 200 epochs) to check the report's arithmetic."""
    from nas.benchmarks import TableData, default_table_path, write_table

    keys = [str(c) for c in TSS]
    valid = np.array([80.0 + (i % 97) / 10 for i in range(len(keys))])
    data = TableData("nats-tss", keys, np.arange(len(keys)))
    data.add_metric(("cifar10", "valid", 200), valid, "synthetic")
    data.add_metric(("cifar10", "test", 200), valid + 1.0, "synthetic")
    write_table(data, default_table_path("nats-tss"))
    return dict(zip(keys, valid))


def run_cli(capsys, *argv):
    code = main(["search", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_keys_and_report(capsys, tmp_path, isolated_nas_home):
    valid = fake_table(isolated_nas_home)
    argv = [
        "--space",
        "nats-tss",
        "--proxy",
        "params",
        "--sampler",
        "random",
        "--trials",
        "6",
        "--batch-size",
        "8",
        "--quiet",
    ]
    code, out, _ = run_cli(capsys, *argv, "--json")
    assert code == 0
    result = json.loads(out)
    assert TOP_LEVEL_KEYS <= set(result) and result["evaluations"] == 6 and result["sampler"] == "random"
    (best,) = result["best"]
    assert set(best) == BEST_KEYS | {"accuracy"}
    assert best["arch"] == str(TSS.from_index(best["index"])) and best["params"] == TSS.num_params(
        TSS.parse(best["arch"])
    )
    assert best["accuracy"] == {
        "dataset": "cifar10",
        "epochs": 200,
        "valid": pytest.approx(valid[best["arch"]]),
        "test": pytest.approx(valid[best["arch"]] + 1),
    }
    report = result["report"]
    assert report["optimum"]["valid"]["accuracy"] == pytest.approx(max(valid.values()))
    assert report["regret"]["valid"] == pytest.approx(max(valid.values()) - valid[best["arch"]], abs=1e-3)
    # --json FILE and --plot FILE beside the text report; the rerun continues the same study
    plot, path = tmp_path / "curve.png", tmp_path / "result.json"
    code, out, _ = run_cli(capsys, *argv, "--json", str(path), "--plot", str(plot))
    assert code == 0 and "best by params" in out and "regret" in out
    assert json.loads(path.read_text())["study"] == result["study"] and plot.stat().st_size > 10_000


def test_cli_without_table_has_no_accuracy(capsys):
    code, out, _ = run_cli(
        capsys,
        "--space",
        "nats-tss",
        "--objectives",
        "params,flops",
        "--sampler",
        "nsga2",
        "--population",
        "4",
        "--trials",
        "5",
        "--quiet",
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and "report" not in result and all("accuracy" not in b for b in result["best"])
    assert set(result["best"][0]) == BEST_KEYS | {"objectives"} and result["evaluations"] == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--proxy", "near,synflow"], "--proxy takes one proxy"),
        (["--proxy", "nope"], "unknown proxy 'nope'"),
        (["--proxy", "params", "--sampler", "simplex"], "unknown sampler 'simplex'"),
        (["--proxy", "params", "--sampler", "tpe", "--tournament", "3"], "sampler tpe: unknown option"),
        (["--objectives", "near,params", "--sampler", "evolution"], "sampler evolution optimises one objective"),
        (["--proxy", "params", "--trials", "0"], "--trials must be positive"),
        (["--proxy", "params", "--storage", "nowhere"], "cannot tell what storage"),
        (["--proxy", "params", "--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open study storage"),
    ],
)
def test_cli_errors_are_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "--space", "nats-tss", "--quiet", *argv)
    assert code == 2 and out == "" and err.startswith("nas: error: ") and message in err, err
    assert err.count("\n") == 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_stopped_heartbeat_on_another_host_is_retried(tmp_path):
    """RDB storages: a worker on another host (no pid to check) is found by its heartbeat."""
    import time

    from nas.strategies import open_storage
    from nas.strategies.ledger import RETRY_OF, WORKER, Claim
    from nas.strategies.liveness import fail_dead_trials

    storage = open_storage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat=1)
    study = optuna.create_study(storage=storage, direction="maximize")
    trial = study.ask()
    arch = TSS.suggest(trial)
    trial.set_user_attr(WORKER, "another-host:4242:1")
    trial.set_user_attr(CLAIM, Claim(str(arch), "evaluate", trial.number).as_attr())
    storage.record_heartbeat(trial._trial_id)
    assert fail_dead_trials(study) == 0  # another host: its pid says nothing, its heartbeat is fresh
    time.sleep(3.5)  # stale after 2 x heartbeat (SQLite clocks tick in whole seconds)
    fail_dead_trials(study)
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[1].state == optuna.trial.TrialState.WAITING and trials[1].system_attrs[RETRY_OF] == 0
    assert TSS.decode(trials[1].params) == arch and trials[1].user_attrs[CLAIM]["position"] == 0
