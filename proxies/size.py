"""Size baselines: the number of trainable parameters and the FLOPs of one forward pass.

Both are strong baselines on NAS benchmarks (Kendall tau ~0.58-0.62 on NATS-TSS CIFAR-10), so
every other proxy should be read against them.
"""

from __future__ import annotations

from nas.proxies.base import Needs, register_proxy


@register_proxy("params", needs=Needs(inputs=False, mode="eval"))
def params(model, batch) -> float:
    """Number of trainable parameters."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


@register_proxy("flops", needs=Needs(inputs=True, mode="eval"))
def flops(model, batch) -> float:
    """Multiply-accumulates of one forward pass on one input of the batch's shape."""
    from nas.searchspaces.flops import count_flops

    return float(count_flops(model, tuple(batch.inputs.shape[2:]), in_channels=batch.inputs.shape[1]))
