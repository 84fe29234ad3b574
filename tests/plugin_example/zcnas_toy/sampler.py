"""`toy-first`: Optuna's random sampler under another name, with one option."""

from __future__ import annotations

import optuna

from nas.strategies.samplers import register_sampler


@register_sampler("toy-first", options=("startup",))
def toy_first(seed, space, startup=0):
    return optuna.samplers.RandomSampler(seed=seed + int(startup))
