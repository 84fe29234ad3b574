"""The ``nas`` command line: one module per command, the shared options in :mod:`.options`.

Every user error becomes one line, ``nas: error: ...``, and exit status 2 (a library error's
parameter names are spelled as this command's flags); ``--json`` prints machine-readable output
on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from nas.errors import NasError

#: The commands, in the order ``nas --help`` lists them.
COMMANDS = ("spaces", "bench", "arch", "score", "correlate", "search", "supernet", "design", "grow", "store")


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    from nas import __version__

    parser = argparse.ArgumentParser(
        prog="nas",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="zcnas: score, rank and search neural architectures without training them.",
        epilog="Run `nas COMMAND --help` for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"zcnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        import_module(f"nas.cli.{name}").add_parser(sub)
    return parser


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (not the stream of when it was made)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _log_to_stderr() -> None:
    """The library logs (``logging.getLogger("nas")``); the command shows those notes on stderr."""
    logger = logging.getLogger("nas")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    from nas.cli.options import flag_of

    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NasError as err:
        command = getattr(args, "parser", parser)
        print(f"nas: error: {err.spelled(lambda name: flag_of(command, name))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "COMMANDS"]
