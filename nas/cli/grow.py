"""``nas grow``: grow a tiny network where it cannot follow the functional gradient (TINY, docs/grow.md).

Starts from ``--start`` hidden widths, trains, and at each step adds the neurons that best reduce
the expressivity bottleneck of the chosen layer, at an amplitude searched on training images,
then trains again, until the parameter budget or the step limit. Everything goes to ``--out``:
``checkpoint.pt`` (after every step; rerun the same command to resume), ``log.jsonl`` (one row
per step), ``growth.png`` (accuracy against parameters) and ``architecture.json`` (the final
network, as ``mlp(widths=...)``, to train again from scratch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nas.cli.options import print_json
from nas.errors import NasError

EXAMPLES = (
    "examples:\n"
    "  nas grow --model mlp --start 1-1 --act selu --data digits --budget 3000 \\\n"
    "      --epochs-per-step 2 --final-epochs 20 --out grown/\n"
    "  nas grow --model cnn --start 2-2-2 --act relu --data cifar10:DIR --budget 20000 \\\n"
    "      --epochs-per-step 1 --final-epochs 10 --stat-samples 1024 --out grown_cnn/"
)


def add_parser(sub) -> None:
    from nas.design.models import ACTIVATIONS
    from nas.strategies.grow.loop import ADDITIONS, SELECTIONS

    p = sub.add_parser(
        "grow",
        help="grow a tiny MLP at its expressivity bottlenecks (TINY); rerun to resume",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, choices=("mlp", "cnn"), help="the family to grow: nas design's mlp(...) or cnn(...)"
    )
    p.add_argument("--start", required=True, metavar="WIDTHS", help="starting widths (mlp) or channels (cnn), e.g. 1-1")
    p.add_argument("--act", default="selu", choices=sorted(ACTIVATIONS), help="activation (default selu)")
    p.add_argument(
        "--bn", action=argparse.BooleanOptionalAction, default=None, help="BatchNorm (default: mlp no, cnn yes)"
    )
    p.add_argument("--data", required=True, help="digits (scikit-learn's) or cifar10:DIR (its train/test split)")
    p.add_argument("--budget", type=int, required=True, metavar="PARAMS", help="grow up to this many parameters")
    p.add_argument("--epochs-per-step", type=int, required=True, help="training epochs before and after each step")
    p.add_argument("--final-epochs", type=int, required=True, help="training epochs once growth is over")
    p.add_argument("--steps", type=int, default=1000, help="growth steps at most (default 1000)")
    p.add_argument("--neurons-per-step", type=int, default=4, help="neurons added per step at most (default 4)")
    p.add_argument("--layers", default="", help="comma-separated hidden layers that may grow (default all)")
    p.add_argument("--select", choices=SELECTIONS, default="bottleneck", help="where to grow (docs/grow.md)")
    p.add_argument("--addition", choices=ADDITIONS, default="optimal", help="optimal (TINY) or random neurons")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch (default 64)")
    p.add_argument("--stat-samples", type=int, default=2048, help="training samples for the statistics")
    p.add_argument("--amplitude-samples", type=int, default=512, help="training samples for the amplitude search")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the data order and the samples")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint, log, plot and final architecture")
    p.add_argument("--json", action="store_true", help="print the history as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_grow, parser=p)


def load_split_data(text: str, images: bool):
    """``(train, test)`` of ``digits`` or ``cifar10:DIR``: images (N, C, H, W) or flat vectors."""
    from nas.data import load_digits, load_images

    if text == "digits":
        (xt, yt), (xs, ys) = load_digits("train"), load_digits("test")
        shape: tuple[int, ...] = (1, 8, 8)
    else:
        source, sep, path = text.partition(":")
        if not sep or source not in ("cifar10", "cifar100"):
            raise NasError(f"--data must be digits, cifar10:DIR or cifar100:DIR, not {text!r}")
        (xt, yt), (xs, ys) = load_images(source, path, "train"), load_images(source, path, "test")
        shape = tuple(xt.shape[1:])
    view = (lambda t: t.reshape(len(t), *shape)) if images else (lambda t: t.reshape(len(t), -1))
    return (view(xt), yt), (view(xs), ys)


def _layers(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise NasError(f"--layers takes comma-separated hidden-layer numbers, e.g. 0,1; got {text!r}") from None


def cmd_grow(args) -> int:

    from nas.design.models import parse_model
    from nas.strategies.grow.loop import GrowthConfig, grow
    from nas.strategies.grow.report import plot_growth

    if args.budget < 1:
        raise NasError(f"--budget must be at least 1 parameter, got {args.budget}")
    key = "widths" if args.model == "mlp" else "channels"
    bn = args.bn if args.bn is not None else args.model == "cnn"
    spec = parse_model(f"{args.model}({key}={args.start},act={args.act},bn={str(bn).lower()})")
    train, test = load_split_data(args.data, images=args.model == "cnn")
    classes = int(max(train[1].max(), test[1].max())) + 1
    model = spec.build(tuple(train[0].shape[1:]), classes, seed=args.seed)
    config = GrowthConfig(
        max_params=args.budget, epochs_per_step=args.epochs_per_step, final_epochs=args.final_epochs,
        max_steps=args.steps, neurons_per_step=args.neurons_per_step, select=args.select,
        addition=args.addition, lr=args.lr, batch_size=args.batch_size, stat_samples=args.stat_samples,
        amplitude_samples=args.amplitude_samples, seed=args.seed, layers=_layers(args.layers),
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = grow(model, train, test, config, checkpoint=out / "checkpoint.pt", progress=not args.quiet)
    with open(out / "log.jsonl", "w") as f:
        for row in result.history:
            f.write(json.dumps(row) + "\n")
    final = spec.with_params(**{key: "-".join(map(str, result.widths))})
    architecture = {
        "model": final.text, "data": args.data, "input_shape": list(train[0].shape[1:]), "num_classes": classes,
        "params": result.history[-1]["params"], "test_acc": result.history[-1]["test_acc"],
    }  # fmt: skip
    (out / "architecture.json").write_text(json.dumps(architecture, indent=1) + "\n")
    plot_growth({"grown": result.history}, out / "growth.png")
    if args.json:
        print_json({"architecture": architecture, "history": result.history})
    else:
        last = result.history[-1]
        print(
            f"grown to {final.text}: {last['params']:,} parameters in {len(result.history) - 2} growth steps, "
            f"test accuracy {last['test_acc']:.2f}% (train {last['train_acc']:.2f}%); {out}/",
            file=sys.stdout,
        )
    return 0
