"""NEAR's effective rank (Roy & Vetterli 2007) of activation matrices, batched by shape."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nas.errors import NasError

_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


class NonFiniteActivations(FloatingPointError):
    """An activation matrix holds NaN or infinite values (a diverging or broken network)."""


# -- effective rank ---------------------------------------------------------------------------------
def effective_ranks_from_singular_values(singular_values: Tensor) -> Tensor:
    """Effective ranks of the last axis of ``singular_values`` (float64; 0 where all are 0)."""
    s = singular_values.to(torch.float64)
    total = s.sum(dim=-1, keepdim=True)
    positive = total > 0
    p = s / torch.where(positive, total, torch.ones_like(total))
    ranks = torch.exp(torch.special.entr(p).sum(dim=-1))
    return torch.where(positive.squeeze(-1), ranks, torch.zeros_like(ranks))


def _singular_values(stack: Tensor) -> Tensor:
    """Singular values of a stack of matrices. In float64 they are the square roots of the
    eigenvalues of the smaller Gram matrix (about twice as fast as an SVD for the small matrices
    NEAR sees; exact to ~1e-8 of the largest value, which moves an effective rank by < 1e-5);
    in float32 an SVD, as the official code computes them."""
    if stack.dtype != torch.float64:
        return torch.linalg.svdvals(stack)
    gram = stack @ stack.mT if stack.shape[-2] <= stack.shape[-1] else stack.mT @ stack
    return torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()


def effective_ranks(matrices: Tensor, precision: str = "float64") -> Tensor:
    """Effective ranks of a stack of equal-size matrices ``(..., m, n)``."""
    if not bool(torch.isfinite(matrices).all()):
        raise NonFiniteActivations("effective rank of a matrix with NaN or infinite entries")
    values = torch.linalg.svdvals(matrices.to(_precision(precision)))
    return effective_ranks_from_singular_values(values)


def effective_rank(matrix: Tensor | np.ndarray, precision: str = "float64") -> float:
    """Roy & Vetterli's effective rank: ``exp(H(p))`` with ``p = s / sum(s)`` over the singular
    values ``s``; 0 for an all-zero (or empty) matrix. ``erank(I_n) = n``."""
    matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2:
        raise ValueError(f"effective_rank expects a 2-D matrix, got shape {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        return 0.0
    return float(effective_ranks(matrix, precision))


def _precision(name: str) -> torch.dtype:
    try:
        return _PRECISIONS[name]
    except KeyError:
        raise NasError(f"near: precision must be one of {', '.join(_PRECISIONS)}, got {name!r}") from None
