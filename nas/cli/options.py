"""The options the commands share, defined once so that each flag means one thing everywhere.

| flag | meaning in every command |
|---|---|
| ``--space`` | the search space |
| ``--proxy`` | the proxies (one for ``search``) |
| ``--data`` | where the proxies' inputs come from: ``gaussian``, ``cifar10:DIR``, ``npz:FILE`` |
| ``--input-dataset`` | shape and classes of gaussian/npz inputs (cifar10, cifar100, imagenet16-120) |
| ``--dataset`` | benchmark dataset(s) whose recorded accuracies are read (``correlate``) |
| ``--seed`` | the seed of the command's own draws: the sample and bootstrap, or the sampler (``search``) |
| ``--score-seed`` | the seed of the input batch and the networks' initialisation: part of every score's protocol |
| ``--json`` | print JSON on stdout instead of text |
| ``--out FILE`` | write the result to FILE (``.json``; ``score`` also ``.csv``) |
| ``--device`` | where networks run: cpu, cuda, cuda:N, mps (default: CUDA when present) |

Old spellings keep working for one release with a warning: ``score --dataset`` and ``search
--dataset`` (now ``--input-dataset``), ``correlate --json FILE`` and ``search --json FILE`` (now
``--out FILE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NasError

if TYPE_CHECKING:
    from nas.data import InputSpec

REMOVED_IN = "0.3"


def warn(message: str) -> None:
    print(f"nas: warning: {message}", file=sys.stderr)


class Deprecated(argparse.Action):
    """An old flag: stores its value under the new flag's dest, and says so on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        warn(f"{option_string} is deprecated here and will be removed in {REMOVED_IN}; use {self.new}")
        setattr(namespace, self.dest, values)


class JsonFlag(argparse.Action):
    """``--json``: print JSON on stdout. The old ``--json FILE`` (``correlate``, ``search``) still
    writes FILE, with a warning to use ``--out FILE``."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", const=True, default=False, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values is True:
            namespace.json = True
            return
        warn(f"--json FILE is deprecated and will be removed in {REMOVED_IN}; use --out {values}")
        namespace.out = values


def add_space(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="the search space: nats-tss, nats-sss, nb101 or a plugin's")


def add_inputs(p: argparse.ArgumentParser, *, score_seed_default: str) -> None:
    """``--data``, ``--input-dataset``, ``--batch-size``, ``--score-seed``."""
    p.add_argument(
        "--data", default="gaussian", help="proxy inputs: gaussian (default), cifar10:DIR, cifar100:DIR or npz:FILE"
    )
    p.add_argument(
        "--input-dataset",
        default="cifar10",
        help="input shape and classes for gaussian/npz inputs: cifar10 (default), cifar100, imagenet16-120",
    )
    p.add_argument("--batch-size", type=int, default=64, help="input batch size (default 64)")
    p.add_argument(
        "--score-seed",
        type=int,
        default=None,
        help=f"seed of the input batch and the network init, part of each score's protocol "
        f"(default {score_seed_default})",
    )


def add_run(
    p: argparse.ArgumentParser, workers_help: str = "worker processes (default 1)", cluster: bool = True
) -> None:
    """``--workers``, ``--threads``, ``--store``, ``--device`` (and ``--cluster`` where scores are
    computed in bulk)."""
    p.add_argument("--workers", type=int, default=1, help=workers_help)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process (default 1: fastest for these small networks; 0 = torch's default)",
    )
    p.add_argument("--store", help="score store URL (default sqlite:///$NAS_HOME/scores.db)")
    if cluster:
        p.add_argument(
            "--cluster",
            help="score on Dask: 'local' (a local cluster of --workers processes) or a scheduler address "
            "tcp://HOST:8786 (default: plain processes)",
        )
    add_device(p)


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        help="where networks run: cpu, cuda, cuda:N or mps (default: CUDA when present); "
        "not part of a score's protocol",
    )


def add_output(p: argparse.ArgumentParser, out_help: str, *, json_file_deprecated: bool = False) -> None:
    """``--json`` (stdout), ``--out FILE``, ``--quiet``."""
    if json_file_deprecated:
        p.add_argument("--json", action=JsonFlag, help="print JSON on stdout instead of text")
    else:
        p.add_argument("--json", action="store_true", help="print JSON on stdout instead of text")
    p.add_argument("--out", metavar="FILE", help=out_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar or header")


def flag_of(parser: argparse.ArgumentParser, name: str) -> str:
    """The flag a command spells a library parameter with (``max_repeats`` -> ``--max-repeats``)."""
    for action in _all_actions(parser):
        if action.dest == name and action.option_strings:
            return max(action.option_strings, key=len)
    return "--" + name.replace("_", "-")


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    out = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _all_actions(sub)
    return out


# -- reading what the options say ------------------------------------------------------------------
def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def read_archs(text: str | None) -> list[str] | None:
    """``--archs``: comma-separated indices, one architecture string, or ``@FILE`` (one a line)."""
    if not text:
        return None
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise NasError(f"architecture list {str(path)!r} does not exist")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [a for a in text.split(",") if a.strip()] if "|" not in text else [text]


def parse_inputs(args: argparse.Namespace, seed: int) -> InputSpec:
    """The proxies' inputs from ``--data``, ``--input-dataset`` and ``--batch-size``."""
    from nas.data import parse_data_arg

    return parse_data_arg(args.data, dataset=args.input_dataset, batch_size=args.batch_size, seed=seed)
