"""NEAR: effective rank, the activation-matrix protocol, the fast engine against the per-sample
one, the official regression anchors, degenerate networks, and the design tools."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nas.data import load_batch, parse_data_arg
from nas.design.near import estimate_layer_size, fit_layer_size, rank_activation_init
from nas.errors import NasError
from nas.proxies import evaluate, get_proxy, list_proxies
from nas.proxies.near import (
    NonFiniteActivations,
    activation_matrices,
    effective_rank,
    hooked_modules,
    layer_ranks,
    near_score,
    reset_parameters,
)
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

from conftest import SHARED_DATA, require

CIFAR = SHARED_DATA / "cifar10" / "cifar-10-batches-py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def erank_closed_form(singular_values) -> float:
    s = np.asarray(singular_values, dtype=np.float64)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


# -- effective rank -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 10, 64])
def test_effective_rank_of_identity_is_its_size(n):
    assert effective_rank(torch.eye(n)) == pytest.approx(n, rel=1e-12)
    assert effective_rank(7.5 * torch.eye(n), precision="float32") == pytest.approx(n, rel=1e-6)


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.25, 0.6, 0.99])
def test_effective_rank_of_circulant_matches_roy_vetterli(rho):
    # Circulant with first row (1, r, r^2, r): eigenvalues 1 + r w^k + r^2 w^2k + r w^3k, w = i,
    # i.e. (1+r)^2, 1-r^2, 1-r^2, (1-r)^2; symmetric, so these are the singular values up to sign.
    # They sum to 4, and p = s/4 is the product of two Bernoulli((1+|r|)/2) laws: H = 2 h(q).
    a = torch.tensor(
        [[1, rho, rho**2, rho], [rho, 1, rho, rho**2], [rho**2, rho, 1, rho], [rho, rho**2, rho, 1]],
        dtype=torch.float64,
    )
    q = (1 + abs(rho)) / 2
    h = -sum(x * math.log(x) for x in (q, 1 - q) if x > 0)
    assert effective_rank(a) == pytest.approx(math.exp(2 * h), rel=1e-9)
    s = torch.linalg.svdvals(a).numpy()
    expected = sorted([(1 + abs(rho)) ** 2, 1 - rho**2, 1 - rho**2, (1 - abs(rho)) ** 2], reverse=True)
    np.testing.assert_allclose(s, expected, atol=1e-12)


def test_effective_rank_rank_one_zero_and_equal_spectra():
    u, v = torch.randn(7, 1, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.zeros(4, 4)) == 0.0
    assert effective_rank(torch.zeros(0, 3)) == 0.0
    # k equal singular values and zeros: exactly k; scale does not matter
    assert effective_rank(torch.diag(torch.tensor([3.0, 3.0, 3.0, 0.0, 0.0]))) == pytest.approx(3.0)
    m = torch.randn(6, 6, dtype=torch.float64)
    assert effective_rank(1e-3 * m) == pytest.approx(effective_rank(m), rel=1e-10)
    with pytest.raises(NonFiniteActivations):
        effective_rank(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


# -- the protocol on a network small enough to check by hand ---------------------------------------
class HandNet(nn.Module):
    """conv 1x1 (identity) -> ReLU -> flatten -> linear (no bias) -> Tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        self.act = nn.ReLU()
        self.fc = nn.Linear(18, 2, bias=False)
        self.out = nn.Tanh()
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            self.fc.weight.copy_(torch.arange(36, dtype=torch.float32).view(2, 18).sin())

    def forward(self, x):
        return self.out(self.fc(self.act(self.conv(x)).flatten(1)))


def hand_expected(x: np.ndarray, seed: int) -> list[float]:
    """The NEAR protocol spelled out for HandNet: sample 0 completes conv and ReLU (9 rows >= 2
    columns), each keeping rows 3k, 3k+1 (row = w * 3 + h, channels as columns) with k =
    randint(0, 9 // 3 - 1) drawn in call order; the linear layer and Tanh need two samples."""
    rng = np.random.RandomState(seed)
    conv = x[0]  # identity 1x1 convolution
    k_conv = rng.randint(0, 2)
    k_relu = rng.randint(0, 2)

    def rows(t, k):  # rows 0, 1 of column w = k
        return np.stack([t[:, h, k] for h in (0, 1)])

    fc_w = np.sin(np.arange(36, dtype=np.float32)).reshape(2, 18)
    dense = np.stack([fc_w @ np.maximum(x[i], 0).reshape(-1) for i in (0, 1)])
    mats = [rows(conv, k_conv), rows(np.maximum(conv, 0), k_relu), dense, np.tanh(dense)]
    return [erank_closed_form(np.linalg.svd(m.astype(np.float64), compute_uv=False)) for m in mats]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 5])
def test_hand_checked_network(fast, seed):
    torch.manual_seed(3)
    x = torch.randn(4, 2, 3, 3)
    net = HandNet()
    ranks = layer_ranks(net, x, np.random.RandomState(seed), fast=fast)
    assert [name for name, _ in ranks] == ["conv", "act", "fc", "out"]
    np.testing.assert_allclose([r for _, r in ranks], hand_expected(x.numpy(), seed), rtol=1e-5)
    assert near_score(net, x, seed=seed, fast=fast) == pytest.approx(sum(hand_expected(x.numpy(), seed)), rel=1e-5)


def test_hooked_modules_follow_the_official_rule():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.LayerNorm(4),
        nn.Linear(4, 2),
        nn.Dropout(),
        nn.Softmax(dim=1),
    )
    assert [name for name, _ in hooked_modules(net)] == ["0", "1", "2", "5", "6", "8"]


def test_matrices_are_square_blocks_cut_short_near_the_end():
    # 8 channels on a 4x4 map: 16 rows, start = randint(0, 16 // 4 - 1) * 4 in {0, 4, 8}; a start
    # of 12 is impossible and a start of 8 leaves 8 rows; the official code behaves the same way.
    net = nn.Sequential(nn.Conv2d(1, 8, 1))
    x = torch.randn(3, 1, 4, 4)
    shapes = set()
    for seed in range(10):
        ((_, m),) = activation_matrices(net, x, np.random.RandomState(seed))
        shapes.add(tuple(m.shape))
        start = 4 * np.random.RandomState(seed).randint(0, 3)
        full = net(x[:1]).detach()[0].permute(2, 1, 0).reshape(16, 8)
        torch.testing.assert_close(m, full[start : start + 8])
    assert shapes == {(8, 8)}
    net = nn.Sequential(nn.Conv2d(1, 16, 1))
    shapes = {tuple(activation_matrices(net, x, np.random.RandomState(s))[0][1].shape) for s in range(20)}
    assert shapes == {(16, 16), (12, 16), (8, 16)}


# -- fast engine == per-sample engine ---------------------------------------------------------------
class Shared(nn.Module):
    """Modules called twice per forward pass: a conv that needs both calls of the first sample,
    and a dense layer that completes in the middle of a later sample."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.SiLU()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        x = self.act(self.bn(self.conv(self.act(self.bn(self.conv(x))))))
        v = x.mean(dim=(2, 3))
        return self.fc(torch.tanh(self.fc(v)))


@pytest.mark.parametrize("seed", [0, 3])
def test_fast_equals_per_sample_with_shared_modules_and_batchnorm(seed):
    torch.manual_seed(seed)
    net = Shared().train()
    x = torch.randn(10, 6, 2, 2)  # 4 rows per call < 6 channels: the conv needs two calls
    fast = layer_ranks(net, x, np.random.RandomState(seed), fast=True)
    slow = layer_ranks(net, x, np.random.RandomState(seed), fast=False)
    assert [n for n, _ in fast] == [n for n, _ in slow] == ["conv", "bn", "act", "fc"]
    np.testing.assert_allclose([r for _, r in fast], [r for _, r in slow], rtol=1e-5)
    # too few samples: modules keep what they have, in both engines
    short = [layer_ranks(net, x[:2], np.random.RandomState(seed), fast=f) for f in (True, False)]
    np.testing.assert_allclose([r for _, r in short[0]], [r for _, r in short[1]], rtol=1e-5)


class InPlace(nn.Module):
    """Outputs changed in place after their hook ran: an in-place ReLU after a BatchNorm and a
    residual ``+=`` onto a convolution's output (the fast engine must copy before they happen)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6, 7)

    def forward(self, x):
        h = self.act(self.bn(self.conv(x)))
        out = self.conv2(h)
        out += h
        return self.fc(out.mean(dim=(2, 3)))


class Odd(nn.Module):
    """3-D and 5-D activations (laid out like 4-D ones: positions reversed, channels as columns)."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Conv1d(2, 5, 3)
        self.vol = nn.Conv3d(1, 4, 2)
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        a = self.seq(x.flatten(2)[:, :2, :20])
        v = self.vol(x[:, :1].unsqueeze(1).expand(-1, 1, 3, -1, -1).contiguous().view(len(x), 1, 3, 6, 6))
        return self.fc(v.mean(dim=(2, 3, 4)) + a.mean(dim=2)[:, :4])


@pytest.mark.parametrize("net_class", [InPlace, Odd])
@pytest.mark.parametrize("seed", [0, 4])
def test_fast_equals_per_sample_with_in_place_ops_and_other_ranks(net_class, seed):
    torch.manual_seed(seed)
    net = net_class().train()
    x = torch.randn(12, 3, 6, 6)
    fast = layer_ranks(net, x, np.random.RandomState(seed), fast=True)
    slow = layer_ranks(net, x, np.random.RandomState(seed), fast=False)
    assert [n for n, _ in fast] == [n for n, _ in slow] and len(fast) >= 3
    np.testing.assert_allclose([r for _, r in fast], [r for _, r in slow], rtol=1e-5)


def test_block_starts_are_the_protocol_draws_in_order():
    from nas.proxies.near.capture import _block_start
    from nas.proxies.near.engines import _block_starts

    rows, sizes = [1024, 16, 64, 10, 256, 3, 64], [32, 16, 8, 1, 16, 5, 8]  # bounds 31, 0, 7, 9, 15, -1, 7

    class Custom:  # any object with randint (scalar bounds only)
        def __init__(self):
            self.inner = np.random.RandomState(9)

        def randint(self, low, high):
            assert np.ndim(high) == 0
            return self.inner.randint(low, high)

    for make in (lambda: np.random.RandomState(3), Custom):
        one, many = make(), make()
        expected = [_block_start(one, r, s) for r, s in zip(rows, sizes)]
        assert _block_starts(many, rows, sizes) == expected
        assert one.randint(0, 1000) == many.randint(0, 1000)  # the same draws consumed


def test_matrices_are_ordinary_tensors_and_batchnorm_is_restored():
    torch.manual_seed(0)
    net = InPlace().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for name, m in activation_matrices(net, torch.randn(12, 3, 6, 6)):
        assert not m.is_inference(), name
        m.mul_(2.0)  # usable like any tensor
    assert "forward" not in net.bn.__dict__
    for k, v in net.state_dict().items():  # running statistics untouched
        torch.testing.assert_close(v, before[k])


@pytest.fixture(scope="module")
def cifar_batch():
    return load_batch(parse_data_arg(f"cifar10:{require(CIFAR)}", batch_size=64, seed=0))


@pytest.mark.parametrize(
    "cell",
    [
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
        "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    ],
)
def test_fast_equals_per_sample_on_nats_tss(cifar_batch, cell):
    space = NatsTSS()
    arch = space.parse(cell)
    fast = layer_ranks(
        build_network(space, arch, 10, 0).train(), cifar_batch.inputs, np.random.RandomState(0), fast=True
    )
    slow = layer_ranks(
        build_network(space, arch, 10, 0).train(), cifar_batch.inputs, np.random.RandomState(0), fast=False
    )
    assert [n for n, _ in fast] == [n for n, _ in slow]
    assert "classifier" == fast[-1][0] and "stem.0" == fast[0][0]
    np.testing.assert_allclose([r for _, r in fast], [r for _, r in slow], rtol=1e-4, atol=1e-4)
    assert sum(r for _, r in fast) == pytest.approx(sum(r for _, r in slow), rel=1e-6)


def test_proxy_is_registered_and_scores_a_cell(cifar_batch):
    assert "near" in list_proxies()
    proxy = get_proxy("near")
    assert proxy.higher_is_better and proxy.needs.mode == "train"
    space = NatsTSS()
    model = build_network(
        space,
        space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        10,
        0,
    )
    result = evaluate(proxy, model, cifar_batch)
    assert result.ok and 1000 < result.score < 10000
    with pytest.raises(NasError):
        get_proxy("near", batchnorm="batch")
    with pytest.raises(NasError):
        get_proxy("near", repetitions=0)


# -- the official regression anchors ----------------------------------------------------------------
def official_setup():
    np.random.seed(42)
    torch.manual_seed(42)
    x, y = torch.rand(200, 3, 10, 10), torch.rand(200, 5)
    return DataLoader(TensorDataset(x, y), batch_size=1, shuffle=True)


@pytest.mark.parametrize("fast", [True, False])
def test_official_regression_anchor(fast):
    """The official test: same seeds, same RNG call order (DataLoader shuffles and default
    re-initialisation on torch's generator, block starts on numpy's global one)."""
    loader = official_setup()
    model = nn.Sequential(
        nn.Conv2d(3, 3, 5),
        nn.Flatten(),
        nn.SiLU(),
        nn.Linear(108, 50),
        nn.SiLU(),
        nn.Linear(50, 25),
        nn.SiLU(),
        nn.Linear(25, 5),
    )
    score = near_score(model, loader, repetitions=5, rng=np.random, fast=fast, precision="float32")
    assert score == pytest.approx(132.1655230906162, rel=1e-6)


def test_official_layer_size_anchor():
    """The official layer-size test (Tanh networks, widths 10 * 2**i, layer 4), models built up
    front and reset after scoring as the official loop does."""
    loader = official_setup()
    sizes = [10 * 2**i for i in range(9)]
    models = [
        nn.Sequential(
            nn.Conv2d(3, 3, 5), nn.Flatten(), nn.Tanh(), nn.Linear(108, s), nn.Tanh(), nn.Linear(s, 5), nn.Tanh()
        )
        for s in sizes
    ]
    relative = []
    for size, model in zip(sizes, models):
        relative.append(near_score(model, loader, layer_index=4, rng=np.random) / size)
        reset_parameters(model)
    assert fit_layer_size(sizes, relative).size == pytest.approx(24.280967850662, rel=1e-4)


# -- repetitions, BatchNorm options, degenerate networks ------------------------------------------
def test_reinit_between_repetitions():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    x = torch.randn(20, 4)
    kept = near_score(net, x, repetitions=3, reinit=False)
    assert torch.all(net[0].weight == 0.5)
    near_score(net, x, repetitions=2, reinit=True)
    assert not torch.all(net[0].weight == 0.5)
    assert math.isfinite(kept)


def test_batchnorm1d_after_dense_needs_eval_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU()).train()
    x = torch.randn(16, 4)
    for fast in (True, False):
        with pytest.raises(ValueError):
            near_score(net, x, fast=fast)
    scores = [near_score(net, x, batchnorm="eval", fast=f) for f in (True, False)]
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    assert net[1].training  # restored


def test_degenerate_networks():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 6, 6)
    zero = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    for p in zero.parameters():
        nn.init.zeros_(p)
    assert near_score(zero, x) == 0.0
    space = NatsTSS()
    empty = build_network(space, space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), 10, 0)
    assert math.isfinite(near_score(empty.train(), torch.randn(12, 3, 32, 32)))
    broken = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with torch.no_grad():
        broken[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteActivations, match="'0'|0"):
        near_score(broken, x)
    result = evaluate(get_proxy("near"), broken, _batch(x))
    assert not result.ok and "NaN or infinite activations" in result.reason


def _batch(x):
    from nas.data import Batch, InputSpec

    return Batch(x, torch.zeros(len(x), dtype=torch.long), 10, InputSpec())


# -- design tools ---------------------------------------------------------------------------------
def rank_sqrt_layer(size: int) -> nn.Module:
    """A layer whose activation matrix on the standard basis has sqrt(size) equal singular values,
    so its NEAR is sqrt(size) and the relative score size**-0.5: the fit is exactly a=0, b=1,
    c=-1/2 and the estimate threshold**(1/(c-1)) = 0.005**(-2/3)."""
    k = math.isqrt(size)
    layer = nn.Linear(144, size, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[torch.arange(k), torch.arange(k)] = 1.0
    return nn.Sequential(layer, nn.ReLU())


def test_estimate_layer_size_on_a_derivable_case():
    sizes = [4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144]
    estimate = estimate_layer_size(rank_sqrt_layer, sizes, torch.eye(144), layer_index=1)
    np.testing.assert_allclose(estimate.relative_scores, [s**-0.5 for s in sizes], rtol=1e-6)
    assert (estimate.a, estimate.b, estimate.c) == pytest.approx((0.0, 1.0, -0.5), abs=1e-6)
    assert float(estimate) == pytest.approx(0.005 ** (-2 / 3), rel=1e-5)
    assert fit_layer_size(sizes, estimate.relative_scores, 0.01).size == pytest.approx(0.01 ** (-2 / 3), rel=1e-5)


def test_ranking_flags_bad_activation_and_init_as_worst():
    def build(act):
        return nn.Sequential(nn.Linear(8, 24), act(), nn.Linear(24, 24), act(), nn.Linear(24, 24), act())

    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "constant": lambda: nn.Threshold(1e9, 0.0)}
    inits = {"default": None, "xavier": nn.init.xavier_uniform_, "zeros": nn.init.zeros_}
    ranking = rank_activation_init(build, activations, inits, torch.randn(64, 8), repetitions=2)
    assert len(ranking) == 9
    bad = {(r.activation, r.init) for r in ranking if r.activation == "constant" or r.init == "zeros"}
    assert {(r.activation, r.init) for r in ranking[-len(bad) :]} == bad
    assert all(r.flagged for r in ranking[-len(bad) :]) and not any(r.flagged for r in ranking[: -len(bad)])
    assert ranking[0].score > 3 * ranking[-len(bad)].score
