"""Scores on another machine: every proxy, scored under other CPU instruction sets and another
thread count (in a fresh process), stays within its documented tolerance (``Proxy.tolerance``,
docs/proxies.md) of the baseline, on fast cells (NATS-TSS and the smallest NB101 cell)."""

from __future__ import annotations

import pytest

from nas.archive import relative_difference
from nas.proxies import proxy_class
from nas.searchspaces import get_space
from nas.testing.variation import score_under

from conftest import builtin_network_proxies, require, smallest_nb101_cell

#: the settings that moved scores most in scripts/score_variation.py's measurement, together in one
#: process (one more process instead of three keeps the test inside the test run's budget): another
#: convolution ISA, another thread count, and ATen's scalar kernels (a CPU without AVX2, whose
#: Gaussian draws differ: AZ-NAS's version 1 failed this by up to 48%)
SETTINGS = ("oneDNN SSE4.1 + 2 threads + ATen default",)


def _cell(space_name: str, shared_data) -> str:
    space = get_space(space_name)
    if space_name == "nats-tss":
        return space.format(space.from_index(9930))
    return space.format(smallest_nb101_cell(shared_data))


# one test per space, so that a parallel test run scores the two side by side
@pytest.mark.parametrize("space", ["nats-tss", "nb101"])
def test_every_proxy_stays_within_its_tolerance_on_another_cpu_setting(space, shared_data):
    data = f"cifar10:{require(shared_data / 'cifar10' / 'cifar-10-batches-py')}"
    proxies = builtin_network_proxies()
    cells = {space: [_cell(space, shared_data)]}
    # one after the other: side by side, the 2-thread process would fight the others for 2 cores
    base, *others = (score_under(s, cells, proxies, data) for s in ("baseline", *SETTINGS))
    beyond = []
    for setting, other in zip(SETTINGS, others):
        for proxy, scores in base[space].items():
            for key, value in scores.items():
                change = relative_difference(value, other[space][proxy][key])
                if change > proxy_class(proxy).tolerance:
                    beyond.append(f"{proxy} ({space}, {setting}): {change:.1e} > {proxy_class(proxy).tolerance:.0e}")
    assert not beyond, "; ".join(beyond)


@pytest.mark.parametrize("name", ["zico", "grasp", "params"])
def test_tolerances_are_documented(name):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "proxies.md").read_text()
    assert f"| `{name}` |" in text.split("## Scores on other machines", 1)[1]
    assert proxy_class(name).tolerance > 0
