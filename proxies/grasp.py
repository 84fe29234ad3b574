"""GraSP: gradient signal preservation (Wang et al., ICLR 2020), as the zero-cost proxy of
Abdelfattah et al. (ICLR 2021) computes it.

Definition (foresight ``measures/grasp.py``, ``bn=True``, ``mode='param'``, ``T=1``,
``num_iters=1``): with W the Conv2d/Linear weights and L the batch's mean cross-entropy (labels
used, network in its mode, train: BatchNorm on batch statistics),

    g  = dL/dW                      (a constant: no graph kept)
    Hg = d/dW ( sum_l <g_l, dL/dW_l> )    (Hessian-gradient product by double backward)
    score = sum over all scored weights of  -W * Hg      (signed; foresight's sign convention)

foresight runs the forward pass twice (once for g, once for the differentiable gradient). The two
passes compute the same function of the same batch (BatchNorm in train mode normalises with the
batch's own statistics; TSS networks have no dropout), so we take g from the second pass,
detached: one forward, one backward with ``create_graph=True`` and one double backward. This is
value-identical for deterministic networks and saves a forward+backward pass; networks with
stochastic layers (dropout) would see the same random mask twice instead of two masks.
The whole batch is one pass (foresight's out-of-memory ``split_data`` is not reproduced).
"""

from __future__ import annotations

import torch

from nas.proxies._gradients import batch_loss, requiring_grad, scored_layers, sum_of_products
from nas.proxies.base import Needs, register_proxy


@register_proxy("grasp", needs=Needs(inputs=True, labels=True, gradients=True, mode="train"), tolerance=1e-1)
def grasp(model, batch) -> float:
    """GraSP (foresight): sum of -W * Hg over Conv2d/Linear weights (Hessian-gradient product)."""
    weights = [layer.weight for layer in scored_layers(model)]
    with requiring_grad(weights):
        loss = batch_loss(model, batch.inputs, batch.labels)
        grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        used = [(w, g) for w, g in zip(weights, grads) if g is not None]
        if not used:
            return 0.0
        z = sum_of_products([g.detach() for _, g in used], [g for _, g in used], absolute=False)
        hg = torch.autograd.grad(z, [w for w, _ in used], allow_unused=True)
    hg = [torch.zeros_like(w) if h is None else h for (w, _), h in zip(used, hg)]
    return -float(sum_of_products([w.detach() for w, _ in used], hg, absolute=False))
