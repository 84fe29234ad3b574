"""NEAR's two engines: the faithful one (one sample per forward pass, the protocol as written)
and the fast one (batches, per-sample BatchNorm, the same matrices)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nas.proxies.near.capture import (
    _batch_rows,
    _BatchNormMode,
    _block_start,
    _first_tensor,
    _Record,
    _sample_rows,
    _Samples,
)


# -- the faithful engine: one sample per forward pass ---------------------------------------------
def _collect_per_sample(model: nn.Module, records: list[_Record], samples: _Samples, rng: Any) -> None:
    handles: dict[int, Any] = {}

    def make_hook(i: int, rec: _Record) -> Callable:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            out = _first_tensor(output)
            if out is None or rec.done:
                return
            rec.called = True
            rows = _batch_rows(out.detach()).clone()
            rec.pieces.append(rows)
            rec.rows += rows.shape[0]
            if rec.rows >= rows.shape[1]:
                start = _block_start(rng, rec.rows, out.shape[-1])
                rec.matrix = torch.cat(rec.pieces)[start : start + rows.shape[1]]
                rec.pieces = []
                rec.done = True
                handles.pop(i).remove()

        return hook

    try:
        for i, rec in enumerate(records):
            handles[i] = rec.module.register_forward_hook(make_hook(i, rec))
        while True:
            x = samples.take(1)
            if x is None:
                break
            model(x)
            if all(rec.done for rec in records if rec.called):
                break
    finally:
        for handle in handles.values():
            handle.remove()


# -- the fast engine: batches of samples, per-sample BatchNorm ------------------------------------
def _recorder(rec: _Record, position: list[int]) -> Callable:
    """A forward hook that only copies what the cutting after the pass needs: nothing once the
    module is complete, the first sample when it completes the module, every sample otherwise.
    (Cutting and drawing per call in Python cost more than the forward pass of a small network.)"""
    seen = [rec.rows]  # rows this module has, counting the first sample of this pass's calls

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        out = output if type(output) is Tensor and output.dim() >= 2 else _first_tensor(output)
        if out is None or out.numel() == 0:
            return
        pos = position[0]
        position[0] += 1
        cols = out.shape[1]
        if seen[0] >= cols:  # complete on the first sample of an earlier call
            return
        seen[0] += out[0].numel() // cols
        rec.calls.append((pos, (out[:1] if seen[0] >= cols else out).clone()))  # inference mode: no detach

    return hook


def _collect_batched(
    model: nn.Module,
    records: list[_Record],
    samples: _Samples,
    rng: Any,
    first_batch: int,
    norms: Sequence[nn.Module],
    batchnorm: str,
) -> None:
    offset = 0  # samples already fed
    count = max(1, first_batch)
    todo = records
    while True:
        x = samples.take(count)
        if x is None:
            break
        count = len(x)
        position = [0]
        handles = []
        try:
            for rec in todo:
                rec.calls = []
                handles.append(rec.module.register_forward_hook(_recorder(rec, position)))
            if x.dim() == 4:  # channels-last: much faster convolutions and pooling on CPU
                x = x.contiguous(memory_format=torch.channels_last)
            # inference mode: no autograd bookkeeping per op (the cutting below runs outside it,
            # so the matrices it returns are ordinary tensors)
            with torch.inference_mode(), _BatchNormMode(norms, batchnorm, per_sample=count > 1):
                model(x)
        finally:
            for handle in handles:
                handle.remove()

        # Where each module completes (sample, call), then the block starts drawn in the per-sample
        # protocol's order: by the sample at which a module completes, then by call order.
        events = []
        for rec in todo:
            if not rec.calls:
                continue
            rec.called = True
            cols = rec.calls[0][1].shape[1]
            per_call = [o[0].numel() // cols for _, o in rec.calls]
            rec.rows_per_sample, rec.cols = sum(per_call), cols
            need = cols - rec.rows
            if rec.rows_per_sample > 0 and need <= rec.rows_per_sample * count:
                sample = max(0, -(-need // rec.rows_per_sample) - 1)
                reached = rec.rows + sample * rec.rows_per_sample
                for j, rows in enumerate(per_call):  # noqa: B007 (j is read after the loop)
                    reached += rows
                    if reached >= cols:
                        break
                events.append((offset + sample, rec.calls[j][0], rec, sample, j, reached))
            else:
                rec.pieces.append(_interleave(rec.calls, count, count - 1, len(rec.calls) - 1))
                rec.rows += rec.rows_per_sample * count
                rec.calls = []
        events.sort(key=lambda e: (e[0], e[1]))
        sizes = [rec.calls[j][1].shape[-1] for _, _, rec, _, j, _ in events]
        starts = _block_starts(rng, [reached for *_, reached in events], sizes)
        simple: dict[tuple[int, ...], list[tuple[_Record, int]]] = {}
        for (_, _, rec, sample, j, _), start in zip(events, starts):
            if sample == 0 and j == 0 and not rec.pieces:  # one call's first sample: cut below
                simple.setdefault(tuple(rec.calls[0][1].shape), []).append((rec, start))
                continue
            rows = torch.cat([*rec.pieces, _interleave(rec.calls, count, sample, j)])
            rec.matrix = rows[start : start + rec.cols]
            rec.pieces, rec.calls, rec.done = [], [], True
        for members in simple.values():
            _cut_blocks(members)

        offset += count
        todo = [rec for rec in records if rec.called and not rec.done and rec.rows_per_sample > 0]
        if not todo:
            break
        count = max(-(-(rec.cols - rec.rows) // rec.rows_per_sample) for rec in todo)


def _block_starts(rng: Any, rows: list[int], sizes: list[int]) -> list[int]:
    """:func:`_block_start` for several modules in order, with one generator call (numpy's
    ``randint`` with an array of bounds draws exactly what the scalar calls draw in turn)."""
    bounds = [r // s - 1 for r, s in zip(rows, sizes)]
    positive = [b for b in bounds if b > 0]
    if not positive:
        return [0] * len(bounds)
    if isinstance(rng, np.random.RandomState) or rng is np.random:
        draws = iter(np.asarray(rng.randint(0, np.asarray(positive))).tolist())
    else:
        draws = iter([int(rng.randint(0, b)) for b in positive])
    return [next(draws) * s if b > 0 else 0 for b, s in zip(bounds, sizes)]


def _cut_blocks(members: list[tuple[_Record, int]]) -> None:
    """Each module's rows ``start:start + cols`` of its first sample, for modules whose outputs
    have one shape: one stack, one layout and one gather for all of them."""
    first = torch.cat([rec.calls[0][1] for rec, _ in members])  # (G, C, *positions)
    cols = first.shape[1]
    total = first[0].numel() // cols
    starts = torch.tensor([start for _, start in members]).unsqueeze(1)
    index = (starts + torch.arange(cols)).clamp_(max=total - 1)  # (G, cols) row numbers
    group = torch.arange(len(members)).unsqueeze(1)
    if first.dim() == 4:  # row = w * H + h: pick (h, w) from the output itself, no laid-out copy
        height = first.shape[2]
        blocks = first.permute(0, 3, 2, 1)[group, index // height, index % height]
    else:
        blocks = _batch_rows(first).view(len(members), total, cols)[group, index]  # (G, cols, C)
    for (rec, start), block in zip(members, blocks.unbind(0)):
        rec.matrix = block if start + cols <= total else block[: total - start]
        rec.calls, rec.done = [], True


def _interleave(calls: list[tuple[int, Tensor]], count: int, last_sample: int, last_call: int) -> Tensor:
    """Rows of samples ``0..last_sample`` (all calls of each, up to ``last_call`` of the last one),
    in the per-sample protocol's order: sample after sample, calls in order."""
    if len(calls) == 1:
        return _batch_rows(calls[0][1][: last_sample + 1])
    parts = []
    for s in range(last_sample + 1):
        for j, (_, out) in enumerate(calls):
            if s == last_sample and j > last_call:
                break
            parts.append(_sample_rows(out[s]))
    return torch.cat(parts)
