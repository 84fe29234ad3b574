"""Growing tiny networks (nas.strategies.grow, `nas grow`): TINY's closed form against brute force
and against GroMo on the same tensors, the first-order prediction, growth in place with the
optimizer state kept, resuming, and the command."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.cli import main
from nas.errors import NasError
from nas.strategies.grow import (
    GrowableNet,
    GrowthConfig,
    candidate,
    collect_statistics,
    grow,
    optimal_delta,
    optimal_neurons,
)
from nas.strategies.grow.loop import _layer_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _mlp(act=nn.Tanh, widths=(3, 2), inputs=5, classes=4, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    layers, prev = [], inputs
    for w in widths:
        layers += [nn.Linear(prev, w), act()]
        prev = w
    return nn.Sequential(*layers, nn.Linear(prev, classes)).to(dtype)


def _loss_slope(net, cand, x, y, eps=1e-6) -> float:
    """The loss slope along the growth direction at step 0, by a finite difference (float64 nets)."""
    _, ins, _ = net.record(x)
    ins = [t.detach() for t in ins]
    return (_layer_loss(net, cand, ins, y, 0.0) - _layer_loss(net, cand, ins, y, eps)) / eps


def _task(n=400, inputs=5, classes=4, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, inputs, generator=g, dtype=dtype)
    y = (x[:, 0] * x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()  # needs a nonlinearity
    return x, y % classes


def test_optimal_delta_is_the_least_squares_change_of_the_weights():
    g = torch.Generator().manual_seed(0)
    b = torch.cat([torch.randn(300, 6, generator=g, dtype=torch.float64), torch.ones(300, 1, dtype=torch.float64)], 1)
    grads = torch.randn(300, 3, generator=g, dtype=torch.float64)
    delta, decrease = optimal_delta(b.T @ b / 300, b.T @ grads / 300)
    expected = torch.linalg.lstsq(b, grads).solution.T  # argmin ‖G - B δᵀ‖
    assert torch.allclose(delta, expected, atol=1e-10)
    assert decrease == pytest.approx(float(((b @ expected.T) ** 2).sum() / 300), rel=1e-10)


def test_optimal_neurons_reduce_the_bottleneck_by_the_sum_of_squared_singular_values_and_no_rank_k_does_better():
    g = torch.Generator().manual_seed(0)
    n, k = 500, 2
    b = torch.randn(n, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g, dtype=torch.float64)
    v = torch.randn(n, 3, generator=g, dtype=torch.float64) + b[:, :3] ** 2
    new = optimal_neurons(b.T @ b / n, b.T @ v / n, max_neurons=k)
    theta = new.alpha.T @ new.omega.T
    gain = lambda t: float((v**2).sum() - ((v - b @ t) ** 2).sum()) / n  # noqa: E731
    assert new.count == k
    assert gain(theta) == pytest.approx(new.bottleneck_reduction, rel=1e-9)
    for _ in range(200):  # any other rank-k change of the neurons does worse
        a = new.alpha + 0.05 * torch.randn(new.alpha.shape, generator=g, dtype=torch.float64)
        o = new.omega + 0.05 * torch.randn(new.omega.shape, generator=g, dtype=torch.float64)
        assert gain(a.T @ o.T) < gain(theta)


def test_statistics_of_two_batches_equal_those_of_one():
    net = GrowableNet(_mlp())
    x, y = _task()
    one, two = collect_statistics(net, x, y, batch_size=400), collect_statistics(net, x, y, batch_size=150)
    for a, b in zip(one.s + one.m + one.m_prev + one.p, two.s + two.m + two.m_prev + two.p):
        assert torch.allclose(a, b, atol=1e-6)
    assert one.loss == pytest.approx(float(F.cross_entropy(net.model(x), y).detach()), rel=1e-5)


@pytest.mark.parametrize("layer", [0, 1])
def test_first_order_prediction_is_the_loss_slope_for_a_smooth_activation(layer):
    # tanh is smooth with tanh(0) = 0 and slope 1: the linearisation is exact to first order.
    net = GrowableNet(_mlp(nn.Tanh, dtype=torch.float64))
    x, y = _task(dtype=torch.float64)
    cand = candidate(net, collect_statistics(net, x, y), layer, max_neurons=2)
    assert _loss_slope(net, cand, x, y) == pytest.approx(cand.first_order, rel=1e-4)
    assert cand.first_order > 0


def test_growing_in_place_matches_the_tail_evaluation_and_keeps_adam_state():
    model = _mlp(nn.Sigmoid, dtype=torch.float64)  # sigmoid(0) != 0: the next bias absorbs it
    net = GrowableNet(model)
    x, y = _task(dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    old = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()}
    stats = collect_statistics(net, x, y)
    cand = candidate(net, stats, 0, max_neurons=2)
    with torch.no_grad():
        _, ins, _ = net.record(x)
        expected = _layer_loss(net, cand, ins, y, 0.3)
    net.grow(0, cand.neurons.alpha, cand.neurons.omega, cand.delta, 0.3, opt)
    assert net.widths == [3 + cand.neurons.count, 2]
    assert float(F.cross_entropy(model(x), y).detach()) == pytest.approx(expected, rel=1e-10)
    first = net.stages[0].weight.weight
    assert torch.equal(opt.state[first]["exp_avg"][:3], old[id(first)]["exp_avg"])
    assert torch.all(opt.state[first]["exp_avg"][3:] == 0)
    assert opt.state[first]["exp_avg"].shape == first.shape
    F.cross_entropy(model(x), y).backward()
    opt.step()  # the grown optimizer state works


def test_a_tiny_step_changes_the_function_only_to_first_order_even_where_the_activation_is_not_zero_at_zero():
    model = _mlp(nn.Sigmoid, dtype=torch.float64)
    net = GrowableNet(model)
    x, y = _task(dtype=torch.float64)
    before = model(x).detach()
    cand = candidate(net, collect_statistics(net, x, y), 1, max_neurons=1)
    net.grow(1, cand.neurons.alpha, cand.neurons.omega, cand.delta, 1e-8)
    assert (model(x) - before).abs().max() < 1e-6


def _config(**kw):
    base = dict(max_params=80, epochs_per_step=1, final_epochs=1, neurons_per_step=2, lr=1e-2, stat_samples=400)
    return GrowthConfig(**{**base, **kw})


def test_grow_stays_within_budget_logs_every_step_and_beats_the_start():
    x, y = _task()
    model = _mlp(nn.SELU, widths=(1, 1))
    result = grow(model, (x, y), (x, y), _config())
    rows = result.history
    assert rows[0]["event"] == "start" and rows[-1]["event"] == "final"
    assert all(r["params"] <= 80 for r in rows) and rows[-1]["params"] > rows[0]["params"]
    assert sum(p.numel() for p in model.parameters()) == rows[-1]["params"]  # the user's model grew
    steps = [r for r in rows if r["event"] == "grow"]
    assert steps and all(r["added"] >= 1 and r["amplitude"] > 0 and r["loss_evaluations"] < 60 for r in steps)
    assert all(r["actual_decrease"] >= 0 for r in steps)  # the search never picks a step that raises the loss
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_an_interrupted_growth_resumes_to_the_same_result(tmp_path):
    x, y = _task()
    full = grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config())

    class Stop(Exception):
        pass

    def stop_at_two(row):
        if row["step"] == 2:
            raise Stop

    ckpt = tmp_path / "g.pt"
    with pytest.raises(Stop):
        grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(), checkpoint=ckpt, on_step=stop_at_two)
    resumed = grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(), checkpoint=ckpt)
    assert [r["widths"] for r in resumed.history] == [r["widths"] for r in full.history]
    assert resumed.history[-1]["test_loss"] == pytest.approx(full.history[-1]["test_loss"], rel=1e-6)
    with pytest.raises(NasError, match="other settings"):
        grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(lr=0.5), checkpoint=ckpt)
    with pytest.raises(NasError, match="another network"):
        grow(_mlp(nn.Tanh, widths=(1, 1)), (x, y), (x, y), _config(), checkpoint=ckpt)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(NasError, match="not a growth checkpoint"):
        grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(), checkpoint=ckpt)


def test_a_budget_below_the_starting_network_is_an_error():
    x, y = _task()
    with pytest.raises(NasError, match="starting network has 16 parameters, above the budget of 10"):
        grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(max_params=10))


def test_only_the_chosen_layers_grow_and_a_missing_layer_is_an_error():
    x, y = _task()
    result = grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(layers=[1]))
    assert result.widths[0] == 1 and result.widths[1] > 1
    with pytest.raises(NasError, match="hidden layer 2 does not exist"):
        grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(layers=[2]))


def test_random_addition_replays_a_schedule():
    x, y = _task()
    result = grow(_mlp(nn.SELU, widths=(1, 1)), (x, y), (x, y), _config(addition="random", schedule=[[1, 2], [0, 1]]))
    assert result.widths == [2, 3]
    assert [r.get("layer") for r in result.history] == [None, 1, 0, None]


@pytest.mark.parametrize(
    "model, message",
    [
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2)), "MaxPool2d"),
        (nn.Sequential(nn.Linear(4, 2)), "at least one hidden layer"),
        (nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), "activation between"),
        (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Unflatten(1, (3, 1, 1)), nn.Conv2d(3, 2, 1)), "Unflatten"),
        (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)), "groups=1"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)), "end with a Linear"),
    ],
)
def test_what_cannot_grow_is_a_one_line_error(model, message):
    with pytest.raises(NasError, match=message):
        GrowableNet(model)


def _cnn(head: str, bn: bool = False, act=nn.Tanh, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    norm = (lambda c: [nn.BatchNorm2d(c)]) if bn else (lambda c: [])
    body = [nn.Conv2d(2, 3, 3, padding=1, bias=not bn), *norm(3), act(),
            nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=not bn), *norm(4), act()]  # fmt: skip
    if head == "flatten":  # conv -> linear straight after Flatten (GroMo cannot grow this)
        tail = [nn.Flatten(), nn.Linear(4 * 3 * 3, 3)]
    else:
        tail = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)]
    model = nn.Sequential(*body, *tail).to(dtype)
    if bn:  # running statistics that are not the identity
        model(torch.randn(64, 2, 6, 6, dtype=dtype))
        model.eval()
    return model


def _images(n=96, dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 2, 6, 6, generator=g, dtype=dtype)
    return x, ((x[:, 0, :3].mean((1, 2)) * x[:, 1, 3:].mean((1, 2))) > 0).long() + (x[:, 0, 2, 2] > 0).long()


@pytest.mark.parametrize("head", ["flatten", "pool"])
@pytest.mark.parametrize("layer", [0, 1])
def test_convolutional_growth_first_order_prediction_is_the_loss_slope(head, layer):
    # conv -> conv (a stride-2 next layer) and conv -> linear, through Flatten or a global pool
    net = GrowableNet(_cnn(head))
    x, y = _images()
    cand = candidate(net, collect_statistics(net, x, y, batch_size=40), layer, max_neurons=2)
    assert _loss_slope(net, cand, x, y) == pytest.approx(cand.first_order, rel=1e-4)


@pytest.mark.parametrize("head", ["flatten", "pool"])
@pytest.mark.parametrize("layer", [0, 1])
def test_convolutional_growth_in_place_equals_its_evaluation_and_batchnorm_starts_as_the_identity(head, layer):
    model = _cnn(head, bn=True)
    net = GrowableNet(model)
    x, y = _images()
    stats = collect_statistics(net, x, y)
    cand = candidate(net, stats, layer, max_neurons=2)
    with torch.no_grad():
        _, ins, _ = net.record(x)
        expected = _layer_loss(net, cand, ins, y, 0.05)
        before = model(x)
    k = cand.neurons.count
    net.grow(layer, cand.neurons.alpha, cand.neurons.omega, None, 1e-10, moments=cand.moments)
    with torch.no_grad():
        assert (model(x) - before).abs().max() < 1e-4  # a tiny step: the function barely moves
    norm = net.stages[layer].norm
    assert norm.num_features == net.widths[layer] == [3, 4][layer] + k
    model2 = _cnn(head, bn=True)
    net2 = GrowableNet(model2)
    net2.grow(layer, cand.neurons.alpha, cand.neurons.omega, cand.delta, 0.05, moments=cand.moments)
    with torch.no_grad():
        assert float(F.cross_entropy(model2(x), y)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 0, 1)])
def test_conv_statistics_without_unfolding_equal_the_unfolded_ones(stride, padding, dilation):
    from nas.strategies.grow.statistics import _conv_reads, _rows

    g = torch.Generator().manual_seed(0)
    n, d, size, out, rows = 3, 5, (7, 6), 2, 4
    nxt = nn.Conv2d(d, out, 3, stride=stride, padding=padding, dilation=dilation)
    maps = torch.randn(n, d, *size, generator=g, dtype=torch.float64)
    out_size = nxt(maps.float())[0, 0].shape
    q = out_size[0] * out_size[1]
    grads = torch.randn(out, n * q, generator=g, dtype=torch.float64)
    nexts = torch.randn(rows, n * q, generator=g, dtype=torch.float64)
    u = F.unfold(maps, 3, dilation, padding, stride).reshape(n, d, 9, q)
    uk = u.permute(1, 2, 0, 3).reshape(d * 9, -1)
    ud = u.permute(1, 0, 2, 3).reshape(d, -1)
    m_prev, p, second, k = _conv_reads(nxt, maps, grads, nexts, _rows(maps.reshape(n, d, -1)), out_size)
    assert k == 9
    assert torch.allclose(second, ud @ ud.T, rtol=1e-12)
    assert torch.allclose(m_prev, (uk @ grads.T).reshape(d, 9, -1), rtol=1e-5, atol=1e-5)  # float32 kernels
    assert torch.allclose(p, (uk @ nexts.T).reshape(d, 9, -1), rtol=1e-5, atol=1e-5)


def test_a_cnn_grows_and_resumes(tmp_path):
    x, y = _images(dtype=torch.float32)
    make = lambda: _cnn("flatten", bn=True, act=nn.ReLU, dtype=torch.float32).train()  # noqa: E731
    config = _config(max_params=700, stat_samples=96, amplitude_samples=64)
    full = grow(make(), (x, y), (x, y), config)
    assert full.widths != [3, 4] and full.history[-1]["params"] <= 700

    class Stop(Exception):
        pass

    def stop(row):
        if row["step"] == 1:
            raise Stop

    with pytest.raises(Stop):
        grow(make(), (x, y), (x, y), config, checkpoint=tmp_path / "c.pt", on_step=stop)
    resumed = grow(make(), (x, y), (x, y), config, checkpoint=tmp_path / "c.pt")
    assert resumed.widths == full.widths
    assert resumed.history[-1]["test_loss"] == pytest.approx(full.history[-1]["test_loss"], rel=1e-5)


def test_same_statistics_and_neurons_as_gromo_on_the_same_tensors():
    pytest.importorskip("gromo")
    from gromo.containers.growing_mlp import GrowingMLP

    x, y = _task(n=300, inputs=6, classes=3)
    torch.manual_seed(0)  # GroMo draws its weights from the global generator
    peer = GrowingMLP(6, 3, hidden_size=4, number_hidden_layers=2, activation=nn.SELU())
    ours = _mlp(nn.SELU, widths=(4, 4), inputs=6, classes=3)
    with torch.no_grad():
        for mine, theirs in zip(ours[::2], peer.layers):
            mine.weight.copy_(theirs.layer.weight)
            mine.bias.copy_(theirs.layer.bias)
    peer.init_computation()
    F.cross_entropy(peer(x), y, reduction="sum").backward()
    peer.update_computation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GroMo warns about its own internals
        peer.compute_optimal_updates(maximum_added_neurons=2, dtype=torch.float64)
    net = GrowableNet(ours)
    stats = collect_statistics(net, x, y)
    for layer, theirs in enumerate(peer._growing_layers):
        mine = candidate(net, stats, layer, max_neurons=2)
        assert torch.allclose(theirs.tensor_s().double(), stats.s[layer + 1], atol=1e-5)
        assert torch.allclose(theirs.tensor_m().double(), stats.m[layer + 1], atol=1e-6)
        # GroMo solves S dW = M in float32; S's condition number makes the match relative
        assert torch.linalg.norm(theirs.delta_raw.double() - mine.delta) < 1e-3 * torch.linalg.norm(mine.delta)
        assert float(theirs.parameter_update_decrease) == pytest.approx(mine.parameter_decrease, rel=1e-4)
        ours_n = -stats.m_prev[layer][:, 0] + stats.p[layer][:, 0] @ mine.delta.T  # N = -M₋₂ + P dW*ᵀ
        assert torch.linalg.norm(theirs.tensor_n.double() - ours_n) < 1e-3 * torch.linalg.norm(ours_n)
        assert torch.allclose(theirs.eigenvalues_extension.double(), mine.neurons.singular_values, rtol=1e-3, atol=1e-6)
        ext = theirs.previous_module.extended_output_layer
        alpha = torch.cat([ext.weight, ext.bias[:, None]], 1).double()
        sign = torch.sign((alpha * mine.neurons.alpha).sum(1))  # each neuron is defined up to its sign
        assert torch.linalg.norm(alpha * sign[:, None] - mine.neurons.alpha) < 1e-3 * torch.linalg.norm(
            mine.neurons.alpha
        )
        omega = theirs.extended_input_layer.weight.double()
        assert torch.linalg.norm(omega * sign - mine.neurons.omega) < 1e-3 * torch.linalg.norm(mine.neurons.omega)
        assert float(theirs.first_order_improvement) == pytest.approx(mine.score("total"), rel=1e-4)


def test_nas_grow_writes_checkpoint_log_plot_and_a_trainable_architecture(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from nas.design import parse_model

    out = tmp_path / "g"
    argv = ["grow", "--model", "mlp", "--start", "1-1", "--data", "digits", "--budget", "400",
            "--epochs-per-step", "1", "--final-epochs", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "grown to mlp(widths=" in capsys.readouterr().out
    arch = json.loads((out / "architecture.json").read_text())
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert arch["params"] == rows[-1]["params"] <= 400
    rebuilt = parse_model(arch["model"]).build(arch["input_shape"], arch["num_classes"])
    assert sum(p.numel() for p in rebuilt.parameters()) == arch["params"]
    assert (out / "growth.png").stat().st_size > 0 and (out / "checkpoint.pt").exists()
    assert main(argv) == 0  # rerun: resumes the finished run, nothing to do
    assert main([*argv[:-3], "--select", "total", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    cnn = tmp_path / "c"
    argv_cnn = [*argv[:2], "cnn", "--start", "2-2", "--act", "relu", *argv[5:-2], str(cnn), "--quiet"]
    assert main(argv_cnn) == 0  # digits as 8x8 images
    arch = json.loads((cnn / "architecture.json").read_text())
    assert arch["model"].startswith("cnn(channels=") and "bn=true" in arch["model"]
    rebuilt = parse_model(arch["model"]).build(arch["input_shape"], arch["num_classes"])
    assert sum(p.numel() for p in rebuilt.parameters()) == arch["params"] <= 400
