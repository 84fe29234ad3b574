"""Shared pieces of the gradient-based proxies (synflow, snip, grad_norm, grasp, fisher, jacob_cov).

The reference implementation these proxies are compared with is SamsungLabs' ``foresight``
package (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021). foresight scores
only the ``weight`` of ``nn.Conv2d`` and ``nn.Linear`` layers (its ``get_layer_metric_array``);
every proxy here does the same through :func:`scored_layers`. Biases, BatchNorm affine
parameters and other layer types are not scored (they may still shape the forward pass).

Gradients are taken with ``torch.autograd.grad`` w.r.t. exactly the tensors a score needs, so the
model's ``.grad`` fields are left untouched and no gradient is computed for parameters nobody
reads (foresight calls ``loss.backward()``, which also fills BatchNorm gradients; the values of the
scored gradients are the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.proxies.base import Needs, Proxy

#: The layer types foresight scores (exactly these classes and their subclasses).
SCORED_TYPES = (nn.Conv2d, nn.Linear)


def scored_layers(model: nn.Module) -> list[nn.Module]:
    """Conv2d and Linear modules in ``model.modules()`` order, each once."""
    return [m for m in model.modules() if isinstance(m, SCORED_TYPES)]


def logits_of(output) -> torch.Tensor:
    """The logits of a forward pass. Networks that return ``(features, logits)`` (as some NATS
    code does) give their last element, as foresight's synflow handles it."""
    if isinstance(output, (tuple, list)):
        return output[-1]
    return output


def batch_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the batch (foresight's default ``loss_fn=F.cross_entropy``)."""
    return F.cross_entropy(logits_of(model(inputs)), labels)


def _filled(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Unused tensors get a zero gradient (foresight scores them as zeros)."""
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]


def sum_of_products(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], absolute: bool) -> torch.Tensor:
    """``sum_l sum(|a_l * b_l|)`` (absolute) or ``sum_l sum(a_l * b_l)``, one fused kernel per op
    over all layers (``torch._foreach_*``) instead of a Python loop of small reductions."""
    if not a:
        return torch.zeros((), dtype=torch.float64)
    products = torch._foreach_mul(list(a), list(b))
    if absolute:
        per_layer = torch._foreach_norm(products, 1)
    else:
        per_layer = [p.sum() for p in products]
    return torch.stack([t.to(torch.float64) for t in per_layer]).sum()


def sum_of_norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_l ||t_l||_2`` (per-tensor L2 norms, then their sum)."""
    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack([n.to(torch.float64) for n in torch._foreach_norm(list(tensors), 2)]).sum()


def weight_gradients(
    loss: torch.Tensor, weights: Sequence[torch.Tensor], create_graph: bool = False
) -> list[torch.Tensor]:
    """d loss / d w for each weight; zeros for weights the loss does not depend on."""
    grads = torch.autograd.grad(loss, list(weights), allow_unused=True, create_graph=create_graph)
    return _filled(grads, weights)


class requiring_grad:
    """Context: the given tensors require grad inside (frozen weights are scored too, as
    foresight does), their previous flags are restored on exit."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = list(tensors)
        self.flags: list[bool] = []

    def __enter__(self) -> requiring_grad:
        self.flags = [t.requires_grad for t in self.tensors]
        for t in self.tensors:
            t.requires_grad_(True)
        return self

    def __exit__(self, *exc) -> None:
        for t, flag in zip(self.tensors, self.flags):
            t.requires_grad_(flag)


class LossGradients:
    """What one forward and one backward pass of the batch's cross-entropy gives: the scored
    weights with their gradients, and (when asked) every scored layer's output with its weight
    count per output channel and its gradient (None where the output does not reach the loss)."""

    def __init__(
        self,
        weights: list[torch.Tensor],
        weight_grads: list[torch.Tensor],
        outputs: list[tuple[torch.Tensor, int]],
        output_grads: list[torch.Tensor | None],
    ) -> None:
        self.weights, self.weight_grads = weights, weight_grads
        self.outputs, self.output_grads = outputs, output_grads


def loss_gradients(model: nn.Module, batch, weights: bool, outputs: bool) -> LossGradients:
    """With ``weights`` d loss / d w for the scored weights (else no weight gradients: empty
    lists), with ``outputs`` d loss / d a for the scored layers' outputs, from one
    ``torch.autograd.grad`` call."""
    layers = scored_layers(model)
    scored = [layer.weight for layer in layers]
    wanted = scored if weights else []
    records: list[tuple[torch.Tensor, int]] = []

    def keep(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.requires_grad:
            records.append((output, math.prod(module.weight.shape[1:])))

    handles = [layer.register_forward_hook(keep) for layer in layers] if outputs else []
    try:
        with requiring_grad(scored):  # frozen layers are scored too
            loss = batch_loss(model, batch.inputs, batch.labels)
            targets = wanted + [a for a, _ in records]
            grads = torch.autograd.grad(loss, targets, allow_unused=True) if targets else ()
    finally:
        for handle in handles:
            handle.remove()
    return LossGradients(
        [w.detach() for w in wanted], _filled(grads[: len(wanted)], wanted), records, list(grads[len(wanted) :])
    )


def loss_gradient_pass(proxies: Sequence[LossGradientProxy], model: nn.Module, batch) -> list[float]:
    """The scores of several :class:`LossGradientProxy` from one forward and backward pass."""
    gradients = loss_gradients(
        model, batch, weights=any(p.reads_weights for p in proxies), outputs=any(p.reads_outputs for p in proxies)
    )
    return [p.from_gradients(gradients) for p in proxies]


class LossGradientProxy(Proxy):
    """A proxy read from the gradients of the batch's mean cross-entropy (snip, grad_norm,
    fisher): scored together, such proxies share one forward and one backward pass."""

    needs = Needs(inputs=True, labels=True, gradients=True, mode="train")
    reads_weights: ClassVar[bool] = True  # it reads the scored weights and their gradients
    reads_outputs: ClassVar[bool] = False  # it reads the scored layers' outputs and their gradients

    def shared_pass(self):
        return loss_gradient_pass

    def score(self, model: nn.Module, batch) -> float:
        return loss_gradient_pass([self], model, batch)[0]

    def from_gradients(self, gradients: LossGradients) -> float:
        raise NotImplementedError
