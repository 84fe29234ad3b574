"""SynFlow: synaptic saliency of the linearised network (Tanaka et al., NeurIPS 2020), as the
zero-cost proxy of Abdelfattah et al. (ICLR 2021) computes it.

Definition (foresight ``measures/synflow.py``, registered as ``synflow`` with ``bn=False``):

1. every floating-point parameter and buffer is replaced by its absolute value and the network is
   run in float64 (foresight: ``abs_()`` on the state dict, then ``net.double()``);
2. BatchNorm layers (``BatchNorm1d/2d``) are bypassed: their forward returns the input (foresight's
   ``bn=False`` prunable copy replaces their ``forward`` with a no-op);
3. the input is one all-ones sample of the batch's shape, ``[1, C, H, W]`` (foresight uses a batch
   of one; every sample would be identical, so a larger batch would only multiply the score);
4. R = sum of the outputs; the score is ``sum over Conv2d/Linear weights of |theta * dR/dtheta|``.

``bn=True`` gives foresight's ``synflow_bn`` variant (BatchNorm kept, in the network's mode).

Differences from foresight, all value-preserving: the network is not copied or modified; the
absolute float64 weights are passed with ``torch.func.functional_call`` and BatchNorm is bypassed
only for the duration of the call; only the scored weights get gradients.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from nas.proxies._gradients import logits_of, scored_layers, sum_of_products
from nas.proxies.base import Needs, Proxy, register_proxy

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _identity(x):
    return x


@contextmanager
def bypassed_batchnorm(model: nn.Module):
    """BatchNorm1d/2d modules return their input inside the context (foresight's ``no_op``)."""
    patched = []
    for module in model.modules():
        if isinstance(module, _BATCHNORMS):
            patched.append((module, module.__dict__.get("forward")))
            module.forward = _identity
    try:
        yield
    finally:
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous


def synflow_score(model: nn.Module, input_shape: tuple[int, ...], bn: bool = False) -> float:
    """SynFlow of ``model`` for inputs of shape ``input_shape`` (C, H, W), as a float."""
    layers = scored_layers(model)
    weight_ids = {id(layer.weight) for layer in layers}
    state: dict[str, torch.Tensor] = {}
    scored: list[torch.Tensor] = []
    with torch.no_grad():
        named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
        floating = [(name, t) for name, t in named if t.is_floating_point()]
        converted = torch._foreach_abs([t.detach().to(torch.float64) for _, t in floating])
    seen: dict[int, torch.Tensor] = {}
    for (name, original), value in zip(floating, converted):
        shared = seen.setdefault(id(original), value)  # a tensor shared by two names stays shared
        if id(original) in weight_ids and not shared.requires_grad:
            shared.requires_grad_(True)
            scored.append(shared)
        state[name] = shared
    if not scored:
        return 0.0
    device = scored[0].device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    context = nullcontext() if bn else bypassed_batchnorm(model)
    with context:
        output = logits_of(torch.func.functional_call(model, state, (ones,), strict=False))
    total = output.sum()
    grads = torch.autograd.grad(total, scored, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for w, g in zip(scored, grads)]
    return float(sum_of_products([w.detach() for w in scored], grads, absolute=True))


@register_proxy("synflow")
class SynFlow(Proxy):
    """SynFlow (Tanaka et al. 2020) as foresight computes it: |theta * dR/dtheta| summed over
    Conv2d/Linear weights, R the output sum of the |weights| float64 network on an all-ones input."""

    tolerance = 1e-6  # across CPUs: docs/proxies.md#scores-on-other-machines

    version = "1"
    higher_is_better = True
    # Only the batch's shape is read. No labels; gradients w.r.t. the weights; BatchNorm is
    # bypassed, so the mode matters only with bn=True (then train mode, as foresight leaves it).
    needs = Needs(inputs=True, labels=False, gradients=True, mode="train")
    defaults = {"bn": False}
    description = "SynFlow (foresight): sum |theta * dR/dtheta| of the |weights| float64 network on ones"

    def score(self, model, batch) -> float:
        return synflow_score(model, tuple(batch.inputs.shape[1:]), bn=bool(self.params["bn"]))
