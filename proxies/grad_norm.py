"""grad_norm: the sum of per-layer gradient norms at initialisation, the baseline proxy of
Abdelfattah et al. (ICLR 2021).

Definition (foresight ``measures/grad_norm.py``, ``bn=True``): one forward and backward pass of
the batch's mean cross-entropy (with its labels) in the network's mode (train: BatchNorm uses the
batch's statistics); for every Conv2d/Linear layer the Euclidean norm of its weight gradient
``||dL/dW_l||_2``; the score is the sum of these per-layer norms (not the norm of all gradients
together). Layers the loss does not reach contribute 0.
"""

from __future__ import annotations

from nas.proxies._gradients import LossGradientProxy, LossGradients, sum_of_norms
from nas.proxies.base import register_proxy


@register_proxy("grad_norm")
class GradNorm(LossGradientProxy):
    tolerance = 5e-3  # across CPUs: docs/proxies.md#scores-on-other-machines
    description = "grad_norm (foresight): sum over Conv2d/Linear layers of ||dL/dW||_2, L the batch's cross-entropy"

    def from_gradients(self, gradients: LossGradients) -> float:
        return float(sum_of_norms(gradients.weight_grads))
