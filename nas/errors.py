"""The project's error types.

Every error a user can cause (a malformed architecture, a missing benchmark file, a dataset the
table does not hold) is a :class:`NasError` whose message is one readable line that names the
offending input and what was expected. The CLI prints it as ``nas: error: <message>`` and exits 2,
so a user never sees a traceback for bad input.
"""

from __future__ import annotations


class NasError(Exception):
    """Base class of all user-facing errors.

    A message about a parameter writes it as ``{name}`` and lists it in ``params``: the library
    prints the parameter's name, the CLI its flag (``--name``).

    >>> err = NasError("{max_repeats} must be positive, got 0", params=("max_repeats",))
    >>> str(err), err.spelled(lambda name: "--" + name.replace("_", "-"))
    ('max_repeats must be positive, got 0', '--max-repeats must be positive, got 0')
    """

    def __init__(self, message: str = "", *, params: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.params = tuple(params)

    def spelled(self, spell) -> str:
        """The message with each parameter written by ``spell(name)``."""
        text = str(self.args[0]) if self.args else ""
        for name in self.params:
            text = text.replace("{" + name + "}", spell(name))
        return text

    def __str__(self) -> str:
        return self.spelled(lambda name: name)


class InvalidArchitectureError(NasError, ValueError):
    """An architecture string, index, hash or graph that the space does not contain."""


class BenchmarkError(NasError):
    """A benchmark file that is missing, corrupt, or lacks the requested entry."""


class MissingEntryError(BenchmarkError, KeyError):
    """A (dataset, split, epochs) combination or architecture the table does not hold.
    (``NasError.__str__`` comes first in the MRO: KeyError would quote the message.)"""
