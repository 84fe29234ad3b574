"""NASWOT and ZiCo: hand-computed kernels and gradient statistics, invariants, reproducibility,
degenerate networks, and (slow) rank agreement with the authors' code on real NB201 cells."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from nas.data import Batch, InputSpec, load_batch
from nas.errors import NasError
from nas.proxies import evaluate, get_proxy, list_proxies
from nas.proxies.naswot import activation_kernel, code_kernel, kaiming_reinit, log_abs_det
from nas.proxies.zico import zico_from_gradients
from nas.scoring import Scorer, build_network
from nas.searchspaces.nats_tss import NatsTSS

from conftest import SHARED_DATA, require

SMALL = NatsTSS(channels=4, cells_per_stage=1)
CELL = SMALL.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|")
DEAD = SMALL.parse("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")  # passes no signal


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch_of(x, y=None, classes=10) -> Batch:
    y = torch.zeros(len(x), dtype=torch.long) if y is None else torch.as_tensor(y)
    return Batch(torch.as_tensor(x, dtype=torch.float32), y, classes, InputSpec())


class IdentityReLU(nn.Module):
    """x -> ReLU(x W) with W = I, the same pre-activation read by ``relus`` ReLU modules."""

    def __init__(self, relus: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(3))
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(relus))

    def forward(self, x):
        h = self.lin(x)
        return sum(relu(h) for relu in self.relus)


# Codes of the three inputs below: (1,0,1), (1,1,0), (0,0,0): every pair differs in 2 of 3
# units, so K_H = 3 - Hamming = [[3,1,1],[1,3,1],[1,1,3]], det = 20.
INPUTS = [[1.0, -1.0, 2.0], [0.5, 3.0, -1.0], [-1.0, -2.0, 0.0]]
HAND_K = torch.tensor([[3.0, 1.0, 1.0], [1.0, 3.0, 1.0], [1.0, 1.0, 3.0]], dtype=torch.float64)


# -- NASWOT ----------------------------------------------------------------------------------------
def test_registered():
    assert {"naswot", "zico"} <= set(list_proxies())
    assert get_proxy("naswot").needs.mode == "train"
    zico = get_proxy("zico")
    assert zico.needs.labels and zico.needs.gradients


def test_hand_kernel_and_score():
    model = IdentityReLU()
    kernel = activation_kernel(model, torch.tensor(INPUTS))
    assert torch.equal(kernel, HAND_K)
    result = evaluate(get_proxy("naswot", init="default"), model, batch_of(INPUTS))
    assert result.ok
    assert result.score == pytest.approx(math.log(20.0), abs=1e-12)


def test_code_kernel_is_units_minus_hamming():
    codes = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]])
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    assert torch.equal(code_kernel(codes), (4 - hamming).to(torch.float64))


def test_relus_sharing_an_input_count_once_each():
    """Two ReLU modules on the same tensor: K doubles (det x 2^3), as hooking each module does."""
    kernel = activation_kernel(IdentityReLU(relus=2), torch.tensor(INPUTS))
    assert torch.equal(kernel, 2 * HAND_K)
    assert log_abs_det(kernel) == pytest.approx(math.log(160.0), abs=1e-12)


def naive_kernel(model, x):
    """Straight from the definition: a hook per ReLU module, codes from its input."""
    total = torch.zeros(len(x), len(x), dtype=torch.float64)

    def hook(module, inputs, output):
        nonlocal total
        c = (inputs[0] > 0).reshape(len(x), -1).to(torch.float64)
        total += c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def test_kernel_matches_definition_on_a_cell_network():
    """Shared node tensors, an in-place ReLU (the head's), several stages: same K as the naive
    per-module hooks; K is symmetric positive semidefinite with N_A on the diagonal."""
    model = build_network(SMALL, CELL, 10, seed=0).train()
    x = load_batch(InputSpec(batch_size=12)).inputs
    ours = activation_kernel(model, x)
    assert torch.equal(ours, naive_kernel(model, x))
    assert torch.equal(ours, ours.T)
    assert torch.all(ours.diagonal() == ours[0, 0])  # every sample: N_A agreements with itself
    assert torch.linalg.eigvalsh(ours).min() > -1e-9 * ours[0, 0]
    assert math.isfinite(log_abs_det(ours))


def test_kaiming_reinit():
    model = build_network(SMALL, CELL, 10, seed=0)
    kaiming_reinit(model, seed=3)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() > 500)
    fan_in = conv.weight.shape[1] * conv.weight.shape[2] * conv.weight.shape[3]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.15)
    assert torch.all(model.classifier.bias == 0)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(b.weight == 1) and torch.all(b.bias == 0) for b in bns)
    again = build_network(SMALL, CELL, 10, seed=0)
    kaiming_reinit(again, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_naswot_reproducible_and_seeded_by_the_network():
    batch = load_batch(InputSpec(batch_size=16))
    proxy = get_proxy("naswot")

    def score(seed, **params):
        model = build_network(SMALL, CELL, 10, seed)
        return evaluate(get_proxy("naswot", **params) if params else proxy, model, batch).score

    first = score(0)
    torch.manual_seed(1234)  # the global RNG does not matter
    assert score(0) == first
    assert score(1) != first  # the network seed picks the re-initialisation draw
    assert score(0, init_seed=7) == score(1, init_seed=7)  # a fixed draw ignores the network
    assert score(0, init="default") != first


def test_scorer_order_does_not_change_scores():
    inputs = InputSpec(batch_size=8)
    alone = Scorer(SMALL, [get_proxy("naswot")], inputs).score(CELL)["naswot"]
    both = Scorer(SMALL, [get_proxy("zico"), get_proxy("naswot")], inputs).score(CELL)
    assert alone.ok and both["naswot"].score == alone.score and both["zico"].ok


def test_identical_inputs_fail():
    x = torch.randn(1, 3, 32, 32).repeat(6, 1, 1, 1)
    result = evaluate(get_proxy("naswot"), build_network(SMALL, CELL, 10, 0), batch_of(x))
    assert not result.ok and result.score == -math.inf and "non-finite" in result.reason


def test_dead_cell_fails_both():
    batch = load_batch(InputSpec(batch_size=8))
    for name in ("naswot", "zico"):
        result = evaluate(get_proxy(name), build_network(SMALL, DEAD, 10, 0), batch)
        assert not result.ok and result.score == -math.inf, name


def test_naswot_needs_relu_modules():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    result = evaluate(get_proxy("naswot"), model, load_batch(InputSpec(batch_size=4)))
    assert not result.ok and "no nn.ReLU" in result.reason


def test_bad_parameters():
    with pytest.raises(NasError):
        get_proxy("naswot", init="xavier")
    with pytest.raises(NasError):
        get_proxy("zico", splits=1)
    with pytest.raises(NasError):
        get_proxy("zico", batches=2)


# -- ZiCo ------------------------------------------------------------------------------------------
def linear_two_class():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.zero_()  # uniform softmax: dL/dW = (p - onehot(y)) x^T with p = (1/2, 1/2)
    return model


def test_zico_hand_gradients():
    """Two sub-batches of one sample, label 0, x = (1, 1) then (3, 1):
    g1 = [[-.5, -.5], [.5, .5]], g2 = [[-1.5, -.5], [1.5, .5]]. Column 0 has mean|g| = 1 and
    std = 0.5 (ratio 2, twice); column 1 does not vary (left out). Score = log(2 + 2)."""
    result = evaluate(get_proxy("zico"), linear_two_class(), batch_of([[1, 1], [3, 1]], [0, 0], 2))
    assert result.ok
    assert result.score == pytest.approx(math.log(4.0), abs=1e-12)


def test_zico_is_a_sum_of_per_layer_logs_of_sums():
    a = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])]  # ratios 2 and (left out)
    b = [torch.tensor([1.0, 1.0]), torch.tensor([-1.0, 2.0])]  # ratios 1 and 3
    assert zico_from_gradients({"a": a}) == pytest.approx(math.log(2.0))
    # log(2) + log(1 + 3); a sum of logs over all weights, or one log of the total, gives log(6)
    assert zico_from_gradients({"a": a, "b": b}) == pytest.approx(math.log(8.0))
    # three sub-batches: population std (ddof 0): values 0, 0, 3 -> mean|g| 1, std sqrt(2)
    c = [torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.0])]
    assert zico_from_gradients({"c": c}) == pytest.approx(math.log(1 / math.sqrt(2.0)))
    assert zico_from_gradients({"d": [torch.ones(3), torch.ones(3)]}) == -math.inf


def test_zico_reproducible_and_default_init():
    batch = load_batch(InputSpec(batch_size=8))
    scores = {evaluate(get_proxy("zico"), build_network(SMALL, CELL, 10, 0), batch).score for _ in range(2)}
    assert len(scores) == 1 and math.isfinite(scores.pop())
    model = build_network(SMALL, CELL, 10, 0)
    before = [p.detach().clone() for p in model.parameters()]
    evaluate(get_proxy("zico"), model, batch)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))  # not re-drawn
    kaiming = evaluate(get_proxy("zico", init="kaiming"), build_network(SMALL, CELL, 10, 0), batch)
    assert kaiming.ok


def test_zico_batch_must_split_evenly():
    result = evaluate(get_proxy("zico"), linear_two_class(), batch_of([[1, 1], [3, 1], [2, 2]], [0, 1, 0], 2))
    assert not result.ok and "equal sub-batches" in result.reason


# -- agreement with the authors' code (slow: full-size NB201 networks) ------------------------------
@pytest.mark.slow
def test_rank_agreement_with_reference_cells():
    from scipy.stats import spearmanr

    table = require(SHARED_DATA / "reference" / "peer_scores_nb201_500.csv")
    cifar = require(SHARED_DATA / "cifar10" / "cifar-10-batches-py")
    rows = list(csv.DictReader(open(table)))[:12]
    space = NatsTSS()
    gaussian = load_batch(InputSpec(batch_size=64))
    real = load_batch(InputSpec(source="cifar10", batch_size=128, path=str(cifar)))
    ours = {"naswot": [], "zico": []}
    for row in rows:
        cell = space.parse(row["arch_str"])
        for name, batch in (("naswot", gaussian), ("zico", real)):
            ours[name].append(evaluate(get_proxy(name), build_network(space, cell, 10, 0), batch).score)
    for name in ours:
        reference = [float(r[name]) for r in rows]
        pairs = [(a, b) for a, b in zip(ours[name], reference) if math.isfinite(a) and math.isfinite(b) and b != 0]
        assert spearmanr(*zip(*pairs))[0] > 0.9, name
