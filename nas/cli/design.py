"""``nas design nlc|normalize|width|activation|capacity``: explain or change one network before training.

MODEL is ``mlp(widths=256-256,act=relu,bn=false,skip=false,init=default,gain=1)``,
``cnn(channels=16-32-64,blocks=1,act=relu,bn=true,skip=false,init=default,gain=1)``, a benchmark
architecture ``SPACE:ARCH`` (``nats-tss:|nor_conv_3x3~0|+|...|``, an index) or your own
``package.module:factory(key=value,...)`` returning a ``torch.nn.Module``. Inputs come from
``--data`` (required: cifar10:DIR, cifar100:DIR, npz:FILE or gaussian); their shape and classes
set the network's. docs/design.md has the methods and the evidence.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from nas.cli.options import add_device, print_json, warn

EXAMPLES = (
    "examples:\n"
    "  nas design nlc 'cnn(channels=16-32-64,blocks=3)' --data cifar10:DIR --plot nlc.png\n"
    "  nas design nlc 'nats-tss:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|"
    "avg_pool_3x3~2|' --data cifar10:DIR\n"
    "  nas design normalize 'mlp(widths=512-512-512-512)' --target 2 --data cifar10:DIR --out mlp_nlc2.pt\n"
    "  nas design width 'mlp(widths=256-256)' --layer 0 --data cifar10:DIR --images 1280 --plot width.png\n"
    "  nas design activation 'mlp(widths=256-256)' --data cifar10:DIR --activations relu,tanh,gelu,sigmoid \\\n"
    "      --inits default,xavier_normal,kaiming_normal\n"
    "  nas design capacity 'cnn(channels=4-4,act=identity,bn=false)' --data digits --images 1 --plot cap.png"
)


def _common(p: argparse.ArgumentParser, images: int, images_help: str = "") -> None:
    p.add_argument("model", metavar="MODEL", help="mlp(...), cnn(...), SPACE:ARCH or module:factory (see above)")
    p.add_argument(
        "--data", required=True, help="inputs: cifar10:DIR, cifar100:DIR (training images), npz:FILE or gaussian"
    )
    p.add_argument(
        "--input-dataset",
        default="cifar10",
        help="input shape and classes for gaussian/npz inputs: cifar10 (default), cifar100, imagenet16-120",
    )
    p.add_argument("--images", type=int, default=images, help=images_help or f"inputs drawn (default {images})")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs drawn and of the network's weights")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device(p)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "design",
        help="explain or change one network: NLC per layer, normalisation, NEAR width and activation, capacity",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = p.add_subparsers(dest="design_command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    n = inner.add_parser("nlc", help="the NLC of the network and of every layer", epilog=EXAMPLES, formatter_class=fmt)
    _common(n, 256)
    n.add_argument("--pairs", type=int, default=256, help="(point, direction) pairs, whole rounds (default 256)")
    n.add_argument("--bn", choices=("eval", "train"), default="eval", help="BatchNorm policy (default eval)")
    n.add_argument("--layers", choices=("activations", "all"), default="activations", help="which layers get a row")
    n.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the errors (default 200)")
    n.add_argument("--plot", metavar="FILE", help="write the NLC-by-depth plot here (.png, .pdf, .svg)")
    n.set_defaults(func=cmd_nlc, parser=n)

    z = inner.add_parser(
        "normalize",
        help="soften the activations until the network's NLC hits a target",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    _common(z, 256)
    z.add_argument("--target", type=float, required=True, help="the network NLC to reach (right-sized: 1 to 3)")
    z.add_argument("--rtol", type=float, default=0.02, help="relative tolerance on the target (default 0.02)")
    z.add_argument("--pairs", type=int, default=256, help="pairs of the NLC estimate (default 256)")
    z.add_argument(
        "--max-alpha", type=float, default=1.0, help="largest activation weight (default 1: only soften; >1 sharpens)"
    )
    z.add_argument("--out", required=True, metavar="FILE", help="the normalised model (nas.design.load_normalized)")
    z.set_defaults(func=cmd_normalize, parser=z)

    w = inner.add_parser("width", help="NEAR's estimate of a layer's width", epilog=EXAMPLES, formatter_class=fmt)
    _common(w, 0, "inputs drawn (default: the largest width; a dense layer of width n needs n)")
    w.add_argument(
        "--layer", required=True, help="mlp: hidden layer, cnn: stage (0-based); a factory: the module to score"
    )
    w.add_argument("--widths", default=None, help="widths to sweep, comma-separated (default 10,20,...,1280)")
    w.add_argument("--threshold", type=float, default=0.005, help="slope threshold of the fit (default 0.005)")
    w.add_argument("--width-param", help="a factory's keyword that sets the width")
    w.add_argument("--plot", metavar="FILE", help="write the fit plot here")
    w.set_defaults(func=cmd_width, parser=w)

    a = inner.add_parser(
        "activation", help="NEAR's ranking of activation and initialisation pairs", epilog=EXAMPLES, formatter_class=fmt
    )
    _common(a, 256)
    a.add_argument("--activations", required=True, help="comma-separated: " + ", ".join(_names("ACTIVATIONS")))
    a.add_argument("--inits", default="default", help="comma-separated: " + ", ".join(_names("INITS")))
    a.add_argument("--repetitions", type=int, default=3, help="fresh initialisations per pair (default 3)")
    a.set_defaults(func=cmd_activation, parser=a)

    c = inner.add_parser(
        "capacity",
        help="capacity allocation: the effective parameters spent on each input coordinate",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    _common(c, 4, "inputs where a nonlinear model is linearised (default 4; a linear model needs 1)")
    c.add_argument("--output", type=int, default=None, help="the output index measured (default: their sum)")
    c.add_argument("--plot", metavar="FILE", help="write the capacity map here (a bar plot, or a heatmap for images)")
    c.set_defaults(func=cmd_capacity, parser=c)


def _names(table: str) -> list[str]:
    from nas.design import models

    return list(getattr(models, table))


def _setup(args: argparse.Namespace, images: int):
    """The model spec, the inputs (on the device), their classes and the device."""
    import torch

    from nas.data import load_batch, parse_data_arg

    if args.data == "digits":  # scikit-learn's 8x8 digits, as (1, 8, 8) images
        from nas.data import load_digits
        from nas.design import parse_model

        x, _ = load_digits("train")
        g = torch.Generator().manual_seed(args.seed)
        pick = torch.randperm(len(x), generator=g)[:images]
        return parse_model(args.model), x[pick].reshape(-1, 1, 8, 8), 10, "cpu", _Digits(images, args.seed)
    from nas.design import parse_model
    from nas.devices import resolve_device
    from nas.errors import NasError

    if args.threads:
        torch.set_num_threads(args.threads)
    if images < 2:
        raise NasError(f"--images must be at least 2, got {images}")
    spec = parse_model(args.model)
    data = parse_data_arg(args.data, dataset=args.input_dataset, batch_size=images, seed=args.seed)
    batch = load_batch(data)
    device = resolve_device(args.device)
    return spec, batch.inputs.to(device), batch.num_classes, device, data


class _Digits:
    def __init__(self, images: int, seed: int):
        self.images, self.seed = images, seed

    def protocol(self) -> dict:
        return {"source": "digits", "split": "train", "images": self.images, "seed": self.seed}


def cmd_capacity(args: argparse.Namespace) -> int:
    from nas.design.capacity import capacity_allocation, plot_capacity
    from nas.errors import NasError

    if args.images < 1:
        raise NasError(f"--images must be at least 1, got {args.images}")
    spec, x, classes, device, data = _setup(args, max(args.images, 2))
    x = x[: args.images].cpu()
    model = _build(spec, x, classes, args.seed, "cpu")
    size = x[0].numel() * args.images * sum(p.numel() for p in model.parameters())
    if size > 2e7:  # about a minute of Jacobians on a laptop core
        raise NasError(
            f"capacity needs a (inputs x coordinates x parameters) Jacobian of {size:,.0f} entries; "
            "use fewer --images or a smaller model (it is meant for small networks)"
        )
    report = capacity_allocation(model, x, output=args.output)
    if args.plot:
        plot_capacity({spec.text[:60]: report}, args.plot)
    if args.json:
        print_json({"model": spec.text, "inputs": data.protocol(), "output": args.output, **report.to_dict()})
        return 0
    per = report.per_input.sum(0) if report.per_input.ndim == 3 else report.per_input
    print(f"{spec.text}: capacity {report.total:.2f} = rank {report.rank} of {report.parameters} parameters "
          f"({report.samples} linearisation input(s))")  # fmt: skip
    rows = per if per.ndim == 2 else per.reshape(1, -1)
    for row in rows:
        print(" ".join(f"{v:5.2f}" for v in row))
    return 0


def _build(spec, inputs, num_classes: int, seed: int, device: str):
    return spec.build(inputs.shape[1:], num_classes, seed=seed).to(device)


def _progress(args: argparse.Namespace, total: int, what: str):
    if args.quiet or args.json:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, file=sys.stderr, leave=False)
    return bar, bar.update


def cmd_nlc(args: argparse.Namespace) -> int:
    from nas.design import format_table, layer_nlc, plot_layer_nlc

    spec, x, classes, device, data = _setup(args, args.images)
    model = _build(spec, x, classes, args.seed, device)
    report = layer_nlc(
        model, x, pairs=args.pairs, bn=args.bn, seed=args.seed, layers=args.layers, bootstrap=args.bootstrap
    )
    if args.plot:
        plot_layer_nlc(report, args.plot, title=spec.text[:70])
    if args.json:
        print_json({"model": spec.text, "inputs": data.protocol(), **report.to_dict()})
    else:
        print(format_table(report))
    for note in report.notes:
        warn(note)
    if not report.in_band and not args.json:
        warn(
            f"the network NLC {report.network:.3g} is outside the right-sized band "
            f"{report.band[0]:g}-{report.band[1]:g}"
        )
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    from nas.design import normalize_nonlinearity, save_normalized

    spec, x, classes, device, data = _setup(args, args.images)
    model = _build(spec, x, classes, args.seed, device)
    net, result = normalize_nonlinearity(
        model, x, target=args.target, rtol=args.rtol, pairs=args.pairs, max_alpha=args.max_alpha, seed=args.seed
    )
    save_normalized(args.out, net.cpu(), spec.text, tuple(x.shape[1:]), classes, result, args.seed)
    if args.json:
        print_json({"model": spec.text, "inputs": data.protocol(), "out": args.out, **result.to_dict()})
        return 0
    alphas = list(result.alphas.values())
    print(
        f"NLC {result.nlc_before:.3f} -> {result.nlc_after:.3f} (target {result.target:g}, "
        f"{result.iterations} trials); "
        f"every activation at NLC {result.per_activation:.4f}; alpha {min(alphas):.3f} to {max(alphas):.3f} "
        f"over {len(alphas)} activation modules; wrote {args.out}"
    )
    return 0


def cmd_width(args: argparse.Namespace) -> int:
    from nas.design import model_layer_size, plot_layer_size
    from nas.design.near import DEFAULT_WIDTHS
    from nas.errors import NasError

    try:
        widths = [int(v) for v in args.widths.split(",")] if args.widths else list(DEFAULT_WIDTHS)
    except ValueError:
        raise NasError(f"--widths {args.widths!r}: expected comma-separated integers") from None
    if len(widths) < 2 or min(widths) < 1:
        raise NasError("--widths: give at least two positive widths")
    spec, x, classes, _device, data = _setup(args, args.images or max(widths))
    bar, tick = _progress(args, len(widths), "widths")
    factory = spec.kind == "factory"
    try:
        estimate = model_layer_size(
            spec,
            args.layer,
            x.cpu(),
            classes,
            sizes=widths,
            slope_threshold=args.threshold,
            seed=args.seed,
            width_param=args.width_param if factory else None,
            module=args.layer if factory else None,
            progress=tick,
        )
    finally:  # an error's line must not share the bar's
        if bar is not None:
            bar.close()
    if args.plot:
        plot_layer_size(estimate, args.plot, title=f"{spec.text[:50]}, layer {args.layer}")
    out: dict[str, Any] = {"model": spec.text, "layer": args.layer, "inputs": data.protocol(), **vars_of(estimate)}
    if args.json:
        print_json(out)
        return 0
    for size, rel in zip(estimate.sizes, estimate.relative_scores):
        print(f"{size:>8}  NEAR/width {rel:.4f}")
    print(
        f"fit a + b x^c: a={estimate.a:.4g} b={estimate.b:.4g} c={estimate.c:.4g}; estimated width "
        f"{estimate.size:.0f} (x^(c-1) = {estimate.slope_threshold:g})"
    )
    if estimate.size > max(widths):
        warn(f"the estimate {estimate.size:.0f} lies beyond the widths swept (largest {max(widths)}): extrapolated")
    return 0


def vars_of(estimate) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(estimate).items()}


def cmd_activation(args: argparse.Namespace) -> int:
    from nas.design import rank_model_activations
    from nas.design.models import ACTIVATIONS, INITS
    from nas.errors import NasError

    acts = [a.strip() for a in args.activations.split(",") if a.strip()]
    inits = [i.strip() for i in args.inits.split(",") if i.strip()]
    for name, table, flag in ((acts, ACTIVATIONS, "--activations"), (inits, INITS, "--inits")):
        unknown = [v for v in name if v not in table]
        if unknown:
            raise NasError(f"{flag}: unknown {unknown}; expected some of {', '.join(table)}")
    spec, x, classes, _device, data = _setup(args, args.images)
    bar, tick = _progress(args, len(acts) * len(inits) * args.repetitions, "pairs")
    try:
        ranking = rank_model_activations(
            spec, x.cpu(), classes, acts, inits, repetitions=args.repetitions, seed=args.seed, progress=tick
        )
    finally:  # an error's line must not share the bar's
        if bar is not None:
            bar.close()
    if args.json:
        rows = [
            {"activation": r.activation, "init": r.init, "near": r.score, "spread": r.spread, "flagged": r.flagged}
            for r in ranking
        ]
        print_json({"model": spec.text, "inputs": data.protocol(), "repetitions": args.repetitions, "ranking": rows})
        return 0
    print(f"{'rank':>4}  {'activation':<12} {'init':<16} {'NEAR':>10}  {'spread':>8}")
    for i, r in enumerate(ranking, 1):
        flag = "  flagged: far below the best" if r.flagged else ""
        print(f"{i:>4}  {r.activation:<12} {r.init:<16} {r.score:>10.2f}  {r.spread:>8.2f}{flag}")
    return 0
