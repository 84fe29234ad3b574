"""``nas supernet train|inspect``: the weight-sharing supernet (docs/supernet.md).

A trained supernet scores architectures as a proxy: ``--proxy 'supernet(checkpoint=CKPT)'`` in
``nas score``, ``nas correlate`` and ``nas search``.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from nas.cli.options import add_device, print_json

EXAMPLES = (
    "examples:\n"
    "  nas supernet train --space nats-tss --data cifar10:DIR --epochs 8 --out fair.pt\n"
    "  nas supernet train --space nats-tss --init kaiming --sampling uniform --data cifar10:DIR \\\n"
    "      --epochs 40 --out spos.pt\n"
    "  nas supernet inspect fair.pt --data cifar10:DIR\n"
    "  nas supernet inspect --space nats-tss --init isometric --data cifar10:DIR   # untrained\n"
    "  nas correlate --space nats-tss --proxy 'near,supernet(checkpoint=fair.pt)' --sample 500 --data cifar10:DIR ..."
)
#: (channels, cells per stage): the CPU-sized default, and the benchmark's own size where a GPU trains it.
SIZES = {"nats-tss": ((8, 1), (16, 5)), "nats-sss": ((16, 1), (64, 1))}


def _add_shape(p: argparse.ArgumentParser) -> None:
    from nas.strategies.supernet.init import INITS
    from nas.strategies.supernet.sampling import SAMPLINGS

    p.add_argument("--space", required=True, help="the search space: nats-tss or nats-sss")
    p.add_argument("--init", choices=INITS, default="isometric", help="weight initialisation (default isometric)")
    p.add_argument("--sampling", choices=SAMPLINGS, default="fair", help="paths per step (default fair)")
    p.add_argument(
        "--channels",
        type=int,
        help="tss: width of the first stage (default 8 on the CPU, the benchmark's 16 on CUDA); "
        "sss: the width that stands for 64 (default 16 on the CPU, 64 on CUDA)",
    )
    p.add_argument("--cells", type=int, help="searchable cells per stage (default 1 on the CPU, 5 on CUDA)")
    p.add_argument(
        "--no-bn-every-op", dest="bn_every_op", action="store_false", help="no BatchNorm after skip and pooling"
    )
    p.add_argument("--bn-affine", action="store_true", help="trainable BatchNorm scales and shifts")
    p.add_argument("--train-only", choices=("all", "bn"), default="all", help="bn: freeze the convolutions")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the data order and the paths")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "supernet",
        help="train and inspect a weight-sharing supernet (an evaluator: supernet(checkpoint=...))",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = p.add_subparsers(dest="supernet_command", metavar="COMMAND", required=True)

    t = inner.add_parser(
        "train",
        help="train a supernet (rerun the same command to resume)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_shape(t)
    t.add_argument("--data", required=True, help="training images: cifar10:DIR or cifar100:DIR (its training split)")
    t.add_argument("--epochs", type=int, required=True, help="passes over the training images")
    t.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    t.add_argument("--lr", type=float, default=0.05, help="initial learning rate, cosine to 0 (default 0.05)")
    t.add_argument("--no-augment", dest="augment", action="store_false", help="no random crops and flips")
    t.add_argument("--out", required=True, metavar="CKPT", help="the checkpoint (written after every epoch)")
    t.add_argument("--snapshot-every", type=int, default=0, metavar="N", help="keep a copy every N epochs")
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    t.add_argument("--json", action="store_true", help="print the training history as JSON")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device(t)
    t.set_defaults(func=cmd_train, parser=t)

    i = inner.add_parser(
        "inspect",
        help="Jacobian spectra and mean-field quantities of every candidate op",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("checkpoint", nargs="?", help="a checkpoint (without one: an untrained supernet, see --init)")
    _add_shape(i)
    i.set_defaults(space=None)
    for action in i._actions:
        if action.dest == "space":
            action.required = False
    i.add_argument("--data", required=True, help="real images to measure on: cifar10:DIR (its test split)")
    i.add_argument("--images", type=int, default=32, help="images per measurement (default 32)")
    i.add_argument("--probes", type=int, default=8, help="random probes per Hutchinson estimate (default 8)")
    i.add_argument("--per-edge", action="store_true", help="print every (cell, edge, op), not only per op")
    i.add_argument("--json", action="store_true", help="print everything as JSON")
    i.set_defaults(func=cmd_inspect, parser=i)


def _shape(args: argparse.Namespace, device: str):
    from nas.strategies.supernet import SupernetConfig
    from nas.strategies.supernet.network import SPACES

    if args.space not in SPACES:
        return SupernetConfig(space=args.space)  # the one-line error naming the spaces
    default = SIZES[args.space][1 if device.startswith("cuda") else 0]
    return SupernetConfig(
        space=args.space,
        channels=args.channels or default[0],
        cells_per_stage=args.cells or default[1],
        bn_every_op=args.bn_every_op,
        bn_affine=args.bn_affine or args.train_only == "bn",
    )


def _images(text: str, split: str):
    from nas.data import load_images, parse_data_arg

    spec = parse_data_arg(text)
    return spec, *load_images(spec.source, str(spec.path), split)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from nas.devices import resolve_device
    from nas.strategies.supernet import TrainConfig, train_supernet

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = _shape(args, device)
    training = TrainConfig(
        init=args.init,
        sampling=args.sampling,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        augment=args.augment,
        train_only=args.train_only,
        seed=args.seed,
    )
    spec, images, labels = _images(args.data, "train")
    if not args.quiet and not args.json:
        print(
            f"supernet {config.space} C={config.channels} N={config.cells_per_stage}, {training.init} init, "
            f"{training.sampling} sampling, {training.epochs} epochs of {len(images):,} {spec.dataset} training "
            f"images on {device}; checkpoint {args.out}",
            file=sys.stderr,
        )
    state = train_supernet(
        config,
        training,
        images,
        labels,
        args.out,
        dataset=spec.dataset,
        device=device,
        progress=not args.quiet and not args.json,
        snapshot_every=args.snapshot_every,
    )
    if args.json:
        print_json({"checkpoint": args.out, "digest": state.digest(), "epoch": state.epoch, "history": state.history})
    else:
        last = state.history[-1] if state.history else {}
        print(
            f"{args.out}: epoch {state.epoch}/{training.epochs}, training loss {last.get('loss', math.nan):.4f}, "
            f"accuracy {last.get('accuracy', math.nan):.4f}, digest {state.digest()}"
        )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from nas.errors import NasError
    from nas.strategies.supernet import load_checkpoint
    from nas.strategies.supernet.spectrum import inspect_supernet, summarise
    from nas.strategies.supernet.train import TrainConfig

    checkpoint = load_checkpoint(args.checkpoint) if args.checkpoint else None
    if checkpoint is None and not args.space:
        raise NasError("give a checkpoint, or describe an untrained supernet with {space}", params=("space",))
    _, images, _ = _images(args.data, "test")
    images = images[: args.images]
    config = None if checkpoint else _shape(args, "cpu")
    training = None if checkpoint else TrainConfig(init=args.init, sampling=args.sampling, seed=args.seed).to_dict()
    report = inspect_supernet(checkpoint, images, config=config, training=training, probes=args.probes)
    if args.json:
        print_json(report)
        return 0
    stages = ["init", "trained"] if report["epoch"] else ["init"]
    cfg = report["config"]
    print(
        f"supernet {cfg['space']} C={cfg['channels']} N={cfg['cells_per_stage']}, {report['training']['init']} init"
        + (f", after {report['epoch']} epochs" if report["epoch"] else ", untrained")
        + f"; {report['images']} test images, {report['probes']} probes"
    )
    print("msv: mean squared Jacobian singular value (chi_1 measured); spread: sd(s^2)/mean(s^2);")
    print("cond: condition number of the non-null part; null: fraction of null directions (ReLU)")
    header = ["op", "chi_1 (theory)"] + [f"{m} {s}" for s in stages for m in ("msv", "spread", "cond", "null")]
    rows = []
    for op, init in summarise(report["rows"], "init").items():
        trained = summarise(report["rows"], "trained").get(op, {}) if "trained" in stages else {}
        cells = [op, _f(init["chi_1"])]
        for values in [init, trained][: len(stages)]:
            cells += [_f(values.get(m, math.nan)) for m in ("msv", "spread", "cond", "null")]
        rows.append(cells)
    _table(header, rows)
    if args.per_edge:
        print()
        header = ["cell", "edge", "op", "q_in", "q*", "chi_1"] + [f"{m} {s}" for s in stages for m in ("msv", "cond")]
        rows = []
        for r in report["rows"]:
            cells = [
                str(r["cell"]),
                str(r["edge"]),
                r["op"],
                _f(r["q_in_init"]),
                _f(r["q_star_init"]),
                _f(r["chi_1_init"]),
            ]
            cells += [_f(r.get(f"{m}_{s}", math.nan)) for s in stages for m in ("msv", "cond")]
            rows.append(cells)
        _table(header, rows)
    return 0


def _f(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for line in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())


__all__ = ["add_parser"]
