"""Random draws that are the same on every machine.

``torch.randn`` and ``Tensor.normal_`` are not: for 16 values or more ATen runs a vectorised
sampler on CPUs with AVX2 and a scalar one elsewhere (an ARM laptop, an old Xeon, another ATen
capability), and the same seed then gives draws that differ by an ulp in about 40% of the values
(``python scripts/randn_by_cpu.py``). Most proxies shrug that off; AZ-NAS's scores of seeded
Gaussian inputs moved by up to 48% (docs/proxies.md, "Scores on other machines").

These draws come from numpy's ``Generator`` (PCG64 and the ziggurat sampler: integer arithmetic
and double-precision tables, with no vectorised code path), in float64, rounded once to the
tensor's dtype. Only the ziggurat's rare tail and wedge branches call the C library's ``exp`` and
``log``, where two libraries could differ by an ulp in a float64 comparison that decides a draw
(not tried here: ``tests/test_draws.py`` checks the draws under ATen's scalar kernels only).

>>> a = normal((2, 3), np.random.default_rng(0), std=0.5)
>>> b = normal((2, 3), np.random.default_rng(0), std=0.5)
>>> bool(torch.equal(a, b)), a.dtype, tuple(a.shape)
(True, torch.float32, (2, 3))
>>> sorted(set(rademacher((100,), np.random.default_rng(0)).tolist()))
[-1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def normal(
    shape: Sequence[int], rng: np.random.Generator, std: float = 1.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """N(0, ``std``²) draws of ``shape`` on the CPU (move them with ``.to``)."""
    values = rng.standard_normal(tuple(int(s) for s in shape))
    if std != 1.0:
        values *= std  # in float64: one rounding, to dtype, below
    return torch.from_numpy(values).to(dtype)


def truncated_normal(
    shape: Sequence[int],
    rng: np.random.Generator,
    std: float = 1.0,
    bound: float = 2.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """N(0, ``std``²) draws of ``shape``, each drawn again while it lies more than ``bound``
    standard deviations from 0 (TensorFlow's ``truncated_normal``). The test is on the float64
    draw, so how many draws a tensor takes, and with it every later draw, is the same on every CPU."""
    values = rng.standard_normal(tuple(int(s) for s in shape))
    flat = values.reshape(-1)
    outside = np.flatnonzero(np.abs(flat) > bound)
    while outside.size:
        flat[outside] = rng.standard_normal(outside.size)
        outside = outside[np.abs(flat[outside]) > bound]
    if std != 1.0:
        values *= std
    return torch.from_numpy(values).to(dtype)


def uniform(
    shape: Sequence[int], rng: np.random.Generator, low: float, high: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """U(``low``, ``high``) draws of ``shape`` on the CPU."""
    return torch.from_numpy(rng.uniform(low, high, tuple(int(s) for s in shape))).to(dtype)


def rademacher(shape: Sequence[int], rng: np.random.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Independent ±1 draws of ``shape`` on the CPU."""
    signs = rng.integers(0, 2, size=tuple(int(s) for s in shape), dtype=np.int8) * 2 - 1
    return torch.from_numpy(signs).to(dtype)
