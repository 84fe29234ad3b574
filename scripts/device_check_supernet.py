"""The GPU checks of the supernet, as one short script for a lent device machine (docs/supernet.md).

1. The benchmark's own size (C=16, N=5) trains on CUDA for one epoch, stops (as if killed), and
   the same call resumes it for a second; the checkpoint then loads on the CPU.
2. Scores of 50 cells with ``--device cuda`` against the same checkpoint scored on the CPU: the
   held-out accuracies agree within the scorer's tolerance.
3. Timing: seconds per fair step and per scored cell on the GPU.

    python scripts/device_check_supernet.py --data cifar10:../shared/data/cifar10/cifar-10-batches-py --out $OUT

Writes ``device_check.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="cifar10:DIR")
    p.add_argument("--out", required=True, help="folder for the checkpoint and device_check.json")
    p.add_argument("--cells", type=int, default=50)
    args = p.parse_args(argv)

    import torch

    import nas
    from nas.data import load_images, parse_data_arg
    from nas.strategies.supernet import SupernetConfig, TrainConfig, load_checkpoint, train_supernet

    if not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = parse_data_arg(args.data)
    images, labels = load_images(spec.source, str(spec.path), "train")
    config = SupernetConfig(channels=16, cells_per_stage=5)
    training = TrainConfig(epochs=2, seed=0)
    ckpt = out / "full.pt"
    report: dict = {"device": torch.cuda.get_device_name(0)}
    start = time.perf_counter()
    train_supernet(config, training, images, labels, ckpt, device="cuda", stop_after=1)
    first = time.perf_counter() - start
    state = train_supernet(config, training, images, labels, ckpt, device="cuda")  # resumes
    report["epoch_s"] = first
    report["fair_step_s"] = first / (len(images) // training.batch_size)
    report["resumed_to_epoch"] = state.epoch
    report["history"] = state.history
    assert load_checkpoint(ckpt).epoch == 2
    label = f"supernet(checkpoint={ckpt},images=500)"
    scores = {}
    for device in ("cuda", "cpu"):
        start = time.perf_counter()
        table = nas.score(
            "nats-tss",
            label,
            sample=args.cells,
            seed=0,
            data=args.data,
            device=device,
            store=f"sqlite:///{out / f'scores_{device}.db'}",
        )
        scores[device] = table.values_of(table.labels[0])
        report[f"score_ms_per_cell_{device}"] = 1e3 * (time.perf_counter() - start) / args.cells
    diffs = [abs(a - b) for a, b in zip(scores["cuda"], scores["cpu"])]
    report["max_abs_difference_cuda_cpu"] = max(diffs)
    report["agree_within_tolerance"] = max(diffs) <= nas.get_proxy("supernet", checkpoint=str(ckpt)).tolerance
    (out / "device_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=1))
    return 0 if report["agree_within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
