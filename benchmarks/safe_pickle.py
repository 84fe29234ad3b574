"""Reading the benchmarks' pickled files without letting them run code.

Unpickling can call any function a file names. The NATS-Bench ``.pickle.pbz2`` files hold plain
data: dicts (``collections.OrderedDict`` among them), lists, strings, numbers and numpy scalars.
:func:`load_pbz2` reads them with an unpickler that resolves only those (and refuses numpy
scalars of object dtype, which could carry other objects); anything else is a one-line
:class:`BenchmarkError` naming the file and what it asked for. ``trust=True`` (the CLI's
``--trust-pickle``) reads a file you trust with the plain unpickler.
"""

from __future__ import annotations

import bz2
import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import BenchmarkError

try:  # numpy >= 2 keeps it in numpy._core; numpy 1 in numpy.core
    from numpy._core.multiarray import scalar as _RECONSTRUCT
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import scalar as _RECONSTRUCT  # type: ignore[no-redef]


def _scalar(dtype: np.dtype, *args: Any) -> Any:
    """numpy's scalar reconstructor, for plain dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("a numpy scalar of object dtype")
    return _RECONSTRUCT(dtype, *args)


#: (module, name) -> what the restricted unpickler gives for it.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of :data:`ALLOWED`; builtin containers and numbers need none."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def load_pbz2(path: str | Path, trust: bool = False) -> Any:
    """The object in a bzip2'ed pickle; see the module docstring for what is allowed."""
    path = Path(path)
    try:
        with bz2.open(path, "rb") as f:
            return pickle.load(f) if trust else RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as err:
        if "refused" in str(err) or "object dtype" in str(err):
            raise BenchmarkError(
                f"{str(path)!r} asks to run code when read ({err}); not read. If you trust this file, pass "
                "--trust-pickle (trust_pickle=True)"
            ) from None
        raise BenchmarkError(f"{str(path)!r} is not a readable pickle ({err})") from None
    except (OSError, EOFError, ValueError) as err:
        raise BenchmarkError(f"cannot read {str(path)!r}: {type(err).__name__}: {err}") from None


def torch_safe_globals() -> list[Any]:
    """The same plain data for ``torch.load(weights_only=True)``, which matches globals by the
    real objects: numpy's own scalar reconstructor (its arguments are themselves restricted, so
    an object-dtype scalar can only hold plain data) and numpy's dtype classes."""
    dtype_classes = [getattr(np.dtypes, name) for name in getattr(np.dtypes, "__all__", [])]
    return [collections.OrderedDict, set, frozenset, np.dtype, _RECONSTRUCT, *dtype_classes]


__all__ = ["load_pbz2", "RestrictedUnpickler", "ALLOWED", "torch_safe_globals"]
