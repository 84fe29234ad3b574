"""The one score record: a proxy's value for one architecture, or why there is none.

Every layer hands the same record along: a proxy's evaluation, the score store, the archives
and :func:`nas.score`'s :class:`~nas.scoring.ScoreTable`. A record read from a store or an
archive also names what it belongs to (space, architecture key, protocol digest, proxy label).

>>> from nas.records import Score
>>> Score(0.5, seconds=0.01).ok
True
>>> Score(float("nan"), 0.01, "failed", "non-finite score nan").ok
False
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """One score: ``score`` (NaN where it failed), the seconds it took, ``status`` ("ok" or
    "failed") with the ``reason``, and where known its key."""

    score: float
    seconds: float
    status: str = "ok"
    reason: str = ""
    proxy: str = ""  # the proxy's label, e.g. near or near(repetitions=8)
    space: str = ""
    arch: str = ""  # the architecture's key in its space
    protocol: str = ""  # the digest of the protocol it was computed under
    machine: str = ""  # the digest of the machine it was computed on (nas.machine); "" unknown

    @property
    def ok(self) -> bool:
        return self.status == "ok"
