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


def test_truncated_normal_matches_tensorflows_closed_form():
    x = draws.truncated_normal((200_000,), np.random.default_rng(2), std=3.0, dtype=torch.float64)
    assert float(x.abs().max()) <= 6.0
    # N(0, 1) cut at +-2 has standard deviation 0.8796 (the constant TF1's initialiser divides by)
    assert abs(float(x.std()) / 3.0 - 0.87962566103423978) < 0.005 and abs(float(x.mean())) < 0.02
    again = draws.truncated_normal((200_000,), np.random.default_rng(2), std=3.0, dtype=torch.float64)
    assert torch.equal(x, again)


def test_uniform_stays_in_its_interval():
    x = draws.uniform((10_000,), np.random.default_rng(3), -0.5, 0.25)
    assert -0.5 <= float(x.min()) and float(x.max()) < 0.25 and abs(float(x.mean()) + 0.125) < 0.01


# The NB101 network's initial weights: version 1 drew them with torch's sampler, whose redraws of
# the truncation then took another number of draws in some layer of a large network, so every
# later layer of it differed under the scalar kernels (94% of a 13M-weight network's values).
_NB101_WEIGHTS = (
    "import sys, torch; from nas.searchspaces import get_space; "
    "space = get_space('nb101'); "
    "arch = space.resolve(([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], "
    "['input', 'conv3x3-bn-relu', 'maxpool3x3', 'output'])); "
    "torch.manual_seed(0); net = space.build(arch, num_classes=10); "
    "sys.stdout.buffer.write(torch.cat([p.detach().flatten() for p in net.parameters()]).numpy().tobytes())"
)


def test_nb101_networks_have_the_same_weights_under_scalar_kernels():
    vectorised = np.frombuffer(python_output("baseline", _NB101_WEIGHTS), dtype=np.float32)
    scalar = np.frombuffer(python_output("ATen default", _NB101_WEIGHTS), dtype=np.float32)
    assert len(vectorised) > 1_000_000 and np.array_equal(vectorised, scalar)
