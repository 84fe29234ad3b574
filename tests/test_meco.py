"""MeCo / MeCo_opt: hand-computable correlation eigenvalues, the module set, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.linalg import hadamard
from torch import nn

from nas.data import Batch, InputSpec
from nas.errors import NasError
from nas.proxies import evaluate, get_proxy, list_proxies
from nas.proxies.meco import meco_terms, min_correlation_eigenvalue

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def orthogonal_channels(channels: int, side: int = 8) -> torch.Tensor:
    """1 x channels x side x side: rows of a Hadamard matrix without the all-ones row, so every
    channel is centred and the channels are exactly uncorrelated (correlation matrix = I)."""
    rows = torch.tensor(hadamard(side * side)[1 : channels + 1], dtype=torch.float64)
    return rows.reshape(1, channels, side, side)


def batch_of(x: torch.Tensor) -> Batch:
    return Batch(x, torch.zeros(len(x), dtype=torch.long), 10, InputSpec())


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return x


# -- the eigenvalue of one feature map ---------------------------------------------------------------
def test_exactly_correlated_channels_give_zero():
    a = torch.randn(50, dtype=torch.float64)
    features = torch.stack([a, 3 * a + 2, -0.5 * a])
    assert min_correlation_eigenvalue(features) == pytest.approx(0.0, abs=1e-12)


def test_uncorrelated_channels_give_one():
    features = orthogonal_channels(12)[0].reshape(12, -1)
    assert min_correlation_eigenvalue(features) == pytest.approx(1.0, abs=1e-12)
    # independent random channels: ~1 up to sampling noise (min eig of a 4x4 sample correlation)
    noise = torch.randn(4, 100_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert min_correlation_eigenvalue(noise) == pytest.approx(1.0, abs=0.02)


def test_two_channels_with_correlation_r_give_one_minus_r():
    u, w = orthogonal_channels(2)[0].reshape(2, -1)
    u, w = u / u.norm(), w / w.norm()
    for r in (0.0, 0.3, 0.9, -0.6):
        b = r * u + math.sqrt(1 - r * r) * w
        assert min_correlation_eigenvalue(torch.stack([u, b])) == pytest.approx(1 - abs(r), abs=1e-12)


def test_constant_channel_zeroes_its_row_and_column():
    features = orthogonal_channels(3)[0].reshape(3, -1).clone()
    features[1] = 4.0  # zero variance: NaN correlations -> 0, diagonal included
    assert min_correlation_eigenvalue(features) == pytest.approx(0.0, abs=1e-12)


# -- the module set: every module, containers and the network included --------------------------------
def test_every_module_counts_including_containers_and_the_network():
    x = orthogonal_channels(12)
    net = nn.Sequential(nn.Identity(), nn.Sequential(nn.Identity()))  # 4 modules, 4 outputs = x
    assert meco_terms(net, x) == pytest.approx([1.0, 1.0, 1.0, 1.0], abs=1e-12)
    assert get_proxy("meco", input="batch", size=None).score(net, batch_of(x)) == pytest.approx(4.0, abs=1e-12)


def test_correlated_layer_and_pooled_outputs_add_zero():
    conv = nn.Conv2d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight[:] = torch.tensor([1.0, -2.0]).view(2, 1, 1, 1)
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    x = torch.randn(1, 1, 6, 6)
    # conv: two exactly (anti-)correlated channels -> 0; pooled, flat and linear outputs have one
    # position per channel -> all-zero matrix -> 0; the network's own output likewise
    assert meco_terms(net, x) == pytest.approx([0.0] * 5, abs=1e-6)


def test_meco_opt_weights_sampled_channels_by_c_over_n():
    x = orthogonal_channels(12)
    net = nn.Sequential(nn.Identity())  # 2 modules
    real = {"input": "batch", "size": None}
    assert get_proxy("meco_opt", **real).score(net, batch_of(x)) == pytest.approx(2 * 12 / 8, abs=1e-12)
    assert get_proxy("meco_opt", channels=16, **real).score(net, batch_of(x)) == pytest.approx(2.0, abs=1e-12)


# -- inputs and reproducibility -------------------------------------------------------------------
def test_input_choices_and_sizes():
    rec = Recorder()
    batch = batch_of(torch.randn(3, 3, 32, 32))
    get_proxy("meco").score(rec, batch)
    get_proxy("meco", input="batch", size=None).score(rec, batch)
    get_proxy("meco", input="gaussian", size=None).score(rec, batch)
    get_proxy("meco", input="batch", size=16).score(rec, batch)
    assert rec.shapes == [(1, 3, 64, 64), (1, 3, 32, 32), (1, 3, 32, 32), (1, 3, 16, 16)]
    assert get_proxy("meco").params == {"input": "gaussian", "size": 64, "seed": 0}
    with pytest.raises(NasError):
        get_proxy("meco", input="noise")
    with pytest.raises(NasError):
        get_proxy("meco_opt", channels=1)


@pytest.fixture(scope="module")
def tss():
    from nas.searchspaces import get_space

    space = get_space("nats-tss")

    def build(text: str) -> nn.Module:
        torch.manual_seed(0)
        return space.build(space.parse(text), 10)

    return build


CELL = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def test_tss_cell_reproducible_and_finite(tss):
    batch = batch_of(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    for spec in ({"size": 32}, {"input": "batch", "size": None}):
        a = evaluate(get_proxy("meco", **spec), tss(CELL), batch)
        b = evaluate(get_proxy("meco", **spec), tss(CELL), batch)
        assert a.ok and math.isfinite(a.score) and a.score > 0
        assert a.score == b.score
    opt = [evaluate(get_proxy("meco_opt", seed=s, size=32), tss(CELL), batch).score for s in (0, 0, 1)]
    assert opt[0] == opt[1] != opt[2]


def test_all_none_cell_scores_only_its_stem_and_reductions(tss):
    batch = batch_of(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    dead = evaluate(get_proxy("meco", size=32), tss("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), batch)
    live = evaluate(get_proxy("meco", size=32), tss(CELL), batch)
    assert dead.ok and 0 <= dead.score < live.score


def test_registered():
    assert {"meco", "meco_opt"} <= set(list_proxies())
    assert get_proxy("meco").higher_is_better and get_proxy("meco_opt").higher_is_better
