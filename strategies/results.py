"""What a search found, from its unique evaluations: the best, the Pareto front, the incumbents.

Directions are ``"maximize"`` / ``"minimize"`` per objective, as Optuna names them. Failed
evaluations (no value) are never ranked.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas.strategies.ledger import Evaluation


def _sign(directions: Sequence[str]) -> list[float]:
    return [1.0 if d == "maximize" else -1.0 for d in directions]


def best(evaluations: Sequence[Evaluation], directions: Sequence[str], k: int = 1) -> list[Evaluation]:
    """The ``k`` best evaluations by the first objective (ties: the earlier evaluation)."""
    sign = _sign(directions)[0]
    ranked = sorted((e for e in evaluations if e.ok), key=lambda e: (-sign * e.values[0], e.position))
    return ranked[:k]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one."""
    signs = _sign(directions)
    better = False
    for x, y, s in zip(a, b, signs):
        if s * x < s * y:
            return False
        better = better or s * x > s * y
    return better


def pareto_front(evaluations: Sequence[Evaluation], directions: Sequence[str]) -> list[Evaluation]:
    """The non-dominated evaluations, best first by the first objective."""
    ok = [e for e in evaluations if e.ok]
    front = [e for e in ok if not any(dominates(o.values, e.values, directions) for o in ok if o is not e)]
    return best(front, directions, k=len(front))


def incumbents(evaluations: Sequence[Evaluation], directions: Sequence[str]) -> list[Evaluation | None]:
    """After each evaluation (in budget order), the best so far by the first objective (None
    until one succeeds): what the search would answer if stopped there."""
    sign = _sign(directions)[0]
    out: list[Evaluation | None] = []
    current: Evaluation | None = None
    for e in sorted(evaluations, key=lambda e: e.position):
        if e.ok and (current is None or sign * e.values[0] > sign * current.values[0]):
            current = e
        out.append(current)
    return out


def fronts_so_far(evaluations: Sequence[Evaluation], directions: Sequence[str]) -> list[list[Evaluation]]:
    """After each evaluation, the Pareto front of those so far (for multi-objective curves)."""
    ordered = sorted(evaluations, key=lambda e: e.position)
    out: list[list[Evaluation]] = []
    front: list[Evaluation] = []
    for e in ordered:
        if e.ok and not any(dominates(f.values, e.values, directions) for f in front):
            front = [f for f in front if not dominates(e.values, f.values, directions)] + [e]
        out.append(list(front))
    return out
