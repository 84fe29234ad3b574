"""Rank statistics of proxy scores against recorded accuracies, as papers report them.

Every function takes ``scores`` (higher = predicted better; flip lower-is-better proxies first)
and ``accuracies`` of the same architectures, with no NaN: callers decide what a failed score
means and report how many there were (:func:`drop_failed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats


def kendall_tau(scores: np.ndarray, accuracies: np.ndarray) -> float:
    """Kendall's tau-b (ties handled as scipy's default, the figure papers quote)."""
    return float(_stats.kendalltau(scores, accuracies).statistic)


def spearman(scores: np.ndarray, accuracies: np.ndarray) -> float:
    return float(_stats.spearmanr(scores, accuracies).statistic)


def topk_precision(scores: np.ndarray, accuracies: np.ndarray, fraction: float) -> float:
    """Share of the top-k by score that are in the true top-k (k = ceil(fraction * n))."""
    n = len(scores)
    k = max(1, math.ceil(fraction * n))
    by_score = set(np.argsort(-np.asarray(scores), kind="stable")[:k].tolist())
    by_acc = set(np.argsort(-np.asarray(accuracies), kind="stable")[:k].tolist())
    return len(by_score & by_acc) / k


def ndcg(scores: np.ndarray, accuracies: np.ndarray, top: int = 100) -> float:
    """Normalised discounted cumulative gain of the ``top`` ranks by score, with gains
    ``2**acc - 1`` for accuracies as fractions (the VKDNW definition; the rank cut-off P is not
    published, we use 100 and record it)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    acc = acc / 100.0 if acc.max() > 1.0 else acc
    top = min(top, len(acc))
    discounts = 1.0 / np.log2(np.arange(2, top + 2))
    gains = 2.0**acc - 1.0
    dcg = float(np.sum(gains[np.argsort(-np.asarray(scores), kind="stable")[:top]] * discounts))
    ideal = float(np.sum(np.sort(gains)[::-1][:top] * discounts))
    return dcg / ideal if ideal > 0 else float("nan")


def bootstrap_tau_ci(
    scores: np.ndarray, accuracies: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of Kendall's tau over architectures."""
    rng = np.random.default_rng(seed)
    scores, accuracies = np.asarray(scores), np.asarray(accuracies)
    n = len(scores)
    taus = np.empty(resamples)
    for i in range(resamples):
        pick = rng.integers(0, n, n)
        taus[i] = _stats.kendalltau(scores[pick], accuracies[pick]).statistic
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(taus, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_tau_difference(
    a: np.ndarray, b: np.ndarray, accuracies: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``tau(a) - tau(b)`` against the same accuracies, and its paired percentile bootstrap
    interval (each resample draws architectures once for both scores)."""
    a, b, accuracies = np.asarray(a), np.asarray(b), np.asarray(accuracies)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for i in range(resamples):
        pick = rng.integers(0, len(accuracies), len(accuracies))
        diffs[i] = kendall_tau(a[pick], accuracies[pick]) - kendall_tau(b[pick], accuracies[pick])
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(diffs, [alpha, 1.0 - alpha])
    return kendall_tau(a, accuracies) - kendall_tau(b, accuracies), float(low), float(high)


@dataclass
class Cleaned:
    scores: np.ndarray
    accuracies: np.ndarray
    n_total: int
    n_failed: int
    n_no_accuracy: int


def drop_failed(scores: np.ndarray, accuracies: np.ndarray, policy: str = "drop") -> Cleaned:
    """Handle failed (NaN) scores explicitly: ``drop`` them (and count them), or rank them
    ``worst``. Architectures without a recorded accuracy are always left out (and counted)."""
    scores = np.asarray(scores, dtype=np.float64)
    accuracies = np.asarray(accuracies, dtype=np.float64)
    has_acc = ~np.isnan(accuracies)
    failed = np.isnan(scores) & has_acc
    if policy == "drop":
        keep = has_acc & ~failed
        s = scores[keep]
    elif policy == "worst":
        keep = has_acc
        s = scores[keep].copy()
        finite = s[~np.isnan(s)]
        s[np.isnan(s)] = (finite.min() - 1.0) if finite.size else 0.0
    else:
        raise ValueError(f"unknown failure policy {policy!r}; expected 'drop' or 'worst'")
    return Cleaned(s, accuracies[keep], len(scores), int(failed.sum()), int((~has_acc).sum()))


# -- tie-aware top-k, proxy-proxy agreement (used by `nas correlate`) --------------------------------
def topk_membership(values: np.ndarray, k: int) -> np.ndarray:
    """Probability that each item is among the ``k`` largest when ties are broken at random.

    Items strictly above the k-th largest value are in (1), items below are out (0), and the
    ``t`` items tied at the k-th value share the remaining ``r`` places (``r / t`` each). Size
    proxies such as ``params`` take few distinct values (59 over all NATS-TSS cells), so the
    top-k set of a stable sort would depend on the order the architectures were listed in."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    k = int(min(max(k, 0), n))
    out = np.zeros(n)
    if k == 0:
        return out
    kth = np.sort(values)[::-1][k - 1]
    above = values > kth
    tied = values == kth
    out[above] = 1.0
    out[tied] = (k - int(above.sum())) / int(tied.sum())
    return out


def topk_precision_ties(scores: np.ndarray, accuracies: np.ndarray, fraction: float) -> float:
    """:func:`topk_precision` in expectation over random tie-breaking (in scores and in
    accuracies), k = ceil(fraction * n). Equal to it when neither has ties at the k-th place."""
    n = len(scores)
    k = max(1, math.ceil(fraction * n))
    return float(np.sum(topk_membership(scores, k) * topk_membership(accuracies, k)) / k)


def spearman_matrix(columns: np.ndarray) -> np.ndarray:
    """Spearman's rho between every pair of columns of an (n, m) array (m >= 1)."""
    columns = np.asarray(columns, dtype=np.float64)
    m = columns.shape[1]
    if m == 1:
        return np.ones((1, 1))
    rho = _stats.spearmanr(columns, axis=0).statistic
    return np.array([[1.0, rho], [rho, 1.0]]) if m == 2 else np.asarray(rho)
