"""The design tools (nas.design): NLC per layer, nonlinearity normalisation, NEAR width and
activation choice on named models, and `nas design`."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from nas.cli import main
from nas.design import (
    MixedActivation,
    fit_layer_size,
    layer_nlc,
    load_normalized,
    mix_activations,
    model_layer_size,
    network_nlc,
    normalize_nonlinearity,
    parse_model,
    rank_model_activations,
    save_normalized,
)
from nas.errors import NasError
from nas.proxies.nlc import nlc_value

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#: NLC of ReLU on a zero-mean Gaussian: sqrt(E[relu'(s)^2] Var s / Var relu(s)) = sqrt(1/2 / (1/2 - 1/(2 pi))).
RELU_GAUSSIAN_NLC = math.sqrt(0.5 / (0.5 - 1 / (2 * math.pi)))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def images(n: int = 48, seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- NLC per layer ---------------------------------------------------------------------------------
def test_affine_network_is_one_at_every_layer_and_in_every_resample():
    net = parse_model("cnn(channels=4-8,blocks=2,act=identity,bn=true,skip=true)").build((3, 8, 8), 5, seed=0)
    report = layer_nlc(net, images(), pairs=48, layers="all", bootstrap=50)
    assert report.layers and all(abs(r.cumulative - 1) < 1e-5 for r in report.layers)
    assert abs(report.network - 1) < 1e-5 and report.network_se < 0.05  # O(1/N) mean shift only


@pytest.mark.parametrize("spec", ["cnn(channels=4-8,blocks=2,skip=true)", "mlp(widths=32-32,act=tanh,bn=true)"])
def test_network_row_equals_the_proxy_estimator(spec):
    """Dual numbers with hooks give the nlc proxy's value (torch.func.jvp), same pairs and seed."""
    x = images(40, seed=1)
    net = parse_model(spec).build((3, 8, 8), 10, seed=0)
    for bn in ("eval", "train"):
        expected = nlc_value(net, x, pairs=80, bn=bn, seed=3)
        assert layer_nlc(net, x, pairs=80, bn=bn, seed=3, bootstrap=0).network == pytest.approx(expected, rel=1e-6)


def test_benchmark_cell_rows_and_the_caller_model_untouched():
    net = parse_model(f"nats-tss:{CELL}").build((3, 8, 8), 10, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report = layer_nlc(net, images(16), pairs=16, bootstrap=0)
    assert report.network == pytest.approx(nlc_value(net, images(16), pairs=16), rel=1e-6)
    assert [r.depth for r in report.layers] == list(range(1, len(report.layers) + 1))
    assert all(r.kind == "ReLU" and r.activation is not None and r.activation > 1 for r in report.layers)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net.training


def test_activation_nlc_meets_the_gaussian_closed_form_and_the_pair_estimator():
    """One ReLU on N(0, 1) inputs: the exact-on-batch per-activation ratio, the pair estimator of
    its cumulative NLC (an independent computation) and the closed form agree."""
    x = torch.randn(3000, 8, generator=torch.Generator().manual_seed(0))
    report = layer_nlc(nn.Sequential(nn.ReLU()), x, pairs=3000, bootstrap=30)
    (row,) = report.layers
    assert row.activation == pytest.approx(RELU_GAUSSIAN_NLC, rel=0.02)
    assert row.cumulative == pytest.approx(RELU_GAUSSIAN_NLC, rel=0.03)
    assert 0 < row.activation_se < 0.02 and 0 < row.cumulative_se < 0.05


def test_repeated_module_calls_get_their_own_rows():
    relu = nn.ReLU()
    net = nn.Sequential(nn.Linear(6, 6), relu, nn.Linear(6, 6), relu, nn.Linear(6, 2))
    names = [r.name for r in layer_nlc(net, torch.randn(20, 6), pairs=20, bootstrap=0).layers]
    assert names == ["1", "1#2"]


def test_layer_nlc_rejects_bad_settings():
    net = parse_model("mlp(widths=8)").build((4,), 2)
    for kwargs, words in [({"bn": "x"}, "bn must"), ({"layers": "x"}, "layers must"), ({"pairs": 0}, "pairs")]:
        with pytest.raises(NasError, match=words):
            layer_nlc(net, torch.randn(8, 4), **kwargs)
    with pytest.raises(NasError, match="at least 2"):
        layer_nlc(net, torch.randn(1, 4))


# -- normalisation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec,target",
    [
        ("mlp(widths=48-48-48-48-48,init=kaiming_normal)", 1.4),
        ("cnn(channels=4-8-8,blocks=2)", 1.6),
        ("mlp(widths=32-32-32,act=tanh,init=orthogonal,bn=true)", 1.2),
    ],
)
def test_normalisation_hits_the_target_measured_independently(spec, target):
    x = images(64, seed=2)
    model = parse_model(spec).build((3, 8, 8), 10, seed=0)
    net, result = normalize_nonlinearity(model, x, target=target, pairs=128)
    assert result.nlc_before > target * 1.1  # it had work to do
    measured = nlc_value(net, x, pairs=128)  # the proxy's own estimator (torch.func.jvp)
    assert measured == pytest.approx(target, rel=0.1) and result.nlc_after == pytest.approx(measured, rel=1e-6)
    assert all(0 <= a <= 1 for a in result.alphas.values())
    # the weights are the original ones: only the activations changed
    original = dict(model.named_parameters())
    for name, p in net.named_parameters():
        assert torch.equal(p, original[name.replace(".activation.", ".")])


def test_zero_alpha_makes_the_network_affine_and_interpolation_is_exact():
    model = parse_model("cnn(channels=4-8,blocks=2)").build((3, 8, 8), 3, seed=0)
    mixed = mix_activations(model, {})
    for m in mixed.modules():
        if isinstance(m, MixedActivation):
            m.alpha.fill_(0.0)
    assert network_nlc(mixed, images(32), pairs=64) == pytest.approx(1.0, abs=1e-5)
    s = torch.randn(100)
    assert torch.allclose(MixedActivation(nn.ReLU(inplace=True), 0.25)(s), 0.25 * s.relu() + 0.75 * s)


def test_normalised_model_saves_and_loads_the_same_function(tmp_path):
    spec = "mlp(widths=32-32-32,init=kaiming_normal)"
    x = images(64, seed=4)
    model = parse_model(spec).build((3, 8, 8), 10, seed=7)
    net, result = normalize_nonlinearity(model, x, target=1.3, pairs=64)
    path = tmp_path / "m.pt"
    save_normalized(path, net, spec, (3, 8, 8), 10, result, seed=7)
    back = load_normalized(path)
    assert torch.equal(back.eval()(x), net.eval()(x))


def test_normalisation_errors_are_one_line(tmp_path):
    model = parse_model("mlp(widths=16-16)").build((3, 8, 8), 10, seed=0)
    with pytest.raises(NasError, match="positive"):
        normalize_nonlinearity(model, images(16), target=0)
    with pytest.raises(NasError, match="out of reach.*raise max_alpha"):
        normalize_nonlinearity(model, images(16), target=50)
    with pytest.raises(NasError, match="no elementwise activation"):
        normalize_nonlinearity(nn.Sequential(nn.Flatten(), nn.Linear(192, 3)), images(16), target=1.5)
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (exec, ("open('/tmp/zcnas_design_pwned', 'w').write('x')",))

    evil.write_bytes(pickle.dumps({"format": "zcnas-normalized", "x": Boom()}, protocol=2))
    with pytest.raises(NasError, match="not a readable normalized model"):
        load_normalized(evil)
    import os

    assert not os.path.exists("/tmp/zcnas_design_pwned")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(NasError, match="not a zcnas normalized model"):
        load_normalized(tmp_path / "other.pt")


# -- models ---------------------------------------------------------------------------------------------
def test_model_specs_build_and_fail_in_one_line():
    mlp = parse_model("mlp(widths=16-8,act=gelu,bn=true,skip=false)").build((3, 4, 4), 5)
    assert mlp(torch.randn(2, 3, 4, 4)).shape == (2, 5)
    cnn = parse_model("cnn(channels=4-8,blocks=2,skip=true)").build((3, 8, 8), 7)
    assert cnn(torch.randn(2, 3, 8, 8)).shape == (2, 7)
    cell = parse_model("nats-tss:123").build((3, 32, 32), 10)
    assert cell(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    wider = parse_model("mlp(widths=16-8)").with_params(widths=(32, 8), act="tanh")
    assert wider.text == "mlp(widths=32-8,act=tanh)"
    for text, words in [
        ("mlp(widths=a-b)", "expected widths"),
        ("mlp(depth=3)", "unknown parameter"),
        ("cnn(act=swish)", "expected one of"),
        ("resnet", "cannot read model"),
        ("nas.nowhere:factory", "cannot import"),
        ("nas.design.models:nothing", "has no function"),
    ]:
        with pytest.raises(NasError, match=words):
            parse_model(text).build((3, 8, 8), 2)


# -- NEAR on named models ------------------------------------------------------------------------------
def test_width_sweep_on_a_family_and_a_known_power_law():
    sizes = [4, 8, 16, 32, 64, 128]
    truth = fit_layer_size(sizes, [0.3 + 0.7 * s**-0.6 for s in sizes])  # through (1, 1), as the fit assumes
    assert truth.c == pytest.approx(-0.6, abs=1e-3) and truth.size == pytest.approx(0.005 ** (1 / -1.6), rel=1e-3)
    x = torch.randn(40, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    est = model_layer_size(parse_model("mlp(widths=8-8,act=tanh)"), 1, x, 3, sizes=[2, 4, 8, 16, 32])
    assert est.sizes == (2, 4, 8, 16, 32) and est.c < 1 and math.isfinite(est.size)
    with pytest.raises(NasError, match="not among"):
        model_layer_size(parse_model("mlp(widths=8-8)"), 5, x, 3, sizes=[2, 4])
    with pytest.raises(NasError, match="no width to vary"):
        model_layer_size(parse_model(f"nats-tss:{CELL}"), 0, x, 3, sizes=[2, 4])


def test_activation_ranking_puts_a_zero_init_last():
    x = torch.randn(32, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    ranking = rank_model_activations(parse_model("mlp(widths=16-16)"), x, 3, ["relu", "tanh"], ["default", "zeros"], 2)
    assert len(ranking) == 4 and {r.init for r in ranking[-2:]} == {"zeros"} and all(r.flagged for r in ranking[-2:])
    assert np.all(np.diff([r.score for r in ranking]) <= 0)


# -- the command line -----------------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_nlc_json_plot_and_normalize(capsys, tmp_path):
    plot = tmp_path / "nlc.png"
    code, out, _ = run(
        capsys, "design", "nlc", "cnn(channels=4-8)", "--data", "gaussian", "--images", "24", "--pairs", "24",
        "--bootstrap", "10", "--json", "--plot", str(plot),
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["samples"] == 24 and len(report["layers"]) == 2 and plot.stat().st_size > 1000
    assert report["inputs"]["source"] == "gaussian" and isinstance(report["in_band"], bool)
    out_file = tmp_path / "n.pt"
    code, out, _ = run(
        capsys, "design", "normalize", "mlp(widths=32-32-32,init=kaiming_normal)", "--data", "gaussian",
        "--images", "48", "--target", "1.3", "--out", str(out_file),
    )  # fmt: skip
    after = float(out.split(" -> ")[1].split()[0])
    assert code == 0 and after == pytest.approx(1.3, rel=0.021) and load_normalized(out_file) is not None


@pytest.mark.parametrize(
    "argv,words",
    [
        (["nlc", "mlp(widths=0)", "--data", "gaussian"], "positive widths"),
        (["nlc", "nowhere:thing", "--data", "gaussian"], "cannot import"),
        (["normalize", "mlp(widths=8)", "--data", "gaussian", "--target", "-1", "--out", "x.pt"], "positive number"),
        (["activation", "mlp(widths=8)", "--data", "gaussian", "--activations", "swish"], "unknown"),
        (["width", "mlp(widths=8)", "--data", "gaussian", "--layer", "0", "--widths", "8"], "at least two"),
        (["width", "mlp(widths=8)", "--data", "gaussian", "--layer", "first", "--widths", "8,16"], "layer number"),
        (["nlc", "mlp(widths=8)", "--data", "cifar10:/nowhere"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line(capsys, argv, words):
    code, _, err = run(capsys, "design", *argv)
    lines = [line for line in err.splitlines() if line.startswith("nas: error")]
    assert code == 2 and len(lines) == 1 and words in lines[0]


def test_cli_requires_the_data(capsys):
    with pytest.raises(SystemExit):
        main(["design", "nlc", "mlp(widths=8)"])
    assert "--data" in capsys.readouterr().err
