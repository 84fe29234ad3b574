"""Supernet checkpoints: one file with the weights, everything that made them, and the state to
resume from. Read with ``torch.load(weights_only=True)``: a checkpoint is data (tensors, strings,
numbers), so loading an untrusted file runs no code. Settings and history are JSON strings.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.errors import NasError
from nas.strategies.supernet.network import SupernetConfig, build_supernet

FORMAT = "zcnas-supernet"
VERSION = 1


@dataclass
class Checkpoint:
    """A supernet after ``epoch`` completed epochs of ``training`` on ``data``."""

    config: SupernetConfig
    training: dict[str, Any]
    data: dict[str, Any]
    epoch: int
    history: list[dict[str, Any]]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)

    def network(self, device: str = "cpu") -> Any:
        """The supernet with these weights (built on the CPU, then moved)."""
        net = build_supernet(self.config)
        missing, unexpected = _key_differences(net.state_dict(), self.model_state)
        if missing or unexpected:
            raise NasError(
                f"the checkpoint's weights do not fit this version's supernet ({len(missing)} missing, "
                f"{len(unexpected)} unexpected tensors, e.g. {(missing or unexpected)[0]}); retrain it"
            )
        net.load_state_dict(self.model_state)
        return net if device == "cpu" else net.to(device)

    def digest(self) -> str:
        """What identifies these weights: settings, data, epochs and every tensor's bytes (not
        the file's bytes nor the optimizer's state); it goes into the protocol of every score."""
        h = hashlib.sha256()
        h.update(json.dumps([self.config.to_dict(), self.training, self.data, self.epoch], sort_keys=True).encode())
        for key in sorted(self.model_state):
            h.update(key.encode())
            h.update(self.model_state[key].detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        """Write atomically (a killed run leaves the previous checkpoint whole)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "format": FORMAT,
            "version": VERSION,
            "config": json.dumps(self.config.to_dict()),
            "training": json.dumps(self.training),
            "data": json.dumps(self.data),
            "epoch": self.epoch,
            "history": json.dumps(self.history),
            "model": {k: v.detach().cpu() for k, v in self.model_state.items()},
            "optimizer": self.optimizer_state,
            "rng": self.rng,
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)


def _key_differences(expected: dict[str, Any], found: dict[str, Any]) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(found)), sorted(set(found) - set(expected))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint; anything else (a missing, corrupt or foreign file) is a one-line error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NasError(f"supernet checkpoint {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds on a damaged or foreign file
        raise NasError(f"{str(path)!r} is not a readable supernet checkpoint ({type(err).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise NasError(f"{str(path)!r} is not a zcnas supernet checkpoint")
    if blob.get("version") != VERSION:
        raise NasError(f"{str(path)!r} is a supernet checkpoint of format version {blob.get('version')}, not {VERSION}")
    try:
        config = json.loads(blob["config"])
        checkpoint = Checkpoint(
            config=SupernetConfig(**config),
            training=json.loads(blob["training"]),
            data=json.loads(blob["data"]),
            epoch=int(blob["epoch"]),
            history=json.loads(blob["history"]),
            model_state=dict(blob["model"]),
            optimizer_state=blob.get("optimizer") or {},
            rng=blob.get("rng") or {},
        )
    except NasError as err:
        raise NasError(f"{str(path)!r}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise NasError(f"{str(path)!r} is a damaged supernet checkpoint ({type(err).__name__}: {err})") from None
    return checkpoint
