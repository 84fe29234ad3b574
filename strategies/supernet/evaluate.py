"""Scoring an architecture with a trained supernet's weights.

An architecture's score is its path's accuracy (or negative cross-entropy) on held-out images
(the dataset's *test* split, never used in training) with the inherited weights. BatchNorm
statistics must belong to the path: the running statistics of a supernet mix every path it
trained, so they are never used. Two policies:

- ``bn="batch"`` (default; NAS-Bench-201's one-shot convention): each evaluation batch is
  normalised by its own statistics (``eval_batch`` images per batch);
- ``bn="recalibrate"``: the path's statistics are re-estimated on ``calibration_batches``
  fixed batches of training images, then the held-out images are evaluated in eval mode.

``metric="bn_scale"`` scores by the trained BatchNorm scales instead (BN-NAS): the sum over the
path's edges of the mean ``|gamma|`` of each op's last BatchNorm (``none``: 0); it needs a
supernet with affine BatchNorm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError
from nas.strategies.supernet.network import Supernet

METRICS = ("accuracy", "loss", "bn_scale")
BN_POLICIES = ("batch", "recalibrate")


def _path_bns(net: nn.Module, ops: Sequence) -> list[nn.BatchNorm2d]:
    shared = [m for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d) and ".edges." not in f".{name}"]
    if not isinstance(net, Supernet):  # SSS: every BatchNorm is on every path
        return shared
    own = [m for op in net.path_modules(ops) for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
    return shared + own


@torch.no_grad()
def evaluate_path(
    net: nn.Module,
    ops: Sequence,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    bn: str = "batch",
    calibration: Sequence[torch.Tensor] = (),
    eval_batch: int = 256,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of one path on ``images``, under a BatchNorm policy."""
    if bn not in BN_POLICIES:
        raise NasError(f"unknown bn policy {bn!r}; expected one of {', '.join(BN_POLICIES)}")
    if bn == "recalibrate":
        bns = _path_bns(net, ops)
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        net.train()
        for x in calibration:
            net(x, ops)
        for m, momentum in zip(bns, saved):
            m.momentum = momentum
        net.eval()
    else:
        net.train()
    correct, loss = 0, 0.0
    for start in range(0, len(images), eval_batch):
        x, y = images[start : start + eval_batch], labels[start : start + eval_batch]
        logits = net(x, ops)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    net.train()
    return correct / len(images), loss / len(images)


def bn_scale(net: Supernet, ops: Sequence[str]) -> float:
    """BN-NAS's score of a path: the sum of its ops' mean |gamma| (last BatchNorm of each op)."""
    if not isinstance(net, Supernet):
        raise NasError("metric bn_scale is defined for nats-tss (a BatchNorm per candidate op)")
    if not net.config.bn_affine:
        raise NasError("metric bn_scale needs a supernet trained with affine BatchNorm (bn_affine)")
    total = 0.0
    for op in net.path_modules(ops):
        bns = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
        if bns:
            total += float(bns[-1].weight.detach().abs().mean())
    return total


def images_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """What identifies a set of images and labels (their content, not where they lie)."""
    h = hashlib.sha256(images.contiguous().numpy().tobytes())
    h.update(labels.numpy().astype("int64").tobytes())
    return h.hexdigest()[:16]


__all__ = ["evaluate_path", "bn_scale", "images_digest", "METRICS", "BN_POLICIES"]
