"""TINY's closed forms (Verbockhaven et al., TMLR 2024; ../shared/docs/METHODS.md section 6.1).

For a layer ``A = W B`` (B: its input, a column of ones appended for the bias; n samples as rows)
and the per-sample loss gradients ``G = dL/dA``, with the statistics averaged over the n samples

    S = BᵀB / n,   M = BᵀG / n,

the best change of the existing weights is ``dW* = (S⁻¹ M)ᵀ`` (applied as ``W - t dW*``), whose
first-order loss decrease per unit step is ``tr(M dW*)``. What no change of W can do, the
expressivity bottleneck, is fixed by new neurons between the previous layer and this one: with
the previous layer's input B₋₂, ``S₂ = B₋₂ᵀB₋₂ / n`` and ``N = -B₋₂ᵀG / n + (B₋₂ᵀB / n) dW*ᵀ``,
the SVD ``S₂^(-1/2) N = U diag(σ) Vᵀ`` gives the new neurons' input weights
``α_k = √σ_k S₂^(-1/2) u_k`` and output weights ``ω_k = √σ_k v_k``, which reduce the bottleneck
by ``σ_k²`` each. Everything here is computed in float64: S can be badly conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def inverse_sqrt_psd(matrix: torch.Tensor, threshold: float = 1e-6) -> torch.Tensor:
    """``matrix^(-1/2)`` of a symmetric positive semi-definite matrix, eigenvalues <= threshold dropped."""
    sym = (matrix + matrix.T) / 2  # accumulated sums are symmetric only up to rounding
    values, vectors = torch.linalg.eigh(sym)
    keep = values > threshold
    return (vectors[:, keep] * values[keep].rsqrt()) @ vectors[:, keep].T


def optimal_delta(s: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(dW*, tr(M dW*))``: the natural-gradient change of existing weights and its first-order decrease.

    ``s`` is (in, in), ``m`` is (in, out); dW* is (out, in). A singular S (dead units, few
    samples) is solved in the least-squares sense.
    """
    try:
        solution = torch.linalg.solve(s, m)
    except torch.linalg.LinAlgError:
        solution = torch.linalg.lstsq(s, m).solution
    delta = solution.T
    decrease = float(torch.trace(m @ delta))
    if not decrease >= 0:  # rounding on a near-singular S: the pseudo-inverse is the safe answer
        delta = (torch.linalg.pinv(s, hermitian=True) @ m).T
        decrease = max(float(torch.trace(m @ delta)), 0.0)
    return delta, decrease


@dataclass(frozen=True)
class NewNeurons:
    """The optimal neurons for one hidden layer (in the input's and the output's extended bases).

    ``alpha`` (k, in+1): input weights, the last column the bias. ``omega`` (out, k): output
    weights. ``singular_values`` (k,): each neuron's share of the bottleneck reduction is its square.
    """

    alpha: torch.Tensor
    omega: torch.Tensor
    singular_values: torch.Tensor

    @property
    def count(self) -> int:
        return int(self.singular_values.numel())

    @property
    def bottleneck_reduction(self) -> float:
        """Σσ²: how much of ‖V_goal^⊥‖²/n the new neurons remove (before the activation's slope)."""
        return float((self.singular_values**2).sum())


def optimal_neurons(
    s2: torch.Tensor,
    n: torch.Tensor,
    max_neurons: int | None = None,
    statistical_threshold: float = 1e-3,
    numerical_threshold: float = 1e-6,
) -> NewNeurons:
    """The neurons minimising ``‖V_goal^⊥ - B₋₂ α ωᵀ‖²`` (the SVD of ``S₂^(-1/2) N``).

    Singular values below ``statistical_threshold`` are noise of the sample and dropped (the top
    one is always kept); at most ``max_neurons`` are returned.
    """
    root = inverse_sqrt_psd(s2, numerical_threshold)
    u, sigma, vt = torch.linalg.svd(root @ n, full_matrices=False)
    keep = sigma >= min(statistical_threshold, float(sigma.max()))
    if max_neurons is not None:
        keep[max_neurons:] = False
    u, sigma, vt = u[:, keep], sigma[keep], vt[keep]
    scale = sigma.sqrt()
    alpha = (root @ u * scale).T
    omega = vt.T * scale
    return NewNeurons(alpha=alpha, omega=omega, singular_values=sigma)
