"""Growing tiny networks at their expressivity bottlenecks (TINY, Verbockhaven et al., TMLR 2024).

A way of arriving at an architecture that trains: start tiny, and at each step add the neurons
that best realise what the functional gradient asks of a layer and no change of its weights can
(the closed form of :mod:`.closed_form`, from the statistics of :mod:`.statistics`), at an
amplitude searched on training data, then train again (:func:`grow`, ``nas grow``). No search
over widths. docs/grow.md has the method, our choices where the paper leaves them open, and the
evidence against GroMo, training from scratch and random neurons.

>>> import torch
>>> from torch import nn
>>> from nas.strategies.grow import GrowthConfig, grow
>>> x, y = torch.randn(200, 5), torch.randint(0, 3, (200,))
>>> net = nn.Sequential(nn.Linear(5, 1), nn.SELU(), nn.Linear(1, 3))
>>> result = grow(net, (x, y), (x, y), GrowthConfig(max_params=60, epochs_per_step=1, final_epochs=1))
>>> result.widths[0] > 1 and result.history[-1]["params"] <= 60
True
"""

from nas.strategies.grow.closed_form import NewNeurons, inverse_sqrt_psd, optimal_delta, optimal_neurons
from nas.strategies.grow.loop import GrowthConfig, GrowthResult, choose_amplitude, evaluate, grow
from nas.strategies.grow.network import GrowableNet, Stage
from nas.strategies.grow.report import plot_growth
from nas.strategies.grow.statistics import Candidate, Statistics, candidate, collect_statistics, neuron_moments

__all__ = [
    "grow", "GrowthConfig", "GrowthResult", "GrowableNet", "Stage", "collect_statistics",
    "candidate", "Candidate", "Statistics", "optimal_delta", "optimal_neurons", "NewNeurons", "inverse_sqrt_psd",
    "choose_amplitude", "evaluate", "plot_growth", "neuron_moments",
]  # fmt: skip
