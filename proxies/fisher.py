"""Fisher: channel saliency from the empirical Fisher information (Fisher pruning, Theis et al.
2018, "Faster gaze prediction with dense networks and Fisher pruning"; used as a NAS signal by
Turner et al.'s BlockSwap, ICLR 2020), as the zero-cost proxy of Abdelfattah et al. (ICLR 2021)
computes it.

Definition (foresight ``measures/fisher.py``, ``bn=True``, ``mode='channel'``): foresight wraps the
output of every Conv2d/Linear layer in a "dummy" ``nn.Identity`` and registers a backward hook on
it, so the hook sees the layer's output activation ``a`` (before BatchNorm) and the gradient of
the batch's mean cross-entropy L w.r.t. it. Per layer and output channel k:

    g_nk  = sum over spatial positions of a_nk * dL/da_nk       (for Linear: a_nk * dL/da_nk)
    F_k   = 0.5 * mean_n g_nk^2

foresight then broadcasts each channel's |F_k| to every weight of that channel (``reshape_elements``:
a tensor of ``weight.shape[1:]`` filled with F_k) before the values are summed, so the score is

    sum over layers l, channels k of |F_lk| * (number of weights per output channel of l),

i.e. each channel counts ``in_channels/groups * kh * kw`` times (``in_features`` for Linear). We
reproduce this weighting exactly, without building the broadcast tensors. foresight also calls
``net.train()`` first: this proxy declares train mode.

How we get the same quantities: instead of identity modules with (deprecated) module backward
hooks, forward hooks record each scored layer's output tensor, and one ``torch.autograd.grad``
of L w.r.t. those outputs gives dL/da for all layers at once (with the weight gradients snip and
grad_norm read, when they are scored together: one pass for the three). A layer whose output does not
reach the loss scores 0 (foresight: zeros). A layer called several times in one forward pass sums
the F_k of its calls (foresight's single ``layer.act`` slot cannot represent this case).
"""

from __future__ import annotations

import torch

from nas.proxies._gradients import LossGradientProxy, LossGradients
from nas.proxies.base import register_proxy


@register_proxy("fisher")
class Fisher(LossGradientProxy):
    tolerance = 1e-2  # across CPUs: docs/proxies.md#scores-on-other-machines
    description = (
        "Fisher (foresight): sum over Conv2d/Linear channels of 0.5*mean_n(sum_hw a*dL/da)^2, "
        "each weighted by the channel's weight count"
    )
    reads_weights, reads_outputs = False, True

    def from_gradients(self, gradients: LossGradients) -> float:
        total = 0.0
        for (act, fan_in), grad in zip(gradients.outputs, gradients.output_grads):
            if grad is None:
                continue
            per_sample = (act.detach() * grad).flatten(2).sum(2) if act.dim() > 2 else act.detach() * grad
            channel = per_sample.pow(2).mean(0).mul(0.5)
            total = total + channel.abs().sum().to(torch.float64) * fan_in  # on the network's device
        return float(total)
