"""SNIP: connection sensitivity at initialisation (Lee et al., ICLR 2019), as the zero-cost proxy
of Abdelfattah et al. (ICLR 2021) computes it.

Definition (foresight ``measures/snip.py``, ``bn=True``, ``mode='param'``): every Conv2d/Linear
weight is multiplied by a mask of ones; the score is ``sum |dL/dmask|`` over these layers, where L
is the mean cross-entropy of the batch (with its labels) and the network is in the mode it was
given (train: BatchNorm uses the batch's statistics). Since ``dL/dmask = w * dL/dw`` at
mask = 1, we compute ``sum |w * dL/dw|`` directly: one forward and one backward pass, no mask
parameters and no patched ``forward`` methods (shared with grad_norm and fisher when they
are scored together). foresight's ``split_data`` (splitting the batch
only when it runs out of GPU memory) is not reproduced: the whole batch is one pass.
"""

from __future__ import annotations

from nas.proxies._gradients import LossGradientProxy, LossGradients, sum_of_products
from nas.proxies.base import register_proxy


@register_proxy("snip")
class Snip(LossGradientProxy):
    tolerance = 5e-3  # across CPUs: docs/proxies.md#scores-on-other-machines
    description = "SNIP (foresight): sum of |w * dL/dw| over Conv2d/Linear weights, L the batch's cross-entropy"

    def from_gradients(self, gradients: LossGradients) -> float:
        return float(sum_of_products(gradients.weights, gradients.weight_grads, absolute=True))
