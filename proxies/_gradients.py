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

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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


def weight_gradients(loss: torch.Tensor, weights: Sequence[torch.Tensor],
                     create_graph: bool = False) -> list[torch.Tensor]:
    """d loss / d w for each weight; zeros for weights the loss does not depend on."""
    grads = torch.autograd.grad(loss, list(weights), allow_unused=True, create_graph=create_graph)
    return _filled(grads, weights)


class requiring_grad:
    """Context: the given tensors require grad inside (frozen weights are scored too, as
    foresight does), their previous flags are restored on exit."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = list(tensors)
        self.flags: list[bool] = []

    def __enter__(self) -> "requiring_grad":
        self.flags = [t.requires_grad for t in self.tensors]
        for t in self.tensors:
            t.requires_grad_(True)
        return self

    def __exit__(self, *exc) -> None:
        for t, flag in zip(self.tensors, self.flags):
            t.requires_grad_(flag)
