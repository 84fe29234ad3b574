"""Capacity allocation (nas.design.capacity, `nas design capacity`): closed-form cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nas.cli import main
from nas.design.capacity import (
    capacity_allocation,
    input_gradient_energy,
    input_map_jacobian,
    layer_transfer,
    markov_allocation,
    spread,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_a_dense_layer_spreads_its_capacity_uniformly():
    rep = capacity_allocation(nn.Sequential(nn.Flatten(), nn.Linear(12, 1)), torch.zeros(1, 1, 12))
    assert np.allclose(rep.per_input, 1.0) and rep.rank == 12 and rep.total == pytest.approx(12)
    assert rep.per_parameter[:12] == pytest.approx(np.ones(12))  # the bias does not touch the input map
    assert rep.per_parameter[12] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (5, 1), (3, 4)])
def test_a_convolution_allocates_only_within_its_receptive_field(kernel, dilation):
    n, out = 24, 11
    conv = nn.Conv1d(1, 1, kernel, padding=dilation * (kernel // 2), dilation=dilation)
    rep = capacity_allocation(conv, torch.zeros(1, 1, n), output=out)
    field = {out + dilation * (j - kernel // 2) for j in range(kernel)}
    expected = np.array([1.0 if i in field else 0.0 for i in range(n)])
    assert rep.per_input.ravel() == pytest.approx(expected, abs=1e-9)
    assert rep.total == pytest.approx(kernel) and rep.rank == kernel


def test_the_total_is_the_rank_and_both_marginals_sum_to_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.Conv1d(2, 1, 3, padding=1, bias=False))
    x = torch.zeros(1, 1, 16)
    rep = capacity_allocation(model, x, output=8)
    a = input_map_jacobian(model, x, output=8)[0]
    assert rep.rank == int(torch.linalg.matrix_rank(a)) == 5  # the composite kernel has 5 taps
    assert rep.per_input.sum() == pytest.approx(rep.total) == pytest.approx(rep.per_parameter.sum())
    assert np.all(rep.per_parameter <= 1 + 1e-9) and np.all(rep.per_input <= 1 + 1e-9)


def test_the_metric_removes_what_the_data_never_varies():
    metric = torch.eye(10, dtype=torch.float64)
    metric[3, 3] = 0.0  # coordinate 3 is constant in the data
    rep = capacity_allocation(nn.Sequential(nn.Flatten(), nn.Linear(10, 1)), torch.zeros(1, 1, 10), metric=metric)
    assert rep.per_input.ravel()[3] == pytest.approx(0.0, abs=1e-12) and rep.rank == 9


def test_a_linear_model_linearised_at_many_samples_has_its_linear_capacity():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.Conv1d(2, 1, 3, padding=1))
    one = capacity_allocation(model, torch.zeros(1, 1, 16), output=8)
    many = capacity_allocation(model, torch.randn(5, 1, 16), output=8)
    assert many.per_input == pytest.approx(one.per_input, abs=1e-9) and many.rank == one.rank


def test_a_convolution_s_transfer_matrix_is_its_squared_kernel():
    conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
    t = layer_transfer(conv, torch.randn(4, 1, 9))
    assert t.sum(1) == pytest.approx(torch.ones(9, dtype=torch.float64))
    assert t[4, 3:6] == pytest.approx(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64) / 14)
    two = markov_allocation([t, t], 4)
    assert two[2:7] == pytest.approx(np.convolve([1, 4, 9], [1, 4, 9]) / 196)


def test_for_linear_layers_the_markov_chain_is_the_receptive_field():
    torch.manual_seed(0)
    layers = [nn.Conv1d(1, 1, 3, padding=1, bias=False) for _ in range(3)]
    x = torch.randn(4, 1, 15, dtype=torch.float64)
    transfers, h = [], x
    for layer in layers:
        transfers.append(layer_transfer(layer, h))
        h = layer.double()(h)
    chain = markov_allocation(transfers, 7)
    exact = input_gradient_energy(nn.Sequential(*layers), x, 7)
    assert spread(chain) > 0 and spread(exact) > 0
    # single-channel linear layers: the chain of squared kernels bounds the exact field's support
    assert set(np.nonzero(exact > 1e-12)[0]) <= set(np.nonzero(chain > 1e-12)[0])


def test_nas_design_capacity_prints_and_writes_json(tmp_path, capsys):
    pytest.importorskip("sklearn")
    argv = ["design", "capacity", "cnn(channels=2,act=identity,bn=false)", "--data", "digits", "--images", "1"]
    assert main([*argv, "--output", "0", "--json", "--plot", str(tmp_path / "c.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rank"] == 9 and out["total"] == pytest.approx(9) and len(out["per_input"][0]) == 8
    assert (tmp_path / "c.png").stat().st_size > 0
    assert main([*argv[:2], "cnn(channels=64-64)", "--data", "digits", "--images", "200"]) == 2
    assert "fewer --images" in capsys.readouterr().err
