"""Design tools: explain or change one network before training it (any ``torch.nn.Module``).

- :func:`layer_nlc`: the nonlinearity coefficient of a network and of each of its layers
  (cumulative and per activation), with bootstrap errors; :func:`plot_layer_nlc`.
- :func:`normalize_nonlinearity`: soften the activations until the network's NLC hits a target
  (our reading of Philipp's "nonlinearity normalisation"); :func:`save_normalized`,
  :func:`load_normalized`.
- :func:`model_layer_size` / :func:`estimate_layer_size`: NEAR's estimate of a layer's width;
  :func:`rank_model_activations` / :func:`rank_activation_init`: NEAR's ranking of activation and
  initialisation pairs.
- :func:`capacity_allocation`: the effective parameters a network spends on each input
  coordinate (Donier's capacity allocation, our implementation), :func:`plot_capacity`;
  :func:`layer_transfer` / :func:`markov_allocation`: the layer-decoupled allocation.
- :func:`parse_model`: the networks these take by name: ``mlp(...)``, ``cnn(...)``, a benchmark
  architecture ``SPACE:ARCH`` or your ``module:factory``.

The command line is ``nas design nlc|normalize|width|activation|capacity``; docs/design.md has the method
and the evidence. The design tools know nothing of benchmark accuracies or search.

>>> import torch
>>> from nas.design import layer_nlc, parse_model
>>> net = parse_model("mlp(widths=32-32,act=identity)").build((8,), 4, seed=0)
>>> round(layer_nlc(net, torch.randn(64, 8), bootstrap=0).network, 6)  # affine: exactly 1
1.0
"""

from nas.design.capacity import (
    CapacityReport,
    capacity_allocation,
    input_gradient_energy,
    layer_transfer,
    markov_allocation,
    plot_capacity,
)
from nas.design.models import ACTIVATIONS, INITS, ModelSpec, parse_model
from nas.design.near import (
    LayerSizeEstimate,
    estimate_layer_size,
    fit_layer_size,
    model_layer_size,
    plot_layer_size,
    rank_activation_init,
    rank_model_activations,
    rank_pairs,
)
from nas.design.nlc import BAND, LayerNLC, NLCReport, format_table, layer_nlc, network_nlc, plot_layer_nlc
from nas.design.normalize import (
    MixedActivation,
    Normalization,
    load_normalized,
    mix_activations,
    normalize_nonlinearity,
    save_normalized,
)

__all__ = [
    "capacity_allocation",
    "CapacityReport",
    "plot_capacity",
    "layer_transfer",
    "markov_allocation",
    "input_gradient_energy",
    "layer_nlc",
    "network_nlc",
    "NLCReport",
    "LayerNLC",
    "format_table",
    "plot_layer_nlc",
    "BAND",
    "normalize_nonlinearity",
    "Normalization",
    "MixedActivation",
    "mix_activations",
    "save_normalized",
    "load_normalized",
    "estimate_layer_size",
    "fit_layer_size",
    "model_layer_size",
    "plot_layer_size",
    "rank_activation_init",
    "rank_model_activations",
    "rank_pairs",
    "LayerSizeEstimate",
    "parse_model",
    "ModelSpec",
    "ACTIVATIONS",
    "INITS",
]
