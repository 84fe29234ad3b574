"""``supernet(checkpoint=CKPT)``: a trained supernet as a proxy, usable wherever one is.

``nas score``, ``nas correlate`` and ``nas search`` take it like any proxy; scores go to the same
store under a protocol that holds the checkpoint's digest (its weights and every setting that
made them, not its path), the held-out images' digest and count, the metric and the BatchNorm
policy. The images come from the ``--data cifar10:DIR`` directory (its test split); the
checkpoint must have been trained on that directory's training split.

It is registered through the ``zcnas.proxies`` entry point of this package (the extension pattern
every plugin uses), so ``nas.proxies`` never imports the strategies.
"""

from __future__ import annotations

from typing import Any

import torch

from nas.errors import NasError
from nas.proxies.base import Needs, Proxy
from nas.strategies.supernet.checkpoint import Checkpoint, load_checkpoint
from nas.strategies.supernet.evaluate import BN_POLICIES, METRICS, bn_scale, evaluate_path, images_digest
from nas.strategies.supernet.network import path_of

#: What the well-conditioned-Jacobian rule subtracts from an excluded path's score.
EXCLUDED = 1e3


class SupernetScore(Proxy):
    """Held-out accuracy (or negative loss, or BN scale) of a path with a trained supernet's weights."""

    name = "supernet"
    version = "1"
    higher_is_better = True
    needs = Needs(inputs=True, labels=True, network=False, mode="eval")
    description = "a trained weight-sharing supernet (nas supernet train): held-out accuracy of the path"
    positional = "checkpoint"
    defaults = {
        "checkpoint": None,
        "metric": "accuracy",
        "bn": "batch",
        "images": 1000,
        "calibration_batches": 4,
        "max_condition": None,
    }
    tolerance = 1e-2  # measured: no prediction changed under other ISAs/threads (docs/proxies.md)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not self.params["checkpoint"]:
            raise NasError("proxy supernet needs a checkpoint: supernet(checkpoint=PATH)")
        if self.params["metric"] not in METRICS:
            raise NasError(f"supernet: unknown metric {self.params['metric']!r}; expected one of {', '.join(METRICS)}")
        if self.params["bn"] not in BN_POLICIES:
            raise NasError(f"supernet: unknown bn {self.params['bn']!r}; expected one of {', '.join(BN_POLICIES)}")
        self._checkpoint: Checkpoint | None = None
        self._nets: dict[str, Any] = {}
        self._data: dict[str, Any] = {}
        self._conditions: dict[tuple, float] | None = None  # measured on the CPU, once
        self._digest: str | None = None

    # -- what the scores depend on ---------------------------------------------------------------------
    @property
    def checkpoint(self) -> Checkpoint:
        if self._checkpoint is None:
            self._checkpoint = load_checkpoint(self.params["checkpoint"])
        return self._checkpoint

    def protocol(self) -> dict[str, Any]:
        # asked for every stored score: the weights' digest (wherever the file lies) is hashed once
        if self._digest is None:
            self._digest = self.checkpoint.digest()
        params = dict(sorted(self.params.items()))
        params["checkpoint"] = self._digest
        if params["max_condition"] is None:  # unset: scores from before the option existed stay valid
            del params["max_condition"]
        return {"name": self.name, "version": self.version, "params": params}

    def inputs_protocol(self, inputs) -> dict[str, Any]:
        return {"source": inputs.source, "dataset": inputs.dataset, "split": "test", "digest": self._images(inputs)[3]}

    # -- scoring ---------------------------------------------------------------------------------
    def _images(self, inputs) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], str]:
        """Held-out images and labels, calibration batches (``bn=recalibrate`` only) and the
        held-out images' digest, read once per data directory."""
        key = f"{inputs.source}:{inputs.path}"
        if key not in self._data:
            from nas.data import load_images

            if inputs.source not in ("cifar10", "cifar100"):
                raise NasError(
                    f"proxy supernet evaluates on real images: give {{data}} cifar10:DIR, not {inputs.source}",
                    params=("data",),
                )
            if inputs.dataset != self.checkpoint.data.get("dataset"):
                raise NasError(
                    f"the supernet was trained on {self.checkpoint.data.get('dataset')}, "
                    f"the inputs are {inputs.dataset}"
                )
            test_x, test_y = load_images(inputs.source, str(inputs.path), "test")
            n = int(self.params["images"])
            if not 0 < n <= len(test_x):
                raise NasError(f"supernet: images={n} is out of range (1..{len(test_x)} held-out images)")
            calibration = []
            if self.params["bn"] == "recalibrate":
                train_x, _ = load_images(inputs.source, str(inputs.path), "train")
                batch = int(self.checkpoint.training.get("batch_size", 64))
                pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))
                count = int(self.params["calibration_batches"])
                calibration = [train_x[pick[i * batch : (i + 1) * batch]] for i in range(count)]
            images, labels = test_x[:n].contiguous(), test_y[:n].contiguous()
            self._data[key] = (images, labels, calibration, images_digest(images, labels))
        return self._data[key]

    def score_architecture(self, space, arch, inputs, device: str) -> float:
        if space.name != self.checkpoint.config.space:
            raise NasError(f"the supernet checkpoint is of space {self.checkpoint.config.space}, not {space.name}")
        if device not in self._nets:
            self._nets[device] = self.checkpoint.network(device)
        net = self._nets[device]
        ops = path_of(space.name, arch)
        images, labels, calibration, _ = self._images(inputs)
        penalty = self._conditioning_penalty(net, ops, images, device)
        if self.params["metric"] == "bn_scale":
            return bn_scale(net, ops) - penalty
        accuracy, loss = evaluate_path(
            net,
            ops,
            images.to(device),
            labels.to(device),
            bn=self.params["bn"],
            calibration=[x.to(device) for x in calibration],
        )
        return (accuracy if self.params["metric"] == "accuracy" else -loss) - penalty

    def _conditioning_penalty(self, net, ops: tuple[str, ...], images: torch.Tensor, device: str) -> float:
        """The well-conditioned-Jacobian rule (``max_condition=K``): a path using any trained op
        whose Jacobian condition number (non-null part, :mod:`.spectrum`, on 16 held-out images)
        exceeds ``K`` is ranked below every admitted path: its score is lowered by
        :data:`EXCLUDED` (larger than any score's range), keeping its order among the excluded."""
        limit = self.params["max_condition"]
        if limit is None:
            return 0.0
        if self.checkpoint.config.space != "nats-tss":
            raise NasError("supernet: max_condition is defined for nats-tss (candidate ops per edge)")
        if self._conditions is None:
            from nas.strategies.supernet.spectrum import spectra

            rows = spectra(self.checkpoint.network(), images[:16].cpu(), probes=1)
            self._conditions = {(r["cell"], r["edge"], r["op"]): r["cond"] for r in rows}
        conditions = self._conditions
        worst = max(
            (conditions[i, e, op] for i, _ in net.super_cells() for e, op in enumerate(ops) if op != "none"),
            default=0.0,
        )
        return EXCLUDED if worst > float(limit) else 0.0
