"""Scoring runs: the store, resumption, several worker processes, the CSV contract."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest
import torch

from nas.cli import main
from nas.data import InputSpec, load_batch, parse_data_arg
from nas.errors import NasError
from nas.proxies import Needs, Proxy, ProxyResult, evaluate, get_proxy, parse_proxy_spec, register_proxy
from nas.scoring import Scorer, score_many, select_archs
from nas.searchspaces import get_space
from nas.store import ScoreStore

from conftest import builtin_network_proxies, install_plugin, require, smallest_nb101_cell


@pytest.fixture
def store(tmp_path):
    return ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}")


def test_store_round_trip_and_missing(store):
    store.put("nats-tss", "a", "p1", "params", ProxyResult(3.0, 0.1), {"x": 1})
    store.put("nats-tss", "b", "p1", "params", ProxyResult(math.nan, 0.2, "failed", "boom"))
    assert store.get("nats-tss", "a", "p1").score == 3.0
    failed = store.get("nats-tss", "b", "p1")
    assert failed.status == "failed" and failed.reason == "boom" and math.isnan(failed.score)
    assert store.missing("nats-tss", ["a", "b", "c"], "p1") == ["c"]
    assert store.missing("nats-tss", ["a"], "p2") == ["a"]  # another protocol is another score
    assert store.protocol("p1") == {"x": 1}
    store.put("nats-tss", "a", "p1", "params", ProxyResult(4.0, 0.1))  # replace, not duplicate
    assert store.get("nats-tss", "a", "p1").score == 4.0


def test_bad_store_url():
    with pytest.raises(NasError, match="cannot open score store"):
        ScoreStore("nosuchdialect://x")


def test_select_archs():
    space = get_space("nats-tss")
    a = select_archs(space, 50, seed=3)
    assert a == select_archs(space, 50, seed=3) and len({str(x) for x in a}) == 50
    assert select_archs(space, None, 0, ["9930", "0"]) == [space.from_index(9930), space.from_index(0)]
    with pytest.raises(NasError, match="out of range"):
        select_archs(space, 0, 0)
    with pytest.raises(NasError, match="number or 'all'"):
        select_archs(space, "many", 0)
    nb101 = select_archs(get_space("nb101"), 5, 0)
    assert len({get_space("nb101").key(c) for c in nb101}) == 5


def test_scores_resume_and_workers_agree(store, tmp_path):
    space = get_space("nats-tss")
    archs = select_archs(space, 6, seed=0)
    scorer = Scorer(space, [get_proxy("params"), get_proxy("flops")], InputSpec())
    first = score_many(scorer, archs[:3], store)
    assert all(len(v) == 3 for v in first.values())
    # resume: only the 3 missing are scored; here by 2 worker processes into the same store
    both = score_many(scorer, archs, store, workers=2)
    for label, scores in both.items():
        assert len(scores) == 6
        for key in first[label]:
            assert scores[key] == first[label][key]  # untouched
    for arch in archs:
        assert both["params"][space.key(arch)].score == space.num_params(arch)
        assert both["flops"][space.key(arch)].score == space.flops(arch)


def _nothing() -> None:
    pass


def _square_or_die(task: int) -> int:
    if task < 0:  # what the system's OOM killer does to a worker
        import os

        os._exit(137)
    return task * task


def test_a_worker_killed_mid_run_is_an_error_not_a_hang():
    from nas.scoring import in_processes

    done = []
    in_processes(_square_or_die, [1, 2, 3], 2, _nothing, (), on_done=lambda: done.append(1))
    assert len(done) == 3
    with pytest.raises(NasError, match="a scoring process died .* rerun"):
        in_processes(_square_or_die, [1, -1, 2, 3], 2, _nothing, ())
    # past the deadline: no new task reported after the first, and the call returns
    done.clear()
    in_processes(_square_or_die, list(range(200)), 2, _nothing, (), deadline=0.0, on_done=lambda: done.append(1))
    assert done == [1]


def test_same_protocol_same_score(tmp_path):
    """Reproducibility: a fresh scorer with the same protocol gives bit-identical scores."""

    space = get_space("nats-tss")
    arch = space.from_index(123)
    a = Scorer(space, [get_proxy("_sum_of_logits")], InputSpec(seed=1)).score(arch)
    b = Scorer(space, [get_proxy("_sum_of_logits")], InputSpec(seed=1)).score(arch)
    c = Scorer(space, [get_proxy("_sum_of_logits")], InputSpec(seed=2)).score(arch)
    assert a["_sum_of_logits"].score == b["_sum_of_logits"].score != c["_sum_of_logits"].score


def test_a_score_does_not_depend_on_the_other_proxies():
    """A plugin that draws from torch's global RNG scores the same alone and after another one."""
    space = get_space("nats-tss")
    arch = space.from_index(77)
    alone = Scorer(space, [get_proxy("_global_draw")], InputSpec()).score(arch)["_global_draw"]
    after = Scorer(
        space, [get_proxy("_sum_of_logits"), get_proxy("_draws_a_lot"), get_proxy("_global_draw")], InputSpec()
    ).score(arch)["_global_draw"]
    assert alone.ok and alone.score == after.score


@register_proxy("_draws_a_lot", needs=Needs(inputs=False))
def _draws_a_lot(model, batch):
    return float(torch.rand(1000).sum())


@register_proxy("_global_draw", needs=Needs(inputs=False))
def _global_draw(model, batch):
    with torch.no_grad():
        return float(torch.rand(1)) + float(sum(p.sum() for p in model.parameters()))


@register_proxy("_sum_of_logits", needs=Needs(mode="train"))
def _sum_of_logits(model, batch):
    with torch.no_grad():
        return float(model(batch.inputs).sum())


@register_proxy("_nan", needs=Needs(inputs=False))
def _nan(model, batch):
    return float("nan")


@register_proxy("_raises", needs=Needs(inputs=False))
def _raises(model, batch):
    raise RuntimeError("out of memory")


def test_failures_are_reported_not_ranked():
    model = torch.nn.Linear(2, 2)
    nan = evaluate(get_proxy("_nan"), model, None)
    assert nan.status == "failed" and "non-finite" in nan.reason
    err = evaluate(get_proxy("_raises"), model, None)
    assert err.status == "failed" and "RuntimeError: out of memory" in err.reason


def test_parse_proxy_spec():
    assert parse_proxy_spec("near, nlc(samples=500,bn=eval) ,synflow") == [
        ("near", {}),
        ("nlc", {"samples": 500, "bn": "eval"}),
        ("synflow", {}),
    ]
    with pytest.raises(NasError, match="not key=value"):
        parse_proxy_spec("near(8)")
    with pytest.raises(NasError, match="no proxy given"):
        parse_proxy_spec(" , ")


def test_cifar_batches_are_real_and_normalised(shared_data):
    folder = require(shared_data / "cifar10" / "cifar-10-batches-py")
    spec = parse_data_arg(f"cifar10:{folder}", batch_size=256, seed=0)
    batch = load_batch(spec)
    assert batch.inputs.shape == (256, 3, 32, 32) and batch.num_classes == 10
    assert abs(float(batch.inputs.mean())) < 0.15 and abs(float(batch.inputs.std()) - 1) < 0.15
    assert set(batch.labels.tolist()) <= set(range(10)) and len(set(batch.labels.tolist())) == 10
    assert torch.equal(load_batch(spec).inputs, batch.inputs)  # same spec, same tensors
    assert spec.protocol()["path"] == "cifar-10-batches-py"  # moving the data keeps the key
    with pytest.raises(NasError, match="does not exist"):
        load_batch(parse_data_arg("cifar10:/no/such/dir"))
    with pytest.raises(NasError, match="unknown input source"):
        parse_data_arg("mnist:/x")


def test_npz_and_imagenet16_shapes(tmp_path):
    import numpy as np

    np.savez(
        tmp_path / "x.npz",
        x=np.random.default_rng(0).integers(0, 255, (10, 3, 16, 16), dtype=np.uint8),
        y=np.arange(10),
    )
    batch = load_batch(parse_data_arg(f"npz:{tmp_path / 'x.npz'}", dataset="imagenet16-120", batch_size=4))
    assert batch.inputs.shape == (4, 3, 16, 16) and batch.num_classes == 120
    assert load_batch(InputSpec(dataset="imagenet16", batch_size=2)).inputs.shape == (2, 3, 16, 16)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(NasError, match="cannot read npz"):
        load_batch(parse_data_arg(f"npz:{tmp_path / 'bad.npz'}"))


def test_cli_score_csv_contract_and_resume(tmp_path, capsys):
    out = tmp_path / "scores.csv"
    argv = ["score", "--space", "nats-tss", "--proxy", "params", "--archs", "0,9930", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["space", "index", "arch", "proxy", "score", "seconds", "status"]
    assert [(r["index"], float(r["score"])) for r in rows] == [("0", 129306.0), ("9930", 1288506.0)]
    capsys.readouterr()
    assert main(["score", "--space", "nats-tss", "--proxy", "params", "--archs", "0,9930", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"][0]["ok"] == 2 and report["wall_time_s"] < 1.0  # from the store
    assert (
        main(
            [
                "score",
                "--space",
                "nats-tss",
                "--proxy",
                "params",
                "--sample",
                "3",
                "--data",
                "cifar10:/no/such/dir",
                "--quiet",
            ]
        )
        == 2
    )
    assert "cifar10 directory '/no/such/dir' does not exist" in capsys.readouterr().err


def test_plugin_package_through_entry_point(tmp_path):
    """A third-party package that declares a `zcnas.proxies` entry point is found by `nas score`
    after a real `pip install` (into a separate target folder, not our environment)."""
    pkg = tmp_path / "src"
    (pkg / "my_proxy").mkdir(parents=True)
    (pkg / "my_proxy" / "__init__.py").write_text(
        "from nas.proxies import register_proxy, Needs\n\n"
        "@register_proxy('my_proxy', needs=Needs(inputs=False))\n"
        "def my_proxy(model, batch):\n"
        "    return float(sum(p.numel() for p in model.parameters())) + 0.5\n"
    )
    (pkg / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['setuptools']\nbuild-backend = 'setuptools.build_meta'\n"
        "[project]\nname = 'my-proxy'\nversion = '0.1'\n"
        "[project.entry-points.'zcnas.proxies']\nmy_proxy = 'my_proxy'\n"
    )
    env = install_plugin(pkg, tmp_path / "site")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas.cli",
            "score",
            "--space",
            "nats-tss",
            "--proxy",
            "my_proxy",
            "--archs",
            "0",
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scores"][0]["score"] == 129306.5


def _pair_pass(proxies, model, batch):
    calls.append([p.name for p in proxies])
    return [p.value for p in proxies]


calls: list[list[str]] = []


class _Paired(Proxy):
    needs = Needs(inputs=False)
    value = 0.0

    def shared_pass(self):
        return _pair_pass

    def score(self, model, batch):
        return _pair_pass([self], model, batch)[0]


@register_proxy("_paired_one")
class _PairedOne(_Paired):
    value = 1.0


@register_proxy("_paired_inf")
class _PairedInf(_Paired):
    value = float("inf")


def test_a_shared_pass_scores_its_group_once_and_fails_only_the_non_finite():
    from nas.proxies.base import evaluate_together

    calls.clear()
    one, inf = get_proxy("_paired_one"), get_proxy("_paired_inf")
    results = evaluate_together([one, inf], torch.nn.Linear(2, 2), None)
    assert calls == [["_paired_one", "_paired_inf"]]
    assert results[0].ok and results[0].score == 1.0
    assert results[1].status == "failed" and "non-finite" in results[1].reason
    assert results[0].seconds == results[1].seconds  # the pass's time, split evenly

    def broken(proxies, model, batch):
        raise RuntimeError("out of memory")

    one.shared_pass = lambda: broken
    failed = evaluate_together([one, one], torch.nn.Linear(2, 2), None)
    assert all(r.status == "failed" and "out of memory" in r.reason for r in failed)


def test_a_spaces_network_version_keys_the_scores_of_its_networks():
    def digests(space_name):
        scorer = Scorer(get_space(space_name), [get_proxy("near")], parse_data_arg("gaussian"), seed=0)
        return scorer.protocol(scorer.proxies[0]), scorer.digest(scorer.proxies[0])

    # Version 1 adds nothing, so the stored NATS-TSS scores keep the key they were stored under.
    protocol, digest = digests("nats-tss")
    assert "network" not in protocol and digest == "b9ff459f92dfd25c"
    protocol, _ = digests("nb101")  # version 2: weights drawn the same on every CPU
    assert protocol["network"] == "2"


@register_proxy("_mutates", needs=Needs(mode="train"))
def _mutates(model, batch):
    """A careless proxy: it scales the weights, leaves a hook behind, changes dtype and mode."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    model.register_forward_hook(lambda module, args, output: output * 0)
    model.double().eval()
    torch.rand(1000)
    return 1.0


def test_a_proxy_that_changes_the_network_leaves_the_next_one_a_pristine_copy():
    space = get_space("nats-tss")
    arch = space.from_index(77)
    names = ["_global_draw", "_sum_of_logits"]
    after = Scorer(space, [get_proxy(n) for n in ["_mutates", *names]], InputSpec()).score(arch)
    # the reference: a network of its own, built right after the seed, scored as the first thing
    expected = {}
    for name in names:
        torch.manual_seed(0)
        model = space.build(arch, 10).train()
        expected[name] = get_proxy(name).score(model, load_batch(InputSpec()))
    assert {n: after[n].score for n in names} == expected


def test_every_proxy_scores_alike_alone_and_on_a_copy_of_the_shared_build(shared_data):
    """Scorer.score builds a network once and deep-copies it for every proxy group but the last;
    alone, a proxy scores the build itself. The two agree bit for bit: every built-in on a small
    NATS-TSS cell, and a few on the smallest NB101 cell (whose build draws with numpy)."""
    tss, nb101 = get_space("nats-tss"), get_space("nb101")
    cases = [
        (
            tss,
            tss.parse("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"),
            builtin_network_proxies(),
        ),
        (
            nb101,
            smallest_nb101_cell(shared_data),
            ["near", "synflow", "naswot", "az_expressivity", "az_trainability", "meco_opt"],
        ),
    ]
    data = parse_data_arg(f"cifar10:{require(shared_data / 'cifar10' / 'cifar-10-batches-py')}", batch_size=16)
    for space, arch, names in cases:
        scorer = Scorer(space, [get_proxy(n) for n in names], data)
        together = scorer.score(arch)
        for proxy in scorer.proxies:
            name = proxy.label()
            alone = scorer.score(arch, [proxy])[name]
            assert (alone.status, repr(alone.score)) == (together[name].status, repr(together[name].score)), name
