"""Mean-field quantities of a layer ``h = W phi(x) + b`` (Poole et al. 2016, Schoenholz et al. 2017).

With ``W_ij ~ sigma_w^2 / fan_in`` and ``b ~ N(0, sigma_b^2)``, a unit's pre-activation variance
follows ``q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2`` (z standard normal); its fixed point is
``q*``. The slope of the correlation map at ``c = 1``, ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]``,
is the mean squared singular value of the layer's input-output Jacobian: 1 is criticality, the
condition dynamical isometry starts from. The expectations are half-range Gauss-Hermite
quadratures (:func:`gaussian_mean`).

>>> round(chi_1("relu", sigma_w2=2.0, q=1.0), 6)   # ReLU is critical at sigma_w^2 = 2
1.0
>>> round(critical_gain("relu", q=1.0) ** 2, 6)
2.0
>>> round(chi_1("tanh", sigma_w2=1.0, q=fixed_point("tanh", 1.0, 0.0)), 2)  # tanh at q* = 0
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from nas.errors import NasError

_NONLINEARITIES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
}


@lru_cache(maxsize=4)
def _half_range_nodes(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule of ``order`` nodes for the weight ``exp(-z^2/2)`` on ``[0, inf)`` (half-range
    Gauss-Hermite), normalised to a standard normal's half mass: the recurrence coefficients come
    from the Stieltjes procedure on a composite Gauss-Legendre discretisation of ``[0, 14]`` (the tail
    beyond holds ``exp(-98)`` of the mass), the nodes and weights from the Jacobi matrix
    (Golub-Welsch)."""
    x, w = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(0.0, 14.0, 71)  # 70 panels of 20 nodes: exact to rounding for these smooth integrands
    half = 0.5 * np.diff(edges)
    z = ((edges[:-1] + half)[:, None] + half[:, None] * x[None, :]).ravel()
    mass = (half[:, None] * w[None, :]).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # sums to 1/2
    alpha, beta = np.zeros(order), np.zeros(order)
    previous, current = np.zeros_like(z), np.ones_like(z)
    norm_prev = 1.0
    for k in range(order):
        norm = float(np.sum(mass * current * current))
        alpha[k] = float(np.sum(mass * z * current * current)) / norm
        beta[k] = norm / norm_prev if k else norm
        previous, current = current, (z - alpha[k]) * current - (beta[k] if k else 0.0) * previous
        norm_prev = norm
    jacobi = np.diag(alpha) + np.diag(np.sqrt(beta[1:]), 1) + np.diag(np.sqrt(beta[1:]), -1)
    nodes, vectors = np.linalg.eigh(jacobi)
    return nodes, beta[0] * vectors[0] ** 2


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], q: float, order: int = 40) -> float:
    """``E[f(sqrt(q) z)]`` for standard normal ``z`` by half-range Gauss-Hermite quadrature: each
    half-line separately, so a nonlinearity with a kink at 0 (ReLU) is integrated to rounding
    error (a full-range rule converges only as 1/order across the kink)."""
    z, w = _half_range_nodes(order)
    x = math.sqrt(max(q, 0.0)) * z
    return float(np.sum(w * (f(x) + f(-x))))


def _phi(name: str):
    try:
        return _NONLINEARITIES[name]
    except KeyError:
        raise NasError(f"unknown nonlinearity {name!r}; expected one of {', '.join(_NONLINEARITIES)}") from None


def variance_map(name: str, q: float, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """One layer's map of the pre-activation variance."""
    phi, _ = _phi(name)
    return sigma_w2 * gaussian_mean(lambda x: phi(x) ** 2, q) + sigma_b2


def fixed_point(name: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0, steps: int = 2000) -> float:
    """``q*`` reached by iterating the variance map from ``q0`` (ReLU at sigma_w^2 = 2 with no
    bias has a line of fixed points: every ``q0`` is one, and this returns ``q0``)."""
    q = q0
    for _ in range(steps):
        nxt = variance_map(name, q, sigma_w2, sigma_b2)
        if abs(nxt - q) <= 1e-12 * max(1.0, q):
            return nxt
        q = nxt
    return q


def chi_1(name: str, sigma_w2: float, q: float) -> float:
    """Mean squared singular value of one layer's Jacobian at pre-activation variance ``q``."""
    _, dphi = _phi(name)
    return sigma_w2 * gaussian_mean(lambda x: dphi(x) ** 2, q)


def critical_gain(name: str, q: float) -> float:
    """The weight gain ``g`` (``sigma_w = g``) that puts a layer at ``chi_1 = 1`` for inputs of
    variance ``q``: ``g = 1 / sqrt(E[phi'(sqrt(q) z)^2])``."""
    _, dphi = _phi(name)
    return 1.0 / math.sqrt(gaussian_mean(lambda x: dphi(x) ** 2, q))


def normalised_chi(name: str, q: float) -> float:
    """``chi_1`` of ``BN(W phi(x))`` (BatchNorm with batch statistics) for inputs of variance
    ``q``: BN subtracts the mean and divides by the standard deviation of ``W phi(x)``, so the
    weight gain cancels and ``chi = E[phi'^2] / Var[phi]``. For ReLU that is ``pi / ((pi - 1) q)``,
    about ``1.467 / q``: a BatchNorm op is above criticality at unit-variance inputs whatever its
    weight scale, and a chain of them stays there at its own fixed point (the gradient explosion
    of batch-normalised networks, Yang et al. 2019). :func:`op_scale` is the output scale that
    brings one op to ``chi_1 = 1`` at unit-variance inputs.

    >>> round(normalised_chi("relu", 1.0), 4), round(math.pi / (math.pi - 1), 4)
    (1.4669, 1.4669)
    """
    phi, dphi = _phi(name)
    mean = gaussian_mean(phi, q)
    return gaussian_mean(lambda x: dphi(x) ** 2, q) / (gaussian_mean(lambda x: phi(x) ** 2, q) - mean * mean)


def op_scale(name: str) -> float:
    """The fixed output scale of a ``phi``-conv-BN op that puts it at ``chi_1 = 1`` for inputs of
    unit variance (the variance a BatchNorm hands on): ``1 / sqrt(normalised_chi(name, 1))``.

    >>> round(op_scale("relu"), 4), round(math.sqrt((math.pi - 1) / math.pi), 4)
    (0.8256, 0.8256)
    """
    return 1.0 / math.sqrt(normalised_chi(name, 1.0))
