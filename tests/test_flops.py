"""FLOP counting: the hook counter on small modules, the closed forms of the cell networks, and both
against the benchmark's recorded ``flop`` values (TSS and SSS fixtures, 500-cell peer reference)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from nas.searchspaces.base import SearchSpace
from nas.searchspaces.flops import count_flops
from nas.searchspaces.nats_sss import NatsSSS
from nas.searchspaces.nats_tss import NatsTSS
from nas.searchspaces.nb201_network import cell_network_flops

from conftest import SHARED_DATA, nats_fixture_records, require

DATA = SHARED_DATA  # ../shared/data beside the repository
SSS_DIR = DATA / "nats" / "NATS-sss-v1_0-50262-simple"
TSS_DIR = DATA / "nats" / "NATS-tss-v1_0-3ffb9-simple"
PEER_CSV = DATA / "reference" / "peer_scores_nb201_500.csv"
FIXTURE_INDICES = (0, 11, 284)
NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
INPUT_SIZE = {"cifar10-valid": 32, "cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the counter on hand-checked modules ------------------------------------------------------------
def test_conv_counts_kernel_channels_groups_bias_and_stride():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)  # 8x8 -> 4x4
    assert count_flops(conv, 8, in_channels=4) == 3 * 3 * 4 * 6 * 4 * 4
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=True)
    assert count_flops(conv, 8, in_channels=4) == (9 * 4 * 6 + 6) * 64
    grouped = nn.Conv2d(4, 6, 1, groups=2, bias=False)
    assert count_flops(grouped, 5, in_channels=4) == (4 // 2) * 6 * 25
    rect = nn.Conv2d(3, 2, (1, 3), padding=(0, 1), bias=False)
    assert count_flops(rect, (4, 7)) == 3 * 3 * 2 * 4 * 7
    conv1d = nn.Conv1d(2, 5, 3, bias=True)  # length 10 -> 8
    assert count_flops(conv1d, (10,), in_channels=2) == (3 * 2 * 5 + 5) * 8
    up = nn.ConvTranspose2d(2, 3, 2, stride=2, bias=False)  # each input pixel hits 2*2*3 weights
    assert count_flops(up, 4, in_channels=2) == 4 * 4 * 2 * (2 * 2 * 3)


def test_linear_bias_and_everything_else_is_free():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 7),
        nn.Linear(7, 2, bias=False),
    )
    assert count_flops(model, 6) == 27 * 4 * 36 + (4 * 7 + 7) + 7 * 2


def test_reused_module_counts_each_call():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)

        def forward(self, x):
            return self.conv(self.conv(x))

    assert count_flops(Twice(), 4) == 2 * 9 * 16


def test_model_is_left_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 5, 5))  # materialise the lazy layer
    model.train()
    model[2].eval()  # mixed modes must come back exactly
    stats = model[1].running_mean.clone()
    first = count_flops(model, 5)
    assert first == count_flops(model, 5) == (9 * 3 * 4 + 4) * 9 + (36 * 2 + 2)  # conv has a bias
    assert [m.training for m in model] == [True, True, False, True, True]
    assert torch.equal(model[1].running_mean, stats)
    assert all(not m._forward_hooks for m in model.modules())


def test_base_space_default_uses_the_hook_counter():
    # SearchSpace.flops builds and counts; the NATS spaces override it with the closed form.
    tss = NatsTSS()
    arch = tss.from_index(11)
    assert SearchSpace.flops(tss, arch, 10, 32) == tss.flops(arch, 10, 32) == 113951370


# -- closed form against the counter ---------------------------------------------------------------------
def test_closed_form_equals_hook_counter_sss():
    space = NatsSSS()
    rng = np.random.default_rng(0)
    archs = [space.from_index(0), space.from_index(space.size - 1)] + [space.sample(rng) for _ in range(8)]
    for arch in archs:
        for classes, side in ((10, 32), (120, 16)):
            assert space.flops(arch, classes, side) == count_flops(space.build(arch, classes), side), arch


def test_closed_form_equals_hook_counter_tss():
    space = NatsTSS()
    rng = np.random.default_rng(1)
    for arch in [space.sample(rng) for _ in range(3)] + [space.from_index(9930)]:
        for classes, side in ((100, 32), (120, 16)):
            assert space.flops(arch, classes, side) == count_flops(space.build(arch, classes), side), arch


def test_closed_form_rejects_sizes_the_network_cannot_take():
    with pytest.raises(ValueError, match="input_size 30"):
        cell_network_flops(["none"] * 6, [8] * 5, [False, True, False, True, False], 10, 30)


# -- against the benchmark's records ----------------------------------------------------------------------
@pytest.mark.parametrize("space_cls, directory", [(NatsSSS, SSS_DIR), (NatsTSS, TSS_DIR)], ids=["sss", "tss"])
def test_flops_equal_recorded(space_cls, directory):
    space = space_cls()
    records = nats_fixture_records(directory)
    hooked: dict[tuple[str, str], int] = {}
    for _, arch_str, dataset, seed, record in records:
        arch = space.parse(arch_str)
        classes, side = NUM_CLASSES[dataset], INPUT_SIZE[dataset]
        if (arch_str, dataset) not in hooked:
            hooked[(arch_str, dataset)] = count_flops(space.build(arch, classes), side)
        closed = space.flops(arch, classes, side)
        where = f"{arch_str} {dataset} seed {seed}"
        # The records are MACs / 1e6; every recorded digit must agree.
        assert closed / 1e6 == pytest.approx(float(record["flop"]), abs=5e-7), where
        assert hooked[(arch_str, dataset)] == closed, where
    assert len(records) >= 36 and {d for _, _, d, _, _ in records} == set(NUM_CLASSES)


def test_flops_equal_peer_reference_500_cells():
    space = NatsTSS()
    with open(require(PEER_CSV), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 500
    # The column is in millions of MACs (CIFAR-10, 10 classes, 32x32), e.g. 90.35841.
    mismatches = [
        r["arch_str"]
        for r in rows
        if abs(space.flops(space.parse(r["arch_str"]), 10, 32) / 1e6 - float(r["flops"])) > 5e-7
    ]
    assert not mismatches, f"{len(mismatches)}/500 differ, e.g. {mismatches[:3]}"
    # The hook counter on built networks, for a spread of the same cells.
    for row in rows[::100]:
        arch = space.parse(row["arch_str"])
        assert count_flops(space.build(arch, 10), 32) / 1e6 == pytest.approx(float(row["flops"]), abs=5e-7)
