"""grad_norm: the sum of per-layer gradient norms at initialisation, the baseline proxy of
Abdelfattah et al. (ICLR 2021).

Definition (foresight ``measures/grad_norm.py``, ``bn=True``): one forward and backward pass of
the batch's mean cross-entropy (with its labels) in the network's mode (train: BatchNorm uses the
batch's statistics); for every Conv2d/Linear layer the Euclidean norm of its weight gradient
``||dL/dW_l||_2``; the score is the sum of these per-layer norms (not the norm of all gradients
together). Layers the loss does not reach contribute 0.
"""
from __future__ import annotations

from nas.proxies._gradients import batch_loss, requiring_grad, scored_layers, sum_of_norms, weight_gradients
from nas.proxies.base import Needs, register_proxy


@register_proxy("grad_norm", needs=Needs(inputs=True, labels=True, gradients=True, mode="train"))
def grad_norm(model, batch) -> float:
    """grad_norm (foresight): sum over Conv2d/Linear layers of ||dL/dW||_2, L the batch's cross-entropy."""
    weights = [layer.weight for layer in scored_layers(model)]
    with requiring_grad(weights):
        grads = weight_gradients(batch_loss(model, batch.inputs, batch.labels), weights)
    return float(sum_of_norms(grads))
