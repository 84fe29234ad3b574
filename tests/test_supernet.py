"""The weight-sharing supernet (issue 22): fairness counts, the exact benchmark path, isometric
initialisation measured, mean-field closed forms, resume equals an uninterrupted run, the scorer
through the store and the CLI, and one-line errors on bad input. Tiny sizes throughout."""

from __future__ import annotations

import math
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.errors import NasError
from nas.searchspaces.nats_tss import NatsTSS
from nas.searchspaces.nb201_network import OPS
from nas.strategies.supernet import Supernet, SupernetConfig, TrainConfig, load_checkpoint, train_supernet
from nas.strategies.supernet.init import initialise
from nas.strategies.supernet.meanfield import chi_1, critical_gain, gaussian_mean, normalised_chi, op_scale
from nas.strategies.supernet.network import CandidateOp
from nas.strategies.supernet.sampling import is_degenerate, step_paths
from nas.strategies.supernet.spectrum import measure

from conftest import require

TINY = SupernetConfig(channels=2, cells_per_stage=1)
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks: threads only spin


@pytest.fixture(scope="module")
def cifar(shared_data):
    from nas.data import load_images

    folder = require(shared_data / "cifar10" / "cifar-10-batches-py")
    images, labels = load_images("cifar10", str(folder), "train")
    return str(folder), images[:128], labels[:128]


# -- sampling ---------------------------------------------------------------------------------------
def test_degenerate_cells_are_the_341_whose_output_is_always_zero():
    space = NatsTSS()
    assert sum(is_degenerate(c.ops) for c in space) == 341
    net = Supernet(TINY)
    x = torch.randn(4, 3, 32, 32)
    dead = next(c for c in space if is_degenerate(c.ops))
    live = next(c for c in space if not is_degenerate(c.ops))
    features = net.stem(x)
    cell = net.cells[0]
    assert torch.count_nonzero(cell(features, dead.ops)) == 0
    assert torch.count_nonzero(cell(features, live.ops)) > 0


def test_a_fair_step_uses_every_op_of_every_edge_exactly_once_and_no_degenerate_path():
    rng = np.random.default_rng(0)
    for _ in range(200):
        paths = step_paths("fair", rng)
        assert len(paths) == len(OPS)
        for edge in range(6):
            assert sorted(p[edge] for p in paths) == sorted(OPS)
        assert not any(is_degenerate(p) for p in paths)
    uniform = [step_paths("uniform", rng) for _ in range(500)]
    assert all(len(p) == 1 and not is_degenerate(p[0]) for p in uniform)
    counts = Counter(p[0][0] for p in uniform)  # roughly uniform over ops on an edge
    assert min(counts.values()) > 60


def test_a_fair_training_step_runs_each_candidate_module_exactly_once(cifar, tmp_path, monkeypatch):
    _, images, labels = cifar
    calls: Counter = Counter()
    original = CandidateOp.forward

    def counted(self, x):
        calls[id(self)] += 1
        return original(self, x)

    monkeypatch.setattr(CandidateOp, "forward", counted)
    train_supernet(
        TINY, TrainConfig(epochs=1, batch_size=64, augment=False), images[:64], labels[:64], tmp_path / "f.pt"
    )
    net = Supernet(TINY)
    expected = sum(1 for _, _, op, _ in net.candidates() if op != "none")  # none adds zero: never run
    assert len(calls) == expected and set(calls.values()) == {1}

    calls.clear()
    train_supernet(
        TINY,
        TrainConfig(epochs=1, batch_size=64, sampling="uniform", augment=False),
        images[:64],
        labels[:64],
        tmp_path / "u.pt",
    )
    assert sum(calls.values()) <= 6 * 3 and set(calls.values()) == {1}  # one path: at most one op per edge


# -- the exact benchmark path ----------------------------------------------------------------------------
@pytest.mark.parametrize("init", ["isometric", "kaiming"])
def test_a_path_computes_the_standalone_benchmark_network_with_its_weights(init):
    config = SupernetConfig(channels=4, cells_per_stage=1, bn_every_op=False, bn_affine=True)
    torch.manual_seed(0)
    net = Supernet(config)
    initialise(net, init, 0)
    for module in net.modules():  # non-trivial BatchNorm affine maps, so they must be copied right
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_()
    space = NatsTSS(channels=4, cells_per_stage=1)
    x = torch.randn(6, 3, 32, 32)
    for index in (0, 5, 100, 9999, 15624):
        cell = space.from_index(index)
        standalone = space.build(cell, 10)
        standalone.load_state_dict(net.path_state_dict(cell.ops))  # strict: every name matches
        standalone.train()
        net.train()
        torch.testing.assert_close(net(x, cell.ops), standalone(x), rtol=1e-5, atol=1e-5)


def test_a_supernet_with_extra_batchnorms_has_no_benchmark_path():
    with pytest.raises(NasError, match="not a benchmark network"):
        Supernet(SupernetConfig(channels=2, bn_every_op=True)).path_state_dict(("skip_connect",) * 6)


# -- isometry, measured --------------------------------------------------------------------------------
def test_mean_field_closed_forms():
    assert chi_1("relu", 2.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    assert critical_gain("relu", 3.0) == pytest.approx(math.sqrt(2.0), abs=1e-9)
    assert normalised_chi("relu", 1.0) == pytest.approx(math.pi / (math.pi - 1.0), abs=1e-9)
    assert normalised_chi("relu", 4.0) == pytest.approx(math.pi / (math.pi - 1.0) / 4.0, abs=1e-9)
    assert gaussian_mean(lambda z: np.maximum(z, 0.0), 1.0) == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-12)
    assert gaussian_mean(lambda z: z**4, 2.0) == pytest.approx(12.0, abs=1e-9)  # 3 q^2
    assert gaussian_mean(lambda z: np.tanh(z) ** 2, 1.0) == pytest.approx(0.394294, abs=1e-6)


def test_isometric_init_puts_every_parametrised_op_at_unit_mean_squared_singular_value():
    torch.manual_seed(0)
    x = torch.randn(16, 16, 16, 16)  # unit-variance inputs
    spreads = {}
    for init in ("isometric", "kaiming"):
        net = Supernet(SupernetConfig(channels=16, cells_per_stage=1))
        initialise(net, init, 0)
        ops = {op: module for i, e, op, module in net.candidates() if i == 0 and e == 0}
        for name in ("nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3"):
            m = measure(ops[name], x, probes=4)
            if init == "isometric":
                assert m["msv"] == pytest.approx(1.0, rel=0.10), name
            spreads[init, name] = m["cond"]
        if init == "kaiming":  # BatchNorm sets a ReLU-conv op at pi / (pi - 1), not 1
            assert measure(ops["nor_conv_3x3"], x, probes=4)["msv"] > 1.3
    for name in ("nor_conv_1x1", "nor_conv_3x3"):  # orthogonal: equal singular values off ReLU's null space
        assert spreads["isometric", name] < 1.2 < spreads["kaiming", name]
    assert op_scale("relu") == pytest.approx(math.sqrt((math.pi - 1) / math.pi), abs=1e-9)


# -- training: resume, settings, checkpoints ---------------------------------------------------------
def test_resume_after_a_kill_equals_an_uninterrupted_run(cifar, tmp_path):
    _, images, labels = cifar
    training = TrainConfig(epochs=3, batch_size=64, seed=3)
    whole = train_supernet(TINY, training, images, labels, tmp_path / "whole.pt")
    train_supernet(TINY, training, images, labels, tmp_path / "cut.pt", stop_after=1)  # killed after epoch 1
    assert load_checkpoint(tmp_path / "cut.pt").epoch == 1
    resumed = train_supernet(TINY, training, images, labels, tmp_path / "cut.pt")
    assert resumed.epoch == 3
    for key, value in whole.model_state.items():
        assert torch.equal(value, resumed.model_state[key]), key
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]
    assert whole.digest() == resumed.digest()


def test_resuming_with_other_settings_is_a_one_line_error(cifar, tmp_path):
    _, images, labels = cifar
    train_supernet(TINY, TrainConfig(epochs=1), images, labels, tmp_path / "a.pt")
    with pytest.raises(NasError, match="init='isometric'") as err:
        train_supernet(TINY, TrainConfig(epochs=1, init="kaiming"), images, labels, tmp_path / "a.pt")
    assert "\n" not in str(err.value)


def test_unknown_names_and_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(NasError, match="unknown init 'orthogonal'"):
        TrainConfig(init="orthogonal")
    with pytest.raises(NasError, match="unknown sampling 'greedy'"):
        TrainConfig(sampling="greedy")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(NasError, match="not a readable supernet checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(NasError, match="not a zcnas supernet checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(NasError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_whose_weights_do_not_fit_is_a_one_line_error(tmp_path):
    from nas.strategies.supernet.checkpoint import Checkpoint

    state = Supernet(TINY).state_dict()
    state.pop("classifier.bias")
    with pytest.raises(NasError, match="1 missing, 0 unexpected tensors, e.g. classifier.bias") as err:
        Checkpoint(TINY, TrainConfig().to_dict(), {}, 1, [], state).network()
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_an_untrusted_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format": "zcnas-supernet", "payload": Exploit()}, f)
    torch.save({"format": "zcnas-supernet", "payload": Exploit()}, tmp_path / "evil2.pt")
    for path in (evil, tmp_path / "evil2.pt"):
        with pytest.raises(NasError):
            load_checkpoint(path)
    assert not marker.exists()


def test_a_checkpoint_of_another_space_is_refused(cifar, tmp_path):
    folder, images, labels = cifar
    train_supernet(TINY, TrainConfig(epochs=1), images, labels, tmp_path / "tss.pt")
    import nas

    with pytest.raises(NasError, match="checkpoint is of space nats-tss, not nats-sss"):
        nas.score("nats-sss", f"supernet(checkpoint={tmp_path / 'tss.pt'})", archs=[0], data=f"cifar10:{folder}")
    blob = torch.load(tmp_path / "tss.pt", weights_only=True)
    blob["config"] = blob["config"].replace("nats-tss", "nb101")
    torch.save(blob, tmp_path / "nb101.pt")
    with pytest.raises(NasError, match="no supernet for space 'nb101'"):
        load_checkpoint(tmp_path / "nb101.pt")


# -- the scorer, through the store ------------------------------------------------------------------------
def test_the_supernet_scores_like_any_proxy_and_its_protocol_names_the_weights(cifar, tmp_path):
    import shutil

    import nas

    folder, images, labels = cifar
    ckpt = tmp_path / "s.pt"
    state = train_supernet(TINY, TrainConfig(epochs=1), images, labels, ckpt)
    archs = [0, 5, 100]
    labels_ = [f"supernet(checkpoint={ckpt},images=64)", f"supernet(checkpoint={ckpt},images=64,bn=recalibrate)"]
    table = nas.score("nats-tss", labels_, archs=archs, data=f"cifar10:{folder}")
    for label in table.labels:
        values = table.values_of(label)
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(round(v * 64) == pytest.approx(v * 64) for v in values)  # accuracies over 64 images
        protocol = table.columns[label].protocol
        assert protocol["proxy"]["params"]["checkpoint"] == state.digest()
        assert protocol["inputs"]["split"] == "test" and "seed" not in protocol
    moved = tmp_path / "moved" / "s.pt"
    moved.parent.mkdir()
    shutil.copy(ckpt, moved)
    again = nas.score("nats-tss", f"supernet(checkpoint={moved},images=64)", archs=archs, data=f"cifar10:{folder}")
    first = table.labels[0]
    assert again.columns[again.labels[0]].digest == table.columns[first].digest  # the weights, not the path
    assert again.values_of(again.labels[0]) == table.values_of(first)
    with pytest.raises(NasError, match="cifar10:DIR"):
        nas.score("nats-tss", f"supernet(checkpoint={ckpt})", archs=[0], data="gaussian")
    strict = nas.score(
        "nats-tss",
        f"supernet(checkpoint={ckpt},images=64,max_condition=10)",
        archs=[0, 5, 100, 15624],
        data=f"cifar10:{folder}",
    )
    pooled = [nas.get_space("nats-tss").from_index(i).ops for i in (0, 5, 100, 15624)]
    for ops, value in zip(pooled, strict.values_of(strict.labels[0])):  # avg_pool's condition number is ~30-100
        assert (value < -900) == ("avg_pool_3x3" in ops), (ops, value)
    with pytest.raises(NasError, match="bn_affine"):
        nas.score("nats-tss", f"supernet(checkpoint={ckpt},metric=bn_scale)", archs=[0], data=f"cifar10:{folder}")


def mini_cifar(source: str, target) -> str:
    """An official-format CIFAR-10 directory with the first 40 images of each real batch file."""
    target.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(f"{source}/{name}", "rb") as f:
            blob = pickle.load(f, encoding="bytes")
        small = {b"data": blob[b"data"][:40], b"labels": list(blob[b"labels"][:40])}
        with open(target / name, "wb") as f:
            pickle.dump(small, f, protocol=2)
    return str(target)


def test_the_command_line_trains_inspects_scores_correlates_and_searches(cifar, tmp_path, capsys):
    import json
    import shlex

    from nas.benchmarks import import_benchmark
    from nas.cli import main

    def nas(command: str) -> int:
        return main(shlex.split(command))

    folder = mini_cifar(cifar[0], tmp_path / "cifar")
    ckpt = tmp_path / "cli.pt"
    train = f"supernet train --space nats-tss --data cifar10:{folder} --epochs 1 --channels 2 --batch-size 100 "
    assert nas(train + f"--out {ckpt} --quiet") == 0
    assert nas(train + f"--out {ckpt} --quiet") == 0  # rerun: already done, resumes nothing
    assert load_checkpoint(ckpt).epoch == 1
    capsys.readouterr()
    assert nas(f"supernet inspect {ckpt} --data cifar10:{folder} --images 4 --probes 1 --json") == 0
    report = json.loads(capsys.readouterr().out)
    row = next(r for r in report["rows"] if r["op"] == "nor_conv_3x3")
    assert {"msv_init", "msv_trained", "cond_init", "chi_1_init", "q_star_init"} <= set(row)
    assert nas(f"supernet inspect --space nats-tss --channels 2 --data cifar10:{folder} --images 4 --probes 1") == 0
    assert "untrained" in capsys.readouterr().out

    proxy = f"supernet(checkpoint={ckpt},images=40)"
    data = f"--data cifar10:{folder}"
    assert nas(f"score --space nats-tss --proxy '{proxy}' --archs 0,1 {data} --json --quiet") == 0
    assert nas(f"search --space nats-tss --proxy '{proxy}' --trials 3 --seed 0 {data} --json") == 0
    csv = require(Path(cifar[0]).parents[1] / "nb201" / "nb201_accuracies.csv")
    table = import_benchmark("nats-tss", str(csv), epochs=200, out=tmp_path / "nb201.h5")
    capsys.readouterr()
    assert (
        nas(
            f"correlate --space nats-tss --proxy 'params,{proxy}' --sample 12 {data} --dataset cifar10 --split test "
            f"--epochs 200 --table {table} --bootstrap 10 --json"
        )
        == 0
    )
    records = json.loads(capsys.readouterr().out)["results"]
    assert {r["proxy"] for r in records} == {"params", proxy} and all(r["n"] == 12 for r in records)

    with pytest.raises(SystemExit):  # argparse: an unknown init is a one-line usage error
        nas(f"supernet train --space nats-tss --init orthogonal {data} --epochs 1 --out y")
    assert nas(f"supernet inspect {tmp_path / 'nope.pt'} {data}") == 2
    assert "does not exist" in capsys.readouterr().err


# -- NATS-SSS: channel slicing ----------------------------------------------------------------------------
def test_an_sss_path_computes_the_standalone_network_with_its_sliced_weights():
    from nas.searchspaces import get_space
    from nas.strategies.supernet.network import build_supernet

    space = get_space("nats-sss")
    torch.manual_seed(0)
    net = build_supernet(SupernetConfig(space="nats-sss", channels=64, bn_affine=True))
    initialise(net, "kaiming", 0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_()
    x = torch.randn(4, 3, 32, 32)
    for index in (0, 1234, 20000, 32767):  # equal and differing widths around every cell
        arch = space.from_index(index)
        standalone = space.build(arch)
        shapes = {k: v.shape for k, v in standalone.state_dict().items()}
        standalone.load_state_dict(net.path_state_dict(arch.widths, shapes))
        standalone.train()
        net.train()
        torch.testing.assert_close(net(x, arch.widths), standalone(x), rtol=1e-5, atol=1e-5)


def test_a_fair_sss_step_uses_every_width_of_every_layer_once_and_the_scorer_reads_widths(cifar, tmp_path):
    import nas
    from nas.searchspaces.nats_sss import WIDTHS

    rng = np.random.default_rng(0)
    for _ in range(50):
        paths = step_paths("fair", rng, "nats-sss")
        assert len(paths) == len(WIDTHS)
        assert all(sorted(p[layer] for p in paths) == list(WIDTHS) for layer in range(5))
    folder, images, labels = cifar
    config = SupernetConfig(space="nats-sss", channels=8)
    state = train_supernet(config, TrainConfig(epochs=1, batch_size=64), images, labels, tmp_path / "sss.pt")
    assert state.history[0]["path_passes"] == 2 * 8 and state.history[0]["images_per_op"] == 128
    table = nas.score(
        "nats-sss", f"supernet(checkpoint={tmp_path / 'sss.pt'},images=50)", archs=[0, 32767], data=f"cifar10:{folder}"
    )
    assert all(0.0 <= v <= 1.0 for v in table.values_of(table.labels[0]))
    with pytest.raises(NasError, match="one cell per stage"):
        SupernetConfig(space="nats-sss", cells_per_stage=2)
