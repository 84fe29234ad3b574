"""Reproduce docs/results.md: how well every proxy ranks NATS-TSS, NAS-Bench-101 and NATS-SSS cells.

    make reproduce                     # = python scripts/reproduce.py --shared ../shared/data
    python scripts/reproduce.py --minutes 60 --workers 2   # score for an hour, then write results
    python scripts/reproduce.py --stages tss-all-cheap --proxies near,params   # one proxy first

The reproduction itself is the library's :mod:`nas.reproduce` (its docstring has the protocol and
the stages); this script runs it with this repository's defaults (``docs/scores``,
``docs/results.md``, ``../shared/data``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nas.reproduce import main

if __name__ == "__main__":
    try:
        sys.exit(main(root=Path(__file__).resolve().parent.parent))
    except KeyboardInterrupt:  # every finished score is already in the store
        print("\nreproduce: interrupted; the scores so far are stored, rerun to go on", file=sys.stderr)
        sys.exit(130)
