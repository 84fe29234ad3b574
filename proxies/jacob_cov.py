"""jacob_cov: the Jacobian-covariance score of "Neural Architecture Search without Training"
(Mellor et al., arXiv 2006.04647 v1, "NASWOT v1"), as the zero-cost proxy of Abdelfattah et al.
(ICLR 2021) computes it.

Definition (foresight ``measures/jacob_cov.py``, ``bn=True``): the input batch x (N samples) is
made differentiable, the network run in its mode (train: BatchNorm on batch statistics), and the
gradient of the sum of all outputs w.r.t. the input gives per-sample Jacobian rows
``J_n = d(sum_c f_c(x_n)) / d x_n`` (foresight: ``y.backward(ones_like(y))``). With C the N x N
Pearson correlation matrix of the rows (``numpy.corrcoef``) and v its eigenvalues,

    score = -sum_i ( log(v_i + k) + 1 / (v_i + k) ),   k = 1e-5.

The maximum, -N, is reached when the Jacobians of different samples are uncorrelated.

Differences from foresight: C is computed in float64 with torch (numpy's corrcoef also works in
float64, and clips to [-1, 1] as we do), and the eigenvalues with the symmetric solver
``eigvalsh`` instead of the general ``numpy.linalg.eig``, which can return spurious complex parts
for this symmetric matrix. Only the input gradient is computed (no weight gradients). When C is
undefined (a sample's Jacobian is constant, e.g. the output does not depend on the input), or an
eigenvalue is <= -k, the score is NaN, a failed result: foresight returns NaN in these cases too.
"""

from __future__ import annotations

import math

import torch

from nas.proxies._gradients import logits_of
from nas.proxies.base import Needs, register_proxy

K = 1e-5


def correlation_score(jacobians: torch.Tensor, k: float = K) -> float:
    """The score of an (N, D) matrix of per-sample Jacobians."""
    rows = jacobians.reshape(jacobians.shape[0], -1).to(torch.float64)
    centred = rows - rows.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1)
    if not bool(torch.all(norms > 0)) or not bool(torch.isfinite(rows).all()):
        return math.nan
    unit = centred / norms[:, None]
    corr = (unit @ unit.T).clamp_(-1.0, 1.0)
    values = torch.linalg.eigvalsh(corr) + k
    if bool((values <= 0).any()):
        return math.nan
    return -float((values.log() + values.reciprocal()).sum())


@register_proxy("jacob_cov", needs=Needs(inputs=True, labels=False, gradients=True, mode="train"), tolerance=1e-4)
def jacob_cov(model, batch) -> float:
    """jacob_cov (foresight / NASWOT v1): -sum(log(v+k) + 1/(v+k)), v the eigenvalues of the
    correlation matrix of the per-sample input Jacobians."""
    x = batch.inputs.detach().clone().requires_grad_(True)
    output = logits_of(model(x))
    (jacobians,) = torch.autograd.grad(output.sum(), x, allow_unused=True)
    if jacobians is None:
        return math.nan
    return correlation_score(jacobians)
