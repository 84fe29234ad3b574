"""Scores under other CPU settings, each in a fresh process: how another machine's math libraries
would move them (``scripts/score_variation.py`` and the tests use it).

Math libraries pick code paths per CPU: oneDNN (convolutions) by instruction set, MKL (matrix
products) by instruction set unless ``MKL_CBWR`` pins one, ATen's vectorised kernels by CPU
capability, and reductions split differently over threads. Their own switches imitate other CPUs
on one machine; they are read at start-up, so each setting runs in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from nas.archive import relative_difference as relative_change  # noqa: F401  (one definition, re-exported)

#: name -> environment of the process (``ZCNAS_THREADS``: torch's thread count, default 1).
SETTINGS: dict[str, dict[str, str]] = {
    "baseline": {},
    # passive OpenMP waits: idle threads sleep instead of spinning, which only matters (for time,
    # never for values) when the process shares its cores
    "2 threads": {"ZCNAS_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    "oneDNN AVX": {"ONEDNN_MAX_CPU_ISA": "AVX"},
    "oneDNN SSE4.1": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "MKL compatible": {"MKL_CBWR": "COMPATIBLE"},
    "ATen default": {"ATEN_CPU_CAPABILITY": "default"},
}

_WORKER = r"""
import json, os, sys, torch
from nas.data import parse_data_arg
from nas.proxies import get_proxy, parse_proxy_spec
from nas.scoring import Scorer
from nas.searchspaces import get_space

torch.set_num_threads(int(os.environ.get("ZCNAS_THREADS", "1")))
job = json.loads(sys.argv[1])
inputs = parse_data_arg(job["data"], batch_size=64, seed=0)
out = {}
for space_name, cells in job["cells"].items():
    space = get_space(space_name)
    proxies = [get_proxy(name, **params) for name, params in parse_proxy_spec(",".join(job["proxies"]))]
    scorer = Scorer(space, proxies, inputs, seed=0)
    for text in cells:
        arch = space.resolve(text)
        for label, result in scorer.score(arch).items():
            out.setdefault(space_name, {}).setdefault(label, {})[space.key(arch)] = result.score
print(json.dumps(out))
"""


def python_output(setting: str, code: str) -> bytes:
    """What ``python -c code`` writes to stdout in a fresh process under one of :data:`SETTINGS`
    (or several joined by ``" + "``)."""
    env = {k: v for k, v in os.environ.items() if k not in {v for s in SETTINGS.values() for v in s}}
    for name in setting.split(" + "):
        env.update(SETTINGS[name])
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout


def score_under(setting: str, cells: dict[str, list[str]], proxies: list[str], data: str) -> dict[str, Any]:
    """``{space: {proxy: {arch key: score}}}`` of ``cells`` ({space: [arch strings]}), scored in a
    fresh process under one of :data:`SETTINGS`, or several joined by ``" + "`` (their switches
    together), with the reproduction's protocol: a batch of 64 from ``data``, seed 0, the network
    after ``torch.manual_seed(0)``."""
    env = dict(os.environ)
    for name in setting.split(" + "):
        env.update(SETTINGS[name])
    job = json.dumps({"data": data, "proxies": proxies, "cells": cells})
    done = subprocess.run([sys.executable, "-c", _WORKER, job], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{setting}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return json.loads(done.stdout)
