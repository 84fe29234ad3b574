"""Design tools built on NEAR: the width of a layer, and activation / initialisation choice.

Both follow the NEAR paper's uses of the score (Husistein, Reiher & Eckhoff, ICLR 2025); the
layer-size estimate reproduces the official package's fit, the ranking is our protocol (the
paper's exact one is not published).

* :func:`estimate_layer_size`: score one layer of a family of networks that differ in that layer's
  width, divide by the width ("relative NEAR score"), fit ``f(x) = a + b * x**c`` to the point
  ``(1, 1)`` and the ``(width, relative score)`` points (``scipy.optimize.curve_fit``, start
  ``(1, 2, -1)``, at most 10,000 evaluations), and return the width where ``x**(c - 1)`` equals
  ``slope_threshold``: ``slope_threshold ** (1 / (c - 1))``. As in the official code the factor
  ``b * c`` of the true derivative is left out, so the threshold is a threshold on ``x**(c-1)``.
* :func:`rank_activation_init`: NEAR of every (activation, initialisation) pair, best first. Each
  repetition builds the network afresh and applies the initialisation under test; the parameters
  are never reset to PyTorch's defaults between repetitions (``reinit=False``), which would
  replace the initialisation being compared.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nas.errors import NasError
from nas.proxies.near import hooked_modules, near_score


# -- layer size -------------------------------------------------------------------------------------
def power_law(x: Any, a: float, b: float, c: float) -> Any:
    """``a + b * x**c``: the relative NEAR score as a function of the width."""
    return a + b * np.power(x, c)


@dataclass(frozen=True)
class LayerSizeEstimate:
    """The estimated width and the fit behind it."""

    size: float  # slope_threshold ** (1 / (c - 1))
    a: float
    b: float
    c: float
    sizes: tuple[int, ...]
    relative_scores: tuple[float, ...]  # NEAR of the layer / its width
    slope_threshold: float

    def __float__(self) -> float:
        return float(self.size)


def fit_layer_size(
    sizes: Sequence[float], relative_scores: Sequence[float], slope_threshold: float = 0.005
) -> LayerSizeEstimate:
    """Fit ``a + b x**c`` to ``(1, 1)`` and ``(sizes[i], relative_scores[i])`` as the official
    code does and return the width where ``x**(c-1) = slope_threshold``."""
    from scipy.optimize import OptimizeWarning, curve_fit

    if len(sizes) != len(relative_scores) or len(sizes) < 2:
        raise NasError("near: the layer-size fit needs at least two (size, score) pairs of equal length")
    if not 0 < slope_threshold < 1:
        raise NasError(f"near: slope_threshold must lie in (0, 1), got {slope_threshold}")
    x = np.array([1.0, *map(float, sizes)])
    y = np.array([1.0, *map(float, relative_scores)])
    try:
        with warnings.catch_warnings():  # an exact fit has no covariance estimate; irrelevant here
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b, c), _ = curve_fit(power_law, x, y, p0=(1.0, 2.0, -1.0), maxfev=10000)
    except (RuntimeError, ValueError) as err:
        raise NasError(f"near: the power-law fit of the relative NEAR scores failed ({err})") from None
    if not c < 1:
        raise NasError(f"near: fitted exponent c = {c:.4g} >= 1: relative scores do not decay with width")
    return LayerSizeEstimate(
        size=float(slope_threshold ** (1.0 / (c - 1.0))),
        a=float(a),
        b=float(b),
        c=float(c),
        sizes=tuple(int(s) for s in sizes),
        relative_scores=tuple(float(v) for v in relative_scores),
        slope_threshold=float(slope_threshold),
    )


def estimate_layer_size(
    build_mlp: Callable[[int], nn.Module],
    sizes: Sequence[int],
    data: Tensor | Iterable,
    layer_index: int,
    slope_threshold: float = 0.005,
    repetitions: int = 1,
    reinit: bool = True,
    seed: int | None = 0,
    **near_options: Any,
) -> LayerSizeEstimate:
    """Estimate a good width for one layer (the official ``estimate_layer_size``).

    ``build_mlp(size)`` returns the network with that layer ``size`` wide; ``layer_index`` picks
    the module to score among NEAR's hooked modules (``hooked_modules(model)``; the official example
    scores the hidden layer's activation). Each network is built right after
    ``torch.manual_seed(seed)`` (``seed=None``: no reseeding) and scored with
    ``near_score(..., repetitions, reinit, seed)``; ``near_options`` go to :func:`near_score`
    (``fast``, ``batchnorm``, ``precision``). A dense layer of width ``n`` needs ``n`` samples, so
    ``data`` should hold at least ``max(sizes)`` of them.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise NasError("near: sizes must be positive widths")
    relative = []
    for size in sizes:
        if seed is not None:
            torch.manual_seed(seed)
        model = build_mlp(size)
        score = near_score(
            model,
            data,
            repetitions=repetitions,
            reinit=reinit,
            seed=0 if seed is None else seed,
            layer_index=layer_index,
            **near_options,
        )
        relative.append(score / size)
    return fit_layer_size(sizes, relative, slope_threshold)


# -- activation and initialisation ----------------------------------------------------------------
@dataclass
class InitScore:
    """NEAR of one (activation, initialisation) pair, averaged over fresh initialisations."""

    activation: str
    init: str
    score: float
    scores: list[float] = field(default_factory=list)
    flagged: bool = False  # far below the best pair (see rank_activation_init)

    @property
    def spread(self) -> float:
        return statistics.pstdev(self.scores) if len(self.scores) > 1 else 0.0


_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)


def apply_init(model: nn.Module, init: Callable[[Tensor], Any] | None, bias: str = "keep") -> nn.Module:
    """Apply ``init`` (a ``torch.nn.init`` style in-place function, or None for PyTorch's default)
    to the weight of every linear and convolution layer; ``bias="zero"`` also zeroes their biases,
    ``"keep"`` leaves PyTorch's default biases."""
    if bias not in ("keep", "zero"):
        raise NasError(f"near: bias must be 'keep' or 'zero', got {bias!r}")
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, _WEIGHTED):
                continue
            if init is not None:
                init(module.weight)
            if bias == "zero" and module.bias is not None:
                module.bias.zero_()
    return model


def rank_pairs(
    build: Callable[[str, str], nn.Module],
    activations: Sequence[str],
    inits: Sequence[str],
    data: Tensor | Iterable,
    repetitions: int = 3,
    seed: int = 0,
    flag_below: float = 0.5,
    progress: Callable[[], Any] | None = None,
    **near_options: Any,
) -> list[InitScore]:
    """NEAR of every (activation, initialisation) pair, best first: repetition ``r`` calls
    ``build(activation, init)`` right after ``torch.manual_seed(seed + r)`` and scores the network
    once, never re-initialised (``reinit=False``); the pair's score is the mean. ``flagged`` marks
    pairs below ``flag_below`` times the best score (our heuristic for "obviously bad"; the paper
    reports that NEAR separates such pairs reliably but may misorder near-ties)."""
    if int(repetitions) < 1:
        raise NasError(f"near: repetitions must be at least 1, got {repetitions}")
    if not activations or not inits:
        raise NasError("near: give at least one activation and one initialisation")
    results = []
    for act_name in activations:
        for init_name in inits:
            scores = []
            for r in range(int(repetitions)):
                torch.manual_seed(seed + r)
                model = build(act_name, init_name)
                scores.append(near_score(model, data, repetitions=1, reinit=False, seed=seed + r, **near_options))
                if progress is not None:
                    progress()
            results.append(InitScore(act_name, init_name, float(np.mean(scores)), scores))
    results.sort(key=lambda item: -item.score if math.isfinite(item.score) else math.inf)
    best = results[0].score
    for item in results:
        item.flagged = not math.isfinite(item.score) or item.score < flag_below * best
    return results


def rank_activation_init(
    build: Callable[[Callable[[], nn.Module]], nn.Module],
    activations: Mapping[str, Callable[[], nn.Module]],
    inits: Mapping[str, Callable[[Tensor], Any] | None],
    data: Tensor | Iterable,
    repetitions: int = 3,
    seed: int = 0,
    bias: str = "keep",
    flag_below: float = 0.5,
    **near_options: Any,
) -> list[InitScore]:
    """NEAR of every (activation, initialisation) pair of a network you build, best first.

    ``build(make_activation)`` returns a network whose activations come from
    ``make_activation()`` (e.g. ``lambda act: nn.Sequential(nn.Linear(8, 32), act(),
    nn.Linear(32, 32), act())``); ``activations`` maps names to such factories (``nn.ReLU`` is one);
    ``inits`` maps names to in-place initialisers of a weight tensor (``nn.init.xavier_uniform_``,
    or None for PyTorch's default), applied by :func:`apply_init` with ``bias``. The protocol is
    :func:`rank_pairs`'.
    """
    return rank_pairs(
        lambda act, init: apply_init(build(activations[act]), inits[init], bias),
        list(activations),
        list(inits),
        data,
        repetitions=repetitions,
        seed=seed,
        flag_below=flag_below,
        **near_options,
    )


# -- the same tools for a named model (nas.design.models) ---------------------------------------------
#: The official example's widths: 10 * 2**i, i = 0..7.
DEFAULT_WIDTHS = tuple(10 * 2**i for i in range(8))
_ACTIVATION_TYPES = tuple(getattr(nn.modules.activation, name) for name in nn.modules.activation.__all__)


def _scored_module(model: nn.Module, spec: Any, layer: str) -> nn.Module:
    """The module whose NEAR a width sweep scores: for ``mlp`` the activation of hidden layer
    ``layer`` (0-based), for ``cnn`` the last activation of stage ``layer``; for a factory the
    module named ``layer`` (``--module``)."""
    if spec.kind in ("mlp", "cnn"):
        acts = [m for m in model.modules() if isinstance(m, _ACTIVATION_TYPES)]
        blocks = int(spec.params.get("blocks", 1)) if spec.kind == "cnn" else 1
        index = (int(layer) + 1) * blocks - 1
        if not 0 <= index < len(acts):
            raise NasError(f"width: the model has no layer {layer} with an activation module")
        return acts[index]
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise NasError(f"width: the model has no module named {layer!r}") from None


def width_key(spec: Any) -> str:
    """The parameter of ``spec`` that a width sweep varies (families: ``widths`` / ``channels``)."""
    return {"mlp": "widths", "cnn": "channels"}.get(spec.kind, "")


def model_layer_size(
    spec: Any,
    layer: int | str,
    data: Tensor,
    num_classes: int,
    sizes: Sequence[int] = DEFAULT_WIDTHS,
    slope_threshold: float = 0.005,
    seed: int = 0,
    width_param: str | None = None,
    module: str | None = None,
    progress: Callable[[], Any] | None = None,
    **near_options: Any,
) -> LayerSizeEstimate:
    """:func:`estimate_layer_size` for a named model (:class:`nas.design.models.ModelSpec`).

    Families: ``layer`` is the hidden layer (``mlp``) or stage (``cnn``), 0-based, whose width is
    varied; its activation is scored. A factory: ``width_param`` is the keyword that sets the
    width and ``module`` the name of the module to score. Each network is built after
    ``torch.manual_seed(seed)`` and scored once with PyTorch's default initialisation (NEAR's
    ``reinit``), as the official example does.
    """
    from nas.design.models import ModelSpec

    if not isinstance(spec, ModelSpec):
        raise NasError("width: expected a model spec (nas.design.models.parse_model)")
    if spec.kind in ("mlp", "cnn"):
        key = width_key(spec)
        base = list(spec._family_kwargs(spec.params).get(key, (256, 256) if spec.kind == "mlp" else (16, 32, 64)))
        try:
            k = int(layer)
        except ValueError:
            raise NasError(f"width: layer {layer!r} of {spec.text} must be a layer number (0-based)") from None
        if not 0 <= k < len(base):
            raise NasError(f"width: layer {layer} is not among the {len(base)} layers of {spec.text}")

        def build(size: int) -> nn.Module:
            widths = list(base)
            widths[k] = int(size)
            return spec.with_params(**{key: widths}).build(data.shape[1:], num_classes, seed=None)

        target = str(k)
    elif spec.kind == "factory":
        if not width_param or not module:
            raise NasError(
                "width: a factory model needs the width keyword (--width-param) and the module to score (--module)"
            )

        def build(size: int) -> nn.Module:
            return spec.with_params(**{width_param: int(size)}).build(data.shape[1:], num_classes, seed=None)

        target = module
    else:
        raise NasError(f"width: model {spec.text!r} has no width to vary; use mlp(...), cnn(...) or a factory")

    relative = []
    for size in [int(s) for s in sizes]:
        torch.manual_seed(seed)
        model = build(size)
        index = [m for _, m in hooked_modules(model)].index(_scored_module(model, spec, target))
        value = near_score(model, data, repetitions=1, reinit=True, seed=seed, layer_index=index, **near_options)
        relative.append(value / size)
        if progress is not None:
            progress()
    return fit_layer_size(sizes, relative, slope_threshold)


def rank_model_activations(
    spec: Any,
    data: Tensor,
    num_classes: int,
    activations: Sequence[str],
    inits: Sequence[str],
    repetitions: int = 3,
    seed: int = 0,
    progress: Callable[[], Any] | None = None,
    **near_options: Any,
) -> list[InitScore]:
    """:func:`rank_pairs` for a named model: every (``act``, ``init``) of a family (a factory
    receives them as the keywords ``act`` and ``init``)."""
    if spec.kind not in ("mlp", "cnn", "factory"):
        raise NasError(
            f"activation: model {spec.text!r} has no activation to vary; use mlp(...), cnn(...) or a factory"
        )
    return rank_pairs(
        lambda act, init: spec.with_params(act=act, init=init).build(data.shape[1:], num_classes, seed=None),
        activations,
        inits,
        data,
        repetitions=repetitions,
        seed=seed,
        progress=progress,
        **near_options,
    )


def plot_layer_size(estimate: LayerSizeEstimate, path: str, title: str | None = None) -> None:
    """The relative NEAR scores against the width, the fitted power law and the chosen width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = np.geomspace(1, max(max(estimate.sizes), estimate.size) * 1.5, 200)
    ax.plot(estimate.sizes, estimate.relative_scores, "o", label="NEAR / width")
    ax.plot(xs, power_law(xs, estimate.a, estimate.b, estimate.c), "-", label=f"fit a + b x^c (c = {estimate.c:.3f})")
    ax.axvline(estimate.size, color="tab:red", ls="--", label=f"estimated width {estimate.size:.0f}")
    ax.set_xscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel("relative NEAR score")
    ax.set_title(title or "NEAR layer-size estimate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
