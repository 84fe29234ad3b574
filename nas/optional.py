"""Packages only some users need, installed as extras of zcnas: a missing one is a one-line error
that says which extra brings it.

>>> need("json", "official", "reading JSON")      # present: the module itself
<module 'json' ...>
>>> need("no_such_module_here", "official", "reading NATS")
Traceback (most recent call last):
...
nas.errors.NasError: reading NATS needs the 'no_such_module_here' package: pip install 'zcnas[official]'
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from nas.errors import NasError

#: extra -> what it is for (pyproject.toml's [project.optional-dependencies] holds the packages)
EXTRAS = {
    "official": "the benchmarks' official files: NATS-Bench directories, NB201 .pth, NB101 TFRecord checksums",
    "postgres": "score stores and studies on a PostgreSQL server (many hosts)",
    "cluster": "scoring on a Dask cluster (--cluster local|tcp://HOST:8786)",
    "grow": "growth on scikit-learn's digits (--data digits) and GroMo, the peer it is measured against",
}


def need(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise a NasError naming the extra that installs it."""
    try:
        return import_module(module)
    except ImportError:
        raise NasError(f"{purpose} needs the {module!r} package: pip install 'zcnas[{extra}]'") from None
