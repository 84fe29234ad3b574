"""NATS-Bench SSS: official order, strings, errors, neighbourhood, Optuna encoding, networks, and
parameter counts against the benchmark's own records (SSS and TSS fixtures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.errors import InvalidArchitectureError
from nas.searchspaces import get_space
from nas.searchspaces.nats_sss import CELL, PARAM_NAMES, WIDTHS, Channels, NatsSSS
from nas.searchspaces.nats_tss import NatsTSS

from conftest import SHARED_DATA, load_pbz2, nats_fixture_records

DATA = SHARED_DATA  # ../shared/data beside the repository
SSS_DIR = DATA / "nats" / "NATS-sss-v1_0-50262-simple"
TSS_DIR = DATA / "nats" / "NATS-tss-v1_0-3ffb9-simple"
FIXTURE_INDICES = (0, 11, 284)
NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space() -> NatsSSS:
    return NatsSSS()


# -- order and indices -------------------------------------------------------------------------------
def test_iteration_equals_official_meta_archs(space):
    meta = load_pbz2(SSS_DIR / "meta.pickle.pbz2")["meta_archs"]
    ours = [str(arch) for arch in space]
    assert len(ours) == len(space) == 32768
    assert ours == meta


def test_index_round_trip(space):
    assert str(space.from_index(0)) == "8:8:8:8:8"
    assert str(space.from_index(32767)) == "64:64:64:64:64"
    assert str(space.from_index(11)) == "8:8:8:16:32"
    assert space.index_of(space.parse("8:8:40:32:40")) == 284
    for index in np.random.default_rng(0).integers(0, 32768, size=200):
        arch = space.from_index(index)
        assert space.index_of(arch) == index
        assert space.parse(str(arch)) == arch
    assert [space.from_index(i) for i in range(64)] == list(space)[:64]


def test_registry_and_resolve(space):
    assert isinstance(get_space("sss"), NatsSSS)
    arch = space.from_index(284)
    for ref in (
        284,
        np.int64(284),
        "284",
        "8:8:40:32:40",
        " 8:8:40:32:40 ",
        arch,
        (8, 8, 40, 32, 40),
        [8, 8, 40, 32, 40],
        np.array([8, 8, 40, 32, 40]),
    ):
        assert space.resolve(ref) == arch
    assert hash(Channels([8, 8, 40, 32, 40])) == hash(arch)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("8:8:8:8", "4 widths instead of 5"),
        ("8:8:8:8:8:8", "6 widths instead of 5"),
        ("8:8:12:8:8", "width 12 of layer 2 is not allowed"),
        ("8:8:72:8:8", "not allowed"),
        ("8:8:x:8:8", "'x', not an integer"),
        ("8:8:-8:8:8", "not an integer"),
        ("8:8:8.0:8:8", "not an integer"),
        ("", "not an integer"),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "not an integer"),
    ],
)
def test_bad_strings(space, bad, fragment):
    with pytest.raises(InvalidArchitectureError, match="nats-sss") as err:
        space.parse(bad)
    assert fragment in str(err.value)
    assert repr(bad) in str(err.value)  # the message names the input


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ((8, 8, 8, 8), "4 widths"),
        ((8, 8, 8.0, 8, 8), "not an integer"),
        ((8, True, 8, 8, 8), "not an integer"),
        ((8, "8", 8, 8, 8), "not an integer"),
        ((8, 8, 8, 8, 9), "not allowed"),
        (8, "not a sequence"),
    ],
)
def test_bad_values(space, bad, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment):
        Channels(bad)
    with pytest.raises(InvalidArchitectureError, match=fragment):
        space.validate(bad)


def test_bad_indices(space):
    for bad in (-1, 32768, "32768"):
        with pytest.raises(InvalidArchitectureError, match="out of range"):
            space.resolve(bad)
    with pytest.raises(InvalidArchitectureError, match="not an integer"):
        space.from_index(1.0)


# -- neighbourhood -------------------------------------------------------------------------------------
def test_neighbours_change_one_layer_to_any_other_width(space):
    arch = space.parse("8:64:40:32:40")
    options = space.neighbours(arch)
    assert len(options) == len(set(options)) == 5 * 7
    assert arch not in options
    for other in options:
        assert sum(a != b for a, b in zip(arch.widths, other.widths)) == 1
    assert space.parse("8:16:40:32:40") in options and space.parse("8:8:40:32:40") in options
    rng = np.random.default_rng(1)
    assert all(space.mutate(arch, rng) in options for _ in range(50))


# -- Optuna -----------------------------------------------------------------------------------------------
def test_optuna_encoding(space):
    import optuna  # a declared dependency: a missing one is a failure, not a skip

    arch = space.parse("8:16:40:32:64")
    assert space.encode(arch) == {"c0": 8, "c1": 16, "c2": 40, "c3": 32, "c4": 64}
    assert space.decode(space.encode(arch)) == arch
    assert space.suggest(optuna.trial.FixedTrial(space.encode(arch))) == arch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.encode(arch))
    trial = study.ask()
    assert space.suggest(trial) == arch
    for name in PARAM_NAMES:
        dist = trial.distributions[name]
        assert isinstance(dist, optuna.distributions.CategoricalDistribution)
        assert tuple(dist.choices) == WIDTHS
    assert space.decode(trial.params) == arch


def test_decode_errors(space):
    with pytest.raises(InvalidArchitectureError, match="lack layer 'c4'"):
        space.decode({"c0": 8, "c1": 8, "c2": 8, "c3": 8})
    with pytest.raises(InvalidArchitectureError, match="not allowed"):
        space.decode({"c0": 8, "c1": 8, "c2": 8, "c3": 8, "c4": 10})


# -- networks ----------------------------------------------------------------------------------------------
def test_build_runs_and_counts_match(space):
    for text in ("8:8:8:8:8", "64:32:16:48:64", "64:64:64:64:64"):
        arch = space.parse(text)
        for classes, side in ((10, 32), (120, 16)):
            net = space.build(arch, classes)
            assert sum(p.numel() for p in net.parameters()) == space.num_params(arch, classes)
            with torch.no_grad():
                assert net.eval()(torch.zeros(2, 3, side, side)).shape == (2, classes)
    # The benchmark's own builder reports 432,586 parameters for 64:32:16:48:64 (10 classes).
    assert space.num_params(space.parse("64:32:16:48:64")) == 432586


def test_sss_cell_is_the_best_tss_cell():
    tss = NatsTSS()
    assert tss.index_of(tss.parse(CELL)) == 9930


# -- parameter counts against the benchmark's records -------------------------------------------------------
@pytest.mark.parametrize("space_cls, directory", [(NatsSSS, SSS_DIR), (NatsTSS, TSS_DIR)], ids=["sss", "tss"])
def test_params_equal_recorded(space_cls, directory):
    space = space_cls()
    records = nats_fixture_records(directory)
    built: dict[tuple[str, int], int] = {}
    matched = 0
    for index, arch_str, dataset, seed, record in records:
        arch = space.parse(arch_str)
        assert space.index_of(arch) == index
        classes = NUM_CLASSES[dataset]
        assert record["arch_config"]["class_num"] == classes
        if space_cls is NatsSSS:
            assert record["arch_config"]["genotype"] == CELL
        key = (arch_str, classes)
        if key not in built:
            built[key] = sum(p.numel() for p in space.build(arch, classes).parameters())
        analytic = space.num_params(arch, classes)
        where = f"{arch_str} {dataset} seed {seed}"
        # The records are the count / 1e6, rounded to the 6 decimals shown.
        assert analytic / 1e6 == pytest.approx(float(record["params"]), abs=5e-7), where
        assert built[key] == analytic, where
        matched += 1
    assert matched == len(records) and len(records) >= 36
    assert {d for _, _, d, _, _ in records} == set(NUM_CLASSES)
