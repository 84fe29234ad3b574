"""Gradient-based zero-cost proxies (foresight definitions): closed forms on tiny networks,
invariances, reproducibility, failure handling, and a run on real TSS cells."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.data import Batch, InputSpec
from nas.proxies import evaluate, get_proxy, list_proxies
from nas.scoring import build_network
from nas.searchspaces.nats_tss import NatsTSS

from conftest import require

NAMES = ("synflow", "snip", "grad_norm", "grasp", "fisher", "jacob_cov")
K = 1e-5


def make_batch(n: int = 12, d: int = 5, classes: int = 3, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    return Batch(x, y, classes, InputSpec())


def linear_model(d: int = 5, classes: int = 3, seed: int = 1) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, classes, bias=False)


def score(name: str, model: nn.Module, batch: Batch, **params) -> float:
    result = evaluate(get_proxy(name, **params), model, batch)
    assert result.ok, result.reason
    return result.score


def softmax_error(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dL/dlogits of the mean cross-entropy: (softmax - onehot) / N."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(logits.shape[1])[labels]
    return (p - onehot) / len(labels), p


# -- registry ---------------------------------------------------------------------------------
def test_registered_with_their_needs():
    available = list_proxies()
    for name in NAMES:
        assert name in available
        needs = get_proxy(name).needs
        assert needs.inputs and needs.gradients and needs.mode == "train"
        assert needs.labels == (name in ("snip", "grad_norm", "grasp", "fisher"))
        assert get_proxy(name).higher_is_better


# -- synflow ------------------------------------------------------------------------------------
def two_layer(bias: bool = False, batchnorm: bool = False, seed: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6, bias=bias)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(6))
    layers += [nn.ReLU(), nn.Linear(6, 3, bias=bias)]
    return nn.Sequential(*layers)


def test_synflow_two_layer_closed_form():
    model = two_layer()
    w1 = model[0].weight.detach().double().abs().numpy()
    w2 = model[2].weight.detach().double().abs().numpy()
    ones_in, ones_out = np.ones(4), np.ones(3)
    r = ones_out @ w2 @ w1 @ ones_in
    # sum |W1 * dR/dW1| = sum |W2 * dR/dW2| = R for a bias-free linear chain: the score is 2R
    got = score("synflow", model, make_batch(d=4))
    assert got == pytest.approx(2 * r, rel=1e-12)


def test_synflow_with_biases_closed_form():
    model = two_layer(bias=True)
    w1, b1 = (t.detach().double().abs().numpy() for t in (model[0].weight, model[0].bias))
    w2 = model[2].weight.detach().double().abs().numpy()
    hidden = w1 @ np.ones(4) + b1
    expected = np.ones(3) @ w2 @ hidden + np.ones(3) @ w2 @ (w1 @ np.ones(4))  # biases are not scored
    assert score("synflow", model, make_batch(d=4)) == pytest.approx(expected, rel=1e-12)


def test_synflow_bypasses_batchnorm_and_leaves_the_model_alone():
    plain, with_bn = two_layer(), two_layer(batchnorm=True)
    with_bn[3].weight.data.copy_(plain[2].weight.data)
    batch = make_batch(d=4)
    with torch.no_grad():
        with_bn[1].weight.fill_(7.0)  # would scale the score if BN were applied
    before = {k: v.clone() for k, v in with_bn.state_dict().items()}
    with_bn.eval()
    out_before = with_bn(batch.inputs)
    assert score("synflow", with_bn, batch) == pytest.approx(score("synflow", plain, batch), rel=1e-12)
    assert "forward" not in with_bn[1].__dict__  # the bypass was undone
    for key, value in with_bn.state_dict().items():
        assert torch.equal(value, before[key]), key
    with_bn.eval()
    assert torch.equal(with_bn(batch.inputs), out_before)
    # bn=True (foresight's synflow_bn) keeps BatchNorm in train mode: on one all-ones sample
    # BatchNorm1d has a single value per channel and fails, as it does in foresight
    kept = evaluate(get_proxy("synflow", bn=True), with_bn, batch)
    assert not kept.ok and "more than 1 value per channel" in kept.reason


def test_synflow_scale_and_sign_behaviour():
    model, batch = two_layer(), make_batch(d=4)
    base = score("synflow", model, batch)
    with torch.no_grad():
        model[0].weight.mul_(8.0)  # powers of two: exact in float32
        model[2].weight.mul_(0.125)
    assert score("synflow", model, batch) == pytest.approx(base, rel=1e-12)  # rescaling symmetry
    with torch.no_grad():
        model[0].weight.neg_()
    assert score("synflow", model, batch) == pytest.approx(base, rel=1e-12)  # signs do not matter
    with torch.no_grad():
        model[2].weight.mul_(4.0)
    assert score("synflow", model, batch) == pytest.approx(4 * base, rel=1e-12)  # 1-homogeneous per layer
    other = make_batch(d=4, n=3, seed=9)
    assert score("synflow", model, other) == score("synflow", model, batch)  # data-free: shape only


# -- snip and grad_norm ---------------------------------------------------------------------------
def test_snip_and_grad_norm_of_a_linear_classifier():
    model, batch = linear_model(), make_batch()
    w = model.weight.detach().double().numpy()
    x, y = batch.inputs.double().numpy(), batch.labels.numpy()
    err, _ = softmax_error(x @ w.T, y)
    grad = err.T @ x  # dL/dW, K x D
    assert score("snip", model, batch) == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)
    assert score("grad_norm", model, batch) == pytest.approx(np.linalg.norm(grad), rel=1e-5)


def test_grad_norm_sums_per_layer_norms():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    batch = make_batch()
    w1, w2 = (m.weight.detach().double().numpy() for m in model)
    x, y = batch.inputs.double().numpy(), batch.labels.numpy()
    h = x @ w1.T
    err, _ = softmax_error(h @ w2.T, y)
    g2 = err.T @ h
    g1 = (err @ w2).T @ x
    expected = np.linalg.norm(g1) + np.linalg.norm(g2)
    assert score("grad_norm", model, batch) == pytest.approx(expected, rel=1e-5)
    assert expected > np.sqrt(np.linalg.norm(g1) ** 2 + np.linalg.norm(g2) ** 2) * 1.01
    snip_expected = np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum()
    assert score("snip", model, batch) == pytest.approx(snip_expected, rel=1e-5)


def test_gradient_proxies_do_not_touch_grad_fields_or_requires_grad():
    model, batch = linear_model(), make_batch()
    model.weight.requires_grad_(False)  # frozen weights are still scored, and stay frozen
    for name in NAMES:
        get_proxy(name).score(model, batch)
        assert model.weight.grad is None and not model.weight.requires_grad


# -- grasp -------------------------------------------------------------------------------------
def test_grasp_of_a_linear_classifier():
    model, batch = linear_model(), make_batch()
    w = model.weight.detach().double().numpy()
    x, y = batch.inputs.double().numpy(), batch.labels.numpy()
    err, p = softmax_error(x @ w.T, y)
    g = err.T @ x
    hg = np.zeros_like(w)
    for n in range(len(y)):  # Hessian of the mean CE w.r.t. W applied to g
        curvature = np.diag(p[n]) - np.outer(p[n], p[n])
        hg += np.outer(curvature @ (g @ x[n]), x[n]) / len(y)
    assert score("grasp", model, batch) == pytest.approx(-(w * hg).sum(), rel=1e-4)


# -- fisher ------------------------------------------------------------------------------------
def test_fisher_of_a_linear_classifier():
    model, batch = linear_model(), make_batch()
    w = model.weight.detach().double().numpy()
    x, y = batch.inputs.double().numpy(), batch.labels.numpy()
    z = x @ w.T
    err, _ = softmax_error(z, y)
    per_channel = 0.5 * ((z * err) ** 2).mean(0)
    fan_in = w.shape[1]  # foresight broadcasts each channel's value over its weights
    assert score("fisher", model, batch) == pytest.approx(per_channel.sum() * fan_in, rel=1e-5)


def test_fisher_on_a_conv_net_matches_retained_gradients():
    torch.manual_seed(4)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    head = nn.Linear(4, 3)
    model = nn.Sequential(conv, nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    gen = torch.Generator().manual_seed(5)
    batch = Batch(torch.randn(6, 3, 8, 8, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2]), 3, InputSpec())
    expected = score("fisher", model, batch)
    # independent route: retain the activations' gradients through a plain backward pass
    model.train()
    a1 = conv(batch.inputs)
    a1.retain_grad()
    rest = model[3](model[2](model[1](a1))).flatten(1)
    a2 = head(rest)
    a2.retain_grad()
    nn.functional.cross_entropy(a2, batch.labels).backward()
    f1 = 0.5 * (a1 * a1.grad).sum((2, 3)).pow(2).mean(0)
    f2 = 0.5 * (a2 * a2.grad).pow(2).mean(0)
    manual = (f1.sum() * 3 * 3 * 3 + f2.sum() * 4).detach()
    assert expected == pytest.approx(manual.item(), rel=1e-5)


# -- jacob_cov ---------------------------------------------------------------------------------
def test_jacob_cov_matches_numpy_corrcoef_and_eig():
    torch.manual_seed(6)
    head = nn.Linear(5, 3, bias=False)
    model = nn.Sequential(nn.ReLU(), head)
    batch = make_batch(n=8)
    x = batch.inputs.double().numpy()
    row = head.weight.detach().double().numpy().sum(0)  # d sum(out) / d relu(x)
    jac = row[None, :] * (x > 0)  # per-sample input Jacobians
    values = np.linalg.eig(np.corrcoef(jac))[0].real
    expected = -np.sum(np.log(values + K) + 1.0 / (values + K))
    assert score("jacob_cov", model, batch) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_of_a_linear_model_is_the_rank_one_closed_form():
    model, batch = linear_model(), make_batch(n=10)
    n = len(batch)
    # all Jacobian rows equal: correlation matrix of ones, eigenvalues (n, 0, ..., 0)
    expected = -(math.log(n + K) + 1 / (n + K) + (n - 1) * (math.log(K) + 1 / K))
    assert score("jacob_cov", model, batch) == pytest.approx(expected, rel=1e-6)


# -- failures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_nan_weights_give_a_failed_result(name):
    model, batch = linear_model(), make_batch()
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    result = evaluate(get_proxy(name), model, batch)
    assert not result.ok and result.status == "failed"
    assert "non-finite" in result.reason


def test_jacob_cov_of_an_input_independent_network_fails():
    model = nn.Sequential(nn.Linear(5, 3), nn.Flatten())
    with torch.no_grad():
        model[0].weight.zero_()  # constant output: zero Jacobians, correlation undefined
    result = evaluate(get_proxy("jacob_cov"), model, make_batch())
    assert not result.ok and "non-finite" in result.reason


# -- TSS networks ------------------------------------------------------------------------------
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def small_image_batch() -> Batch:
    spec = InputSpec(batch_size=8, seed=0)
    gen = torch.Generator().manual_seed(0)
    return Batch(torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen), 10, spec)


def test_each_proxy_is_finite_and_reproducible_on_a_tss_cell(small_image_batch, one_torch_thread):
    space = NatsTSS()
    arch = space.parse(BEST)
    first = build_network(space, arch, 10, 0)
    second = build_network(space, arch, 10, 0)
    for name in NAMES:
        a = score(name, first, small_image_batch)
        b = score(name, second, small_image_batch)
        again = score(name, first, small_image_batch)  # the model is not altered by scoring
        assert math.isfinite(a) and a == b == again, name
    other_seed = build_network(space, arch, 10, 1)
    assert score("synflow", other_seed, small_image_batch) != score("synflow", first, small_image_batch)
    with_bn = score("synflow", first, small_image_batch, bn=True)  # foresight's synflow_bn
    assert math.isfinite(with_bn) and with_bn != score("synflow", first, small_image_batch)


def test_snip_grad_norm_and_fisher_share_one_pass_with_their_scores_alone(small_image_batch, one_torch_thread):
    """Scored together they read one forward and backward pass, and each score is bitwise its
    score alone (so scores stored before the shared pass stay valid)."""
    from nas.proxies.base import evaluate_together, shared_groups

    space = NatsTSS()
    model = build_network(space, space.parse(BEST), 10, 0)
    proxies = [get_proxy(n) for n in ("snip", "grad_norm", "fisher", "grasp")]
    groups = shared_groups(proxies)
    assert [[p.name for p in g] for g in groups] == [["snip", "grad_norm", "fisher"], ["grasp"]]
    passes = []
    hook = model.register_forward_hook(lambda *args: passes.append(1))
    together = evaluate_together(groups[0], model, small_image_batch)
    assert len(passes) == 1
    hook.remove()
    for proxy, result in zip(groups[0], together):
        assert result.ok and result.score == score(proxy.name, model, small_image_batch), proxy.name


def test_synflow_equals_the_reference_on_real_cells(shared_data, one_torch_thread):
    """SynFlow does not read the data, so with the same initial weights it must equal foresight's
    values in the reference table to float64 rounding."""
    table = require(shared_data / "reference" / "peer_scores_nb201_500.csv")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    space = NatsTSS()
    batch = Batch(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long), 10, InputSpec())
    for row in rows:
        model = build_network(space, space.parse(row["arch_str"]), 10, 0)
        assert score("synflow", model, batch) == pytest.approx(float(row["synflow"]), rel=1e-9)
