"""The project's error types.

Every error a user can cause (a malformed architecture, a missing benchmark file, a dataset the
table does not hold) is a :class:`NasError` whose message is one readable line that names the
offending input and what was expected. The CLI prints it as ``nas: error: <message>`` and exits 2,
so a user never sees a traceback for bad input.
"""
from __future__ import annotations


class NasError(Exception):
    """Base class of all user-facing errors."""


class InvalidArchitectureError(NasError, ValueError):
    """An architecture string, index, hash or graph that the space does not contain."""


class BenchmarkError(NasError):
    """A benchmark file that is missing, corrupt, or lacks the requested entry."""


class MissingEntryError(BenchmarkError, KeyError):
    """A (dataset, split, epochs) combination or architecture the table does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
