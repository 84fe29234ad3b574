"""nas.draws gives the same values under ATen's scalar kernels (what a CPU without AVX2 runs) as
under this CPU's vectorised ones, where torch's own Gaussian sampler does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas import draws
from nas.testing.variation import python_output

_DRAW = (
    "import sys, numpy as np, torch; from nas import draws; "
    "rng = np.random.default_rng(0); "
    "ours = torch.cat([draws.normal((1000,), rng, std=0.3), draws.rademacher((100,), rng)]); "
    "theirs = torch.randn(1000, generator=torch.Generator().manual_seed(0)); "
    "sys.stdout.buffer.write(torch.cat([ours, theirs]).numpy().tobytes())"
)


def _drawn(setting: str) -> np.ndarray:
    return np.frombuffer(python_output(setting, _DRAW), dtype=np.float32)


def test_draws_are_the_same_under_scalar_kernels():
    vectorised, scalar = _drawn("baseline"), _drawn("ATen default")
    ours, theirs = slice(0, 1100), slice(1100, None)
    assert np.array_equal(vectorised[ours], scalar[ours])
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU runs the scalar kernels anyway: nothing to tell apart")
    # the control: torch's sampler does differ between the two, so the switch took effect
    assert not np.array_equal(vectorised[theirs], scalar[theirs])


def test_normal_has_the_requested_moments():
    x = draws.normal((200_000,), np.random.default_rng(1), std=2.0, dtype=torch.float64)
    assert abs(float(x.mean())) < 0.02 and abs(float(x.std()) - 2.0) < 0.02
