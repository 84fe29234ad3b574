"""Training the supernet: resumable, seeded, every setting recorded.

One epoch is one pass over the training images in batches (the last, incomplete batch dropped).
A ``fair`` step runs the 5 paths of :func:`.sampling.step_paths` on the batch and makes one
update from their summed gradients (every candidate gets exactly one gradient per step; the shared
stem, reduction blocks and head get five); a ``uniform`` step runs one path. Budgets are compared
in *path passes* (forward+backward of one path on one batch): a fair epoch costs 5 times a
uniform one and shows each op the whole training set once; a uniform epoch shows it a fifth.

The checkpoint is written after every epoch (atomically), with the optimizer and both random
states, so rerunning the same command goes on from the last completed epoch and ends with the
same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import NasError
from nas.strategies.supernet.checkpoint import Checkpoint, load_checkpoint
from nas.strategies.supernet.evaluate import images_digest
from nas.strategies.supernet.init import INITS, initialise
from nas.strategies.supernet.network import SupernetConfig, build_supernet
from nas.strategies.supernet.sampling import SAMPLINGS, paths_per_step, step_paths

log = logging.getLogger("nas.supernet")

TRAIN_ONLY = ("all", "bn")


@dataclass(frozen=True)
class TrainConfig:
    """How the supernet is trained; every field changes the weights (all are in the checkpoint).

    ``train_only="bn"`` freezes every convolution at its initialisation and trains only the
    BatchNorm scales and shifts and the classifier (the frozen-weight reading of DI-NAS after
    BN-NAS; it needs ``bn_affine``). SGD with Nesterov momentum and a per-step cosine schedule."""

    init: str = "isometric"
    sampling: str = "fair"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True  # random crop (padding 4) and horizontal flip
    train_only: str = "all"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise NasError(f"unknown init {self.init!r}; expected one of {', '.join(INITS)}")
        if self.sampling not in SAMPLINGS:
            raise NasError(f"unknown sampling {self.sampling!r}; expected one of {', '.join(SAMPLINGS)}")
        if self.train_only not in TRAIN_ONLY:
            raise NasError(f"unknown train_only {self.train_only!r}; expected one of {', '.join(TRAIN_ONLY)}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise NasError("epochs and batch_size must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_identity(dataset: str, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """What identifies the training images (their content, not where they lie)."""
    return {"dataset": dataset, "split": "train", "images": int(len(images)), "digest": images_digest(images, labels)}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the 4-pixel zero-padded images and random horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def _optimizer(net: nn.Module, training: TrainConfig) -> torch.optim.Optimizer:
    if training.train_only == "bn":
        if not net.config.bn_affine:  # type: ignore[union-attr]
            raise NasError("train_only='bn' trains the BatchNorm scales: the supernet needs bn_affine=True")
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    return torch.optim.SGD(
        params, lr=training.lr, momentum=training.momentum, weight_decay=training.weight_decay, nesterov=True
    )


def fresh_network(config: SupernetConfig, training: TrainConfig) -> nn.Module:
    """The supernet at initialisation: the same weights for the same settings, everywhere."""
    torch.manual_seed(training.seed)  # the classifier's default initialisation
    net = build_supernet(config)
    initialise(net, training.init, training.seed)
    return net


def _fresh(config: SupernetConfig, training: TrainConfig, data: dict[str, Any]) -> Checkpoint:
    return Checkpoint(config, training.to_dict(), data, 0, [], fresh_network(config, training).state_dict())


def _check_same(found: Checkpoint, config: SupernetConfig, training: TrainConfig, data: dict[str, Any], out: Path):
    for what, mine, theirs in (
        ("supernet", config.to_dict(), found.config.to_dict()),
        ("training", training.to_dict(), found.training),
        ("data", data, found.data),
    ):
        if mine != theirs:
            diff = ", ".join(f"{k}={theirs.get(k)!r}" for k in mine if mine.get(k) != theirs.get(k))
            raise NasError(
                f"{str(out)!r} holds a supernet trained with other {what} settings ({diff}); "
                "rerun with those to resume it, or write to another {out}",
                params=("out",),
            )


def train_supernet(
    config: SupernetConfig,
    training: TrainConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    out: str | Path,
    *,
    dataset: str = "cifar10",
    device: str = "cpu",
    progress: bool = False,
    stop_after: int | None = None,
    snapshot_every: int = 0,
    on_epoch: Callable[[Checkpoint], None] | None = None,
) -> Checkpoint:
    """Train (or resume training) a supernet on ``images``/``labels`` and return the checkpoint
    written to ``out`` after the last epoch. ``stop_after`` ends this call after that many
    completed epochs in all (a later call goes on); ``snapshot_every`` keeps a copy of the
    checkpoint every that many epochs (``out`` + ``.epochN``) for budget curves."""
    out = Path(out)
    data = data_identity(dataset, images, labels)
    if out.exists():
        state = load_checkpoint(out)
        _check_same(state, config, training, data, out)
        if state.epoch:
            log.info("resuming %s after epoch %d of %d", out, state.epoch, training.epochs)
    else:
        state = _fresh(config, training, data)
    net = state.network()
    optimizer = _optimizer(net, training)
    if state.optimizer_state:
        optimizer.load_state_dict(state.optimizer_state)
    net = net if device == "cpu" else net.to(device)
    if device != "cpu" and state.optimizer_state:  # momentum buffers follow their parameters
        for buffer in optimizer.state.values():
            for k, v in buffer.items():
                if torch.is_tensor(v):
                    buffer[k] = v.to(device)
    paths_rng = np.random.default_rng(training.seed)
    data_rng = torch.Generator().manual_seed(training.seed)
    if state.rng:
        paths_rng.bit_generator.state = json.loads(state.rng["paths"])
        data_rng.set_state(state.rng["data"])
    steps = len(images) // training.batch_size
    if steps < 1:
        raise NasError(f"{len(images)} training images are fewer than one batch of {training.batch_size}")
    total_steps = steps * training.epochs
    last = training.epochs if stop_after is None else min(training.epochs, stop_after)
    per_step = paths_per_step(training.sampling, config.space)
    net.train()
    for epoch in range(state.epoch, last):
        started = time.perf_counter()
        order = torch.randperm(len(images), generator=data_rng)
        losses, correct, seen = 0.0, 0, 0
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{training.epochs}", unit="step", leave=False)
        for step in range(steps):
            pick = order[step * training.batch_size : (step + 1) * training.batch_size]
            x, y = images[pick], labels[pick]
            if training.augment:
                x = augment(x, data_rng)
            x, y = x.to(device), y.to(device)
            t = epoch * steps + step
            for group in optimizer.param_groups:
                group["lr"] = training.lr * 0.5 * (1.0 + math.cos(math.pi * t / total_steps))
            optimizer.zero_grad(set_to_none=True)
            for path in step_paths(training.sampling, paths_rng, config.space):
                logits = net(x, path)
                loss = F.cross_entropy(logits, y)
                loss.backward()
                losses += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
            optimizer.step()
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{losses / seen:.3f}", acc=f"{correct / seen:.3f}")
        if bar is not None:
            bar.close()
        passes = (epoch + 1) * steps * per_step
        state.history.append(
            {
                "epoch": epoch + 1,
                "loss": losses / seen,
                "accuracy": correct / seen,
                "seconds": time.perf_counter() - started,
                "path_passes": passes,
                "images_per_op": passes * training.batch_size // paths_per_step("fair", config.space),
            }
        )
        log.info("epoch %d/%d: loss %.4f, accuracy %.4f", epoch + 1, training.epochs, losses / seen, correct / seen)
        state = Checkpoint(
            config,
            training.to_dict(),
            data,
            epoch + 1,
            state.history,
            {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            _cpu(optimizer.state_dict()),
            {"paths": json.dumps(paths_rng.bit_generator.state), "data": data_rng.get_state()},
        )
        state.save(out)
        if snapshot_every and (epoch + 1) % snapshot_every == 0:
            state.save(out.with_name(f"{out.name}.epoch{epoch + 1}"))
        if on_epoch is not None:
            on_epoch(state)
    return state


def _cpu(obj: Any) -> Any:
    """An optimizer state with its tensors on the CPU (so a checkpoint loads anywhere)."""
    if torch.is_tensor(obj):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
