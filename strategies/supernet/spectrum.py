"""How close each candidate op is to dynamical isometry: its input-output Jacobian spectrum.

For each candidate op on each edge of each cell, on real inputs (the feature map entering the
cell when real images run through a fixed reference path, every edge ``nor_conv_3x3``):

- ``msv``: the mean squared singular value of the op's Jacobian (Hutchinson: ``E|Jv|^2 / n`` over
  Gaussian probes ``v``); 1 is the mean-field condition ``chi_1 = 1``;
- ``spread``: the relative spread of the squared singular values, ``sd(s^2) / mean(s^2)``, from
  ``E|J^T J v|^2 / n = mean(s^4)``; 0 is dynamical isometry (all singular values equal);
- ``cond``: the condition number ``s_max / s_min`` over the non-null singular values, and
  ``null``: the fraction of null ones, from the exact Jacobian (SVD) of one sample's crop of the
  input (side ``crop``, at most 256 dimensions). A ReLU op has a null space (the units ReLU
  shuts), so its full condition number is infinite; ``cond`` describes the rest.

BatchNorm is taken with the statistics of the input batch, frozen (the large-batch mean-field
reading): the Jacobian is then per sample. Beside the measurements, the mean-field prediction
(:func:`theory`): ``q*``, the op's output-variance fixed point, and ``chi_1`` at the measured
input variance ``q_in``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from nas.errors import NasError
from nas.strategies.supernet.checkpoint import Checkpoint
from nas.strategies.supernet.meanfield import normalised_chi
from nas.strategies.supernet.network import CandidateOp, SuperCell, Supernet, SupernetConfig

REFERENCE_PATH = ("nor_conv_3x3",) * 6


def theory(op: str, q_in: float, bn_after: bool, scale: float = 1.0) -> dict[str, Any]:
    """Mean-field ``q*`` and ``chi_1`` of a candidate op for inputs of variance ``q_in``.

    Ops ending in a BatchNorm (the convolutions; skip and pooling with ``bn_every_op``) hand on
    unit variance times their output ``scale`` squared (``q*``); their ``chi_1`` is ``1 / q_in``
    for the linear ones and ``scale^2 pi / ((pi - 1) q_in)`` for ReLU-conv-BN
    (:func:`.meanfield.normalised_chi`), 1 at ``q_in = 1`` with the isometric scale. Without a BatchNorm,
    skip passes any variance on (``chi_1 = 1``, a line of fixed points) and 3x3 average pooling
    of uncorrelated inputs shrinks it 9-fold (``chi_1 = 1/9``, ``q* = 0``; real images are
    spatially correlated, so it shrinks them less). ``none`` has ``chi_1 = 0``.
    """
    if op == "none":
        return {"q_star": 0.0, "chi_1": 0.0}
    if op.startswith("nor_conv"):
        scale2 = scale * scale
        return {"q_star": scale2, "chi_1": scale2 * normalised_chi("relu", q_in)}
    if bn_after:
        return {"q_star": 1.0, "chi_1": 1.0 / q_in}
    if op == "skip_connect":
        return {"q_star": q_in, "chi_1": 1.0}
    return {"q_star": 0.0, "chi_1": 1.0 / 9.0}


def _frozen_bn(op: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``op`` whose BatchNorms hold the batch statistics of ``x``, in eval mode."""
    frozen = copy.deepcopy(op)
    bns = [m for m in frozen.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    frozen.train()
    with torch.no_grad():
        frozen(x)
    return frozen.eval()


def measure(op: nn.Module, x: torch.Tensor, probes: int = 8, crop: int = 8, seed: int = 0) -> dict[str, float]:
    """``msv``, ``spread``, ``cond`` and ``null`` of one op's Jacobian at the inputs ``x``."""
    from torch.func import jacrev, jvp, vjp

    frozen = _frozen_bn(op, x)
    for p in frozen.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    n = x[0].numel()
    s2 = s4 = 0.0
    for _ in range(probes):
        v = torch.randn(x.shape, generator=gen)
        jv = jvp(frozen, (x,), (v,))[1]
        pullback = vjp(frozen, x)[1]
        jtjv = pullback(jv)[0]
        s2 += float(jv.pow(2).sum()) / (n * len(x) * probes)
        s4 += float(jtjv.pow(2).sum()) / (n * len(x) * probes)
    spread = math.sqrt(max(s4 - s2 * s2, 0.0)) / s2 if s2 > 0 else math.nan
    side = min(crop, x.shape[-1])
    patch = x[:1, :, :side, :side].clone()
    jac = jacrev(frozen)(patch).reshape(patch.numel(), patch.numel())
    sv = torch.linalg.eigvalsh(jac.double() @ jac.double().T).clamp_min(0).sqrt().flip(0)  # faster than an SVD
    live = sv[sv > 1e-6 * sv.max()] if float(sv.max()) > 0 else sv[:0]
    return {
        "msv": s2,
        "spread": spread,
        "cond": float(live.max() / live.min()) if len(live) else math.nan,
        "null": 1.0 - len(live) / len(sv),
    }


@torch.no_grad()
def cell_inputs(net: Supernet, images: torch.Tensor) -> dict[int, torch.Tensor]:
    """The feature map entering each searchable cell along :data:`REFERENCE_PATH`."""
    net.train()
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        cell.register_forward_pre_hook(lambda _m, args, i=i: captured.__setitem__(i, args[0].detach().clone()))
        for i, cell in net.super_cells()
    ]
    try:
        net(images, REFERENCE_PATH)
    finally:
        for h in hooks:
            h.remove()
    return captured


def spectra(
    net: Supernet, images: torch.Tensor, probes: int = 8, ops: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per (cell, edge, op): measurements and the mean-field prediction. Edges from node
    0 see the cell's input; the others see it too (the reference inputs), which keeps every op's
    measurement on the same real features."""
    inputs = cell_inputs(net, images)
    rows = []
    for i, _cell, e, name, op in _candidates(net, ops):
        x = inputs[i]
        q_in = float(x.pow(2).mean())
        row: dict[str, Any] = {"cell": i, "edge": e, "op": name, "q_in": q_in}
        row.update(theory(name, q_in, op.bn is not None, float(op.scale)))
        if name == "none":
            row.update(msv=0.0, spread=math.nan, cond=math.nan, null=1.0)
        else:
            crop = max(2, min(8, int(math.sqrt(256 / x.shape[1]))))  # an exact spectrum of at most 256 dims
            row.update(measure(op, x, probes=probes, crop=crop))
        rows.append(row)
    return rows


def _candidates(net: Supernet, ops: Sequence[str] | None):
    for i, cell in net.super_cells():
        assert isinstance(cell, SuperCell)
        for e, edge in enumerate(cell.edges):
            for name, op in cast(nn.ModuleDict, edge).items():
                if ops is None or name in ops:
                    yield i, cell, e, name, cast(CandidateOp, op)


def inspect_supernet(
    checkpoint: Checkpoint | None,
    images: torch.Tensor,
    *,
    config: SupernetConfig | None = None,
    training: dict[str, Any] | None = None,
    probes: int = 8,
) -> dict[str, Any]:
    """Spectra of every candidate op at initialisation and, for a checkpoint, after its training.

    The initial weights are rebuilt from the checkpoint's settings (its init and seed give them
    exactly); without a checkpoint, ``config`` and ``training`` (a :class:`.train.TrainConfig`
    as a dict) describe the untrained supernet. Rows hold ``*_init`` and ``*_trained`` columns."""
    from nas.strategies.supernet.train import TrainConfig, fresh_network

    if checkpoint is not None:
        config, training = checkpoint.config, checkpoint.training
    if config is None or training is None:
        raise NasError("inspect needs a checkpoint, or a supernet config and training settings")
    if config.space != "nats-tss":
        raise NasError(f"inspect compares candidate ops per edge: defined for nats-tss, not {config.space}")
    stages: dict[str, Any] = {"init": fresh_network(config, TrainConfig(**training))}
    if checkpoint is not None and checkpoint.epoch:
        stages["trained"] = checkpoint.network()
    rows: dict[tuple, dict[str, Any]] = {}
    for stage, net in stages.items():
        for row in spectra(net, images, probes=probes):
            key = (row["cell"], row["edge"], row["op"])
            merged = rows.setdefault(key, {"cell": row["cell"], "edge": row["edge"], "op": row["op"]})
            for name in ("q_in", "q_star", "chi_1", "msv", "spread", "cond", "null"):
                merged[f"{name}_{stage}"] = row[name]
    return {
        "config": config.to_dict(),
        "training": training,
        "epoch": checkpoint.epoch if checkpoint is not None else 0,
        "images": int(len(images)),
        "probes": probes,
        "rows": list(rows.values()),
    }


def summarise(rows: list[dict[str, Any]], stage: str) -> dict[str, dict[str, float]]:
    """Per op: the mean over edges and cells of each measurement at ``stage`` (``init``, ``trained``)."""
    out: dict[str, dict[str, float]] = {}
    for op in dict.fromkeys(r["op"] for r in rows):
        mine = [r for r in rows if r["op"] == op and f"msv_{stage}" in r]
        if not mine:
            continue
        out[op] = {
            name: _nanmean([r[f"{name}_{stage}"] for r in mine]) for name in ("chi_1", "msv", "spread", "cond", "null")
        }
    return out


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
