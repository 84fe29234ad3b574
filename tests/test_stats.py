"""Rank statistics on hand-checked cases and the data README's reference figure."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from nas import stats

from conftest import require


def test_kendall_and_spearman_closed_forms():
    x = np.arange(10.0)
    assert stats.kendall_tau(x, x) == pytest.approx(1.0) and stats.kendall_tau(x, -x) == pytest.approx(-1.0)
    # one discordant pair of 3: tau = (2 - 1) / 3
    assert stats.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert stats.spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(1 - 6 * 2 / (4 * 15))


def test_topk_precision():
    acc = np.arange(100.0)
    assert stats.topk_precision(acc, acc, 0.05) == 1.0
    assert stats.topk_precision(-acc, acc, 0.05) == 0.0
    scores = acc.copy()
    scores[99], scores[0] = scores[0], scores[99]  # the best is ranked last
    assert stats.topk_precision(scores, acc, 0.05) == pytest.approx(4 / 5)


def test_ndcg():
    acc = np.array([90.0, 80.0, 70.0, 60.0])
    assert stats.ndcg(acc, acc, top=4) == pytest.approx(1.0)
    worst = stats.ndcg(-acc, acc, top=4)
    gains = 2 ** (acc / 100) - 1
    disc = 1 / np.log2(np.arange(2, 6))
    assert worst == pytest.approx(np.sum(gains[::-1] * disc) / np.sum(gains * disc))


def test_bootstrap_ci_contains_tau():
    rng = np.random.default_rng(0)
    acc = rng.random(300)
    scores = acc + rng.normal(0, 0.3, 300)
    tau = stats.kendall_tau(scores, acc)
    low, high = stats.bootstrap_tau_ci(scores, acc, resamples=200, seed=0)
    assert low < tau < high and high - low < 0.2
    assert (low, high) == stats.bootstrap_tau_ci(scores, acc, resamples=200, seed=0)


def test_failed_scores_are_counted_never_silently_dropped():
    scores = np.array([1.0, np.nan, 3.0, 4.0])
    acc = np.array([1.0, 2.0, np.nan, 4.0])
    dropped = stats.drop_failed(scores, acc)
    assert dropped.n_failed == 1 and dropped.n_no_accuracy == 1 and len(dropped.scores) == 2
    worst = stats.drop_failed(scores, acc, "worst")
    assert worst.n_failed == 1 and worst.scores.tolist() == [1.0, 0.0, 4.0]


def test_reference_figure_params_vs_cifar10_test(shared_data):
    """The data README: tau-b of params_mb vs cifar10_test over all 15,625 cells is 0.577."""
    with open(require(shared_data / "nb201" / "nb201_accuracies.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    params = np.array([float(r["params_mb"]) for r in rows])
    acc = np.array([float(r["cifar10_test"]) for r in rows])
    assert round(stats.kendall_tau(params, acc), 3) == 0.577


def test_paired_tau_difference_is_zero_for_the_same_score_and_two_for_reversed():
    from nas.stats import paired_tau_difference

    acc = np.arange(30.0)
    assert paired_tau_difference(acc, acc, acc, resamples=50) == (0.0, 0.0, 0.0)
    diff, low, high = paired_tau_difference(acc, -acc, acc, resamples=50)
    assert diff == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
