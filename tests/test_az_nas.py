"""AZ-NAS's expressivity, progressivity and trainability: closed forms on hand-made blocks, the
failure rules, and agreement with the authors' code on real NATS-TSS reference cells."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from nas.data import InputSpec, load_batch
from nas.errors import NasError
from nas.proxies import evaluate, get_proxy
from nas.proxies.az_nas import block_expressivity, trainability
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

from conftest import SHARED_DATA, require

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REFERENCE = SHARED_DATA / "reference" / "peer_scores_nb201_500.csv"


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class Blocks(nn.Module):
    """A stem and cells, as AZ-NAS reads them."""

    def __init__(self, stem: nn.Module, cells: list[nn.Module]) -> None:
        super().__init__()
        self.stem, self.cells = stem, nn.ModuleList(cells)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return x


def identity_conv(channels: int) -> nn.Conv2d:
    """A stem that passes its input through, inside the autograd graph (it has a weight)."""
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return conv


def _batch(x):
    from nas.data import Batch

    return Batch(x, torch.zeros(len(x), dtype=torch.long), 10, InputSpec())


def test_expressivity_closed_forms():
    # channels uncorrelated with equal variance: p = 1/C, entropy ln C (up to the 1e-8 epsilon)
    signs = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]
    )  # orthogonal, zero-mean columns but the first
    rows = torch.cat([signs[:, 1:], -signs[:, 1:]])  # 8 rows, 3 orthogonal zero-mean channels
    feature = rows.T.reshape(1, 3, 2, 4)
    assert block_expressivity(feature) == pytest.approx(math.log(3), abs=1e-6)
    # one direction only: entropy 0
    rank_one = torch.randn(1, 1, 5, 5) * torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1)
    assert block_expressivity(rank_one) == pytest.approx(0.0, abs=1e-6)


def test_progressivity_and_expressivity_of_hand_made_blocks():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 6, 6)
    keep_first = nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        keep_first.weight.copy_(torch.diag(torch.tensor([1.0, 0.0, 0.0])).view(3, 3, 1, 1))
    net = Blocks(nn.Identity(), [keep_first, Scale(2.0)])  # isotropic -> rank one -> rank one
    batch = _batch(x)
    iso = block_expressivity(x)
    expressivity = evaluate(get_proxy("az_expressivity", init="default", inputs="batch"), net, batch)
    assert expressivity.score == pytest.approx(iso, abs=1e-6)  # + 0 + 0
    progressivity = evaluate(get_proxy("az_progressivity", init="default", inputs="batch"), net, batch)
    assert progressivity.score == pytest.approx(-iso, abs=1e-6)  # the drop from block 0 to 1


def test_trainability_of_a_scaling_block_and_the_identity_rule():
    torch.manual_seed(0)
    x = torch.randn(64, 4, 16, 16)
    for factor in (2.0, 0.5):
        net = Blocks(identity_conv(4), [Scale(factor)])
        score = evaluate(get_proxy("az_trainability", init="default", inputs="batch"), net, _batch(x)).score
        # M = factor * g^T g / N ~ factor * I: top singular value ~ factor (within sampling noise)
        assert score == pytest.approx(2 - factor - 1 / factor, abs=0.08)
    identity = Blocks(identity_conv(4), [Scale(3.0), nn.Identity()])
    result = evaluate(get_proxy("az_trainability", init="default", inputs="batch"), identity, _batch(x))
    assert not result.ok and "-inf" in result.reason


def test_trainability_folds_a_downsampling_block():
    torch.manual_seed(0)
    features = []
    x = torch.randn(8, 2, 8, 8, requires_grad=True)
    features = [x, nn.functional.avg_pool2d(x, 2)]
    value = trainability(features, np.random.default_rng(0))
    assert math.isfinite(value) and value < 0  # 2 - s - 1/s <= 0 for any s > 0


def test_draws_follow_the_seed_not_the_network_initial_weights():
    """Version 2: the re-drawn weights come from ``seed`` (nas.draws), not from a hash of the
    network's initial weights, whose own draws depend on the CPU; another seed gives other draws."""
    space = NatsTSS()
    cell = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    batch = _batch(torch.zeros(8, 3, 32, 32))
    scores = []
    for net_seed, seed in ((0, 0), (1, 0), (0, 1)):
        net = build_network(space, cell, num_classes=10, seed=net_seed)
        scores.append(evaluate(get_proxy("az_trainability", seed=seed), net, batch).score)
    assert scores[0] == scores[1] != scores[2]


def test_gaussian_inputs_by_default():
    """The authors' protocol: N(0, 1) inputs of the batch's shape, whatever the pixels."""
    space = NatsTSS()
    cell = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    one, other = _batch(torch.rand(8, 3, 32, 32) * 5), _batch(torch.zeros(8, 3, 32, 32))
    scores = [evaluate(get_proxy("az_expressivity"), build_network(space, cell, 10, 0), b).score for b in (one, other)]
    assert scores[0] == scores[1]
    given = evaluate(get_proxy("az_expressivity", inputs="batch"), build_network(space, cell, 10, 0), one).score
    assert given != scores[0]
    with pytest.raises(NasError, match="inputs"):
        get_proxy("az_progressivity", inputs="images")


def test_nas_bench_101_blocks_skip_the_pooling_between_stacks():
    from nas.proxies.az_nas import blocks
    from nas.searchspaces import get_space

    space = get_space("nb101")
    arch = space.resolve(([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]))
    torch.manual_seed(0)
    net = space.build(arch, 10)
    parts = blocks(net)
    assert len(parts) == 1 + 9 and parts[0] is net.stem
    batch = _batch(torch.randn(4, 3, 32, 32))
    for name in ("az_expressivity", "az_progressivity", "az_trainability"):
        result = evaluate(get_proxy(name), net, batch)
        assert result.ok and math.isfinite(result.score), (name, result.reason)


def test_needs_stem_and_cells():
    with pytest.raises(NasError, match="stem"):
        get_proxy("az_expressivity").score(nn.Sequential(nn.Conv2d(3, 3, 1)), _batch(torch.randn(2, 3, 4, 4)))
    with pytest.raises(NasError, match="init"):
        get_proxy("az_trainability", init="xavier")


def test_agreement_with_the_authors_code_on_reference_cells():
    """Rank agreement with the AZ-NAS repository's scores on the first reference cells (its
    protocol: Gaussian batch of 64, Kaiming re-initialisation; our draws differ from its)."""
    with open(require(REFERENCE)) as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["pos"]))[:16]
    space = NatsTSS()
    batch = load_batch(InputSpec(source="gaussian", batch_size=64, seed=0))
    for name in ("az_expressivity", "az_trainability"):
        ours, theirs = [], []
        for row in rows:
            result = evaluate(get_proxy(name), build_network(space, space.parse(row["arch_str"]), 10, 0), batch)
            if result.ok and math.isfinite(float(row[name])):
                ours.append(result.score)
                theirs.append(float(row[name]))
        assert len(ours) >= 14
        assert spearmanr(ours, theirs)[0] > 0.9, name


def test_az_nas_is_the_log_rank_sum_of_its_fixed_components():
    from nas.proxies.ensemble import log_rank_aggregate

    proxy = get_proxy("az_nas")
    assert proxy.population and proxy.label() == "az_nas"
    assert [c.label() for c in proxy.components] == ["az_expressivity", "az_progressivity", "az_trainability", "flops"]
    assert get_proxy("az_nas", reference=50).label() == "az_nas(reference=50)"
    with pytest.raises(NasError, match="fixed"):
        get_proxy("az_nas", proxies=["near", "flops"])
    # a failed (-inf) trainability ranks last, as the reference's -inf does
    columns = [[3.0, 1.0, 2.0], [0.1, 0.3, 0.2], [float("nan"), -0.5, -0.2], [5.0, 6.0, 7.0]]
    total = log_rank_aggregate(columns, [True] * 4)
    np.testing.assert_allclose(total, [3 * np.log(1 / 3), np.log(1 / 3) + 2 * np.log(2 / 3), 2 * np.log(2 / 3)])


def test_components_share_one_pass_with_the_scores_they_get_alone(monkeypatch):
    """Scored together, the three components cost one build and one pass, and each score is
    bitwise the one it gets alone (stored scores stay valid)."""
    import nas.scoring
    from nas.proxies.base import shared_groups
    from nas.scoring import Scorer

    space = NatsTSS()
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    proxies = [get_proxy(n) for n in names] + [get_proxy("flops"), get_proxy("az_expressivity", seed=1)]
    groups = shared_groups(proxies)
    assert [[p.label() for p in g] for g in groups] == [names, ["flops"], ["az_expressivity(seed=1)"]]

    builds = []
    real_build = nas.scoring.build_network
    monkeypatch.setattr(nas.scoring, "build_network", lambda *a: builds.append(a) or real_build(*a))
    scorer = Scorer(space, proxies[:3], InputSpec(source="gaussian", batch_size=16, seed=0))
    for index in (11, 3):  # a finite cell, and one whose trainability is -inf (a skip-only cell)
        arch = space.from_index(index)
        builds.clear()
        together = scorer.score(arch)
        assert len(builds) == 1
        assert (index == 3) == (together["az_trainability"].status == "failed")
        for proxy in scorer.proxies:
            alone = scorer.score(arch, [proxy])[proxy.label()]
            assert (alone.status, alone.reason) == (together[proxy.label()].status, together[proxy.label()].reason)
            assert alone.score == together[proxy.label()].score or (
                math.isnan(alone.score) and math.isnan(together[proxy.label()].score)
            )
