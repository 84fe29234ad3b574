"""The ensemble proxy: log-rank aggregation within a population or against a reference sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.data import InputSpec
from nas.errors import NasError
from nas.proxies import ProxyResult, get_proxy, parse_proxy_spec, register_proxy
from nas.proxies.ensemble import ReferenceRanks, log_rank_aggregate
from nas.scoring import Scorer, population_scores, score_many
from nas.searchspaces import get_space
from nas.store import ScoreStore


def test_spec_takes_bare_components_and_nested_parameters():
    assert parse_proxy_spec("ensemble(near,nlc(samples=500,bn=eval),synflow),params") == [
        ("ensemble", {"proxies": ["near", "nlc(samples=500,bn=eval)", "synflow"]}),
        ("params", {}),
    ]
    name, params = parse_proxy_spec("ensemble(near, nlc(pairs=500))")[0]
    proxy = get_proxy(name, **params)
    assert [c.label() for c in proxy.components] == ["near", "nlc(pairs=500)"]
    assert proxy.label() == "ensemble(near,nlc(pairs=500))"
    assert get_proxy("ensemble").label() == "ensemble"
    assert [c.name for c in get_proxy("ensemble").components] == [
        "az_expressivity",
        "az_progressivity",
        "az_trainability",
        "flops",
        "meco",
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ensemble(near)", "at least two"),
        ("ensemble(near,near)", "given twice"),
        ("ensemble(near,ensemble(params,flops))", "no nested"),
        ("ensemble(near,bogus)", "unknown proxy 'bogus'"),
        ("near(8)", "not key=value"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(NasError, match=message):
        name, params = parse_proxy_spec(spec)[0]
        get_proxy(name, **params)


def test_log_rank_aggregate_by_hand():
    a = [3.0, 1.0, 2.0]  # higher is better: ranks 3, 1, 2
    b = [10.0, 30.0, 20.0]  # lower is better: ranks 3, 1, 2
    got = log_rank_aggregate([a, b], [True, False])
    want = [2 * math.log(3 / 3), 2 * math.log(1 / 3), 2 * math.log(2 / 3)]
    assert np.allclose(got, want)
    # ties share the average rank; a failed (NaN) score ranks last
    got = log_rank_aggregate([[1.0, 1.0, math.nan]], [True])
    assert np.allclose(got, [math.log(2.5 / 3), math.log(2.5 / 3), math.log(1 / 3)])


def test_aggregate_prefers_no_bad_component():
    # AZ-NAS's reason for logs: (best, worst) loses to (second, second)
    n = 10
    first = np.arange(n, dtype=float)
    second = np.arange(n, dtype=float)
    first[0], second[0] = 100.0, -100.0  # best in one, worst in the other
    first[1], second[1] = 50.0, 50.0  # second best in both
    scores = log_rank_aggregate([first, second], [True, True])
    assert scores[1] > scores[0]


def test_reference_ranks_are_fixed_and_monotone():
    rng = np.random.default_rng(0)
    reference = [rng.normal(size=200), rng.normal(size=200)]
    ranks = ReferenceRanks(reference, [True, False])
    assert ranks([10.0, -10.0]) == pytest.approx(0.0)  # above every reference
    assert ranks([-10.0, 10.0]) == pytest.approx(2 * math.log(1 / 201))  # below every reference
    assert ranks([math.nan, -10.0]) == pytest.approx(math.log(1 / 201))  # failed: last
    values = [ranks([x, 0.0]) for x in np.linspace(-3, 3, 25)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    # the same value always gets the same score, whatever was scored before
    assert ranks([0.3, 0.1]) == ranks([0.3, 0.1])
    # against a large reference the rank fraction approaches the population's
    big = ReferenceRanks([np.arange(1000.0)], [True])
    assert big([499.0]) == pytest.approx(math.log(500 / 1001), abs=1e-3)


def test_score_many_ranks_an_ensemble_within_the_run(tmp_path):
    space = get_space("nats-tss")
    store = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")
    ensemble = get_proxy("ensemble", proxies=["params", "flops"])
    scorer = Scorer(space, [ensemble, get_proxy("params")], InputSpec("gaussian", "cifar10", batch_size=2, seed=0))
    assert scorer.labels == ["ensemble(params,flops)", "params"]
    assert [p.label() for p in scorer.proxies] == ["params", "flops"]  # params scored once
    archs = [space.from_index(i) for i in (0, 7, 1462, 9930, 13714)]
    out = score_many(scorer, archs, store)
    keys = [space.key(a) for a in archs]
    params = [out["params"][k].score for k in keys]
    flops = [out["flops"][k].score for k in keys]
    want = log_rank_aggregate([params, flops], [True, True])
    assert np.allclose([out["ensemble(params,flops)"][k].score for k in keys], want)
    # the components are stored; the ensemble is not (its score depends on the population)
    for proxy in scorer.proxies:
        assert store.missing(space.name, keys, scorer.digest(proxy)) == []
    assert store.missing(space.name, keys, scorer.digest(ensemble)) == keys


def test_population_scores_report_failed_components():
    ensemble = get_proxy("ensemble", proxies=["params", "flops"])
    scores = {
        "params": {
            "a": ProxyResult(1.0, 0.1),
            "b": ProxyResult(2.0, 0.1),
            "c": ProxyResult(math.nan, 0.1, "failed", "x"),
        },
        "flops": {
            "a": ProxyResult(1.0, 0.2),
            "b": ProxyResult(math.nan, 0.2, "failed", "y"),
            "c": ProxyResult(math.nan, 0.2, "failed", "z"),
        },
    }
    out = population_scores(ensemble, ["a", "b", "c"], scores)
    assert out["a"].ok and out["a"].seconds == pytest.approx(0.3)
    assert out["b"].ok and "flops" in out["b"].reason
    assert out["c"].status == "failed" and "every component" in out["c"].reason


def test_an_ensemble_cannot_score_one_network():
    with pytest.raises(NasError, match="population"):
        get_proxy("ensemble").score(None, None)


@register_proxy("_two_ensemble_test", higher_is_better=False)
def _lower_is_better(model, batch):
    return float(sum(p.numel() for p in model.parameters()))


def test_lower_is_better_components_are_flipped(tmp_path):
    space = get_space("nats-tss")
    store = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")
    ensemble = get_proxy("ensemble", proxies=["params", "_two_ensemble_test"])
    scorer = Scorer(space, [ensemble], InputSpec("gaussian", "cifar10", batch_size=2, seed=0))
    archs = [space.from_index(i) for i in (0, 7, 1462)]
    out = score_many(scorer, archs, store)
    # the same count, once higher- and once lower-is-better: rank r and rank n + 1 - r
    n = len(archs)
    for key, result in out["ensemble(params,_two_ensemble_test)"].items():
        r = sorted(s.score for s in out["params"].values()).index(out["params"][key].score) + 1
        assert result.score == pytest.approx(math.log(r / n) + math.log((n + 1 - r) / n))


def test_a_search_ranks_an_ensemble_against_its_reference_sample(tmp_path, one_torch_thread):
    from nas.scoring import select_archs
    from nas.strategies import RunOptions, SearchConfig, parse_objectives, run_search
    from nas.strategies.objective import ProxyObjective

    space = get_space("nats-tss")
    inputs = InputSpec("gaussian", "cifar10", batch_size=4, seed=0)
    store = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")
    spec = "ensemble(params,flops,reference=12)"
    objective = ProxyObjective(space, parse_objectives(None, spec), inputs, budget=5, store=store)
    assert objective.directions == ["maximize"]
    objective.prepare()
    reference = select_archs(space, 12, 0)  # the score seed draws the reference
    params = [float(space.num_params(a, 10)) for a in reference]
    flops = [float(space.flops(a, 10, 32)) for a in reference]
    ranks = ReferenceRanks([params, flops], [True, True])
    arch = space.from_index(9930)
    (value,) = objective.values(arch, objective.scores(arch))
    assert value == pytest.approx(ranks([space.num_params(arch, 10), space.flops(arch, 10, 32)]))
    # the same architecture gets the same value whatever else was scored since
    objective.values(space.from_index(1), objective.scores(space.from_index(1)))
    assert objective.values(arch, objective.scores(arch)) == (value,)

    config = SearchConfig("nats-tss", tuple(parse_objectives(None, spec)), sampler="random", inputs=inputs)
    run = run_search(config, RunOptions(trials=6, store=store.url))
    assert run.complete and len(run.evaluations) == 6
