"""Kendall tau against NATS-TSS CIFAR-10 test accuracy of AZ-NAS version 1 and version 2 scores on the
cells the score store holds under both (CIFAR-10 network, Gaussian inputs), and tau between the two
versions (the draw noise). Reads $NAS_HOME/scores.db and the reproduction's nats-tss table.

    python scripts/az_versions.py
"""

import json
import os
import sqlite3

import numpy as np
from scipy.stats import kendalltau

from nas.benchmarks import open_table
from nas.searchspaces import get_space

space = get_space("nats-tss")
tab = open_table(os.path.expanduser(os.environ.get("NAS_HOME", "~/.cache/zcnas")) + "/benchmarks/reproduce/nats-tss.h5")
db = sqlite3.connect(os.path.expanduser(os.environ.get("NAS_HOME", "~/.cache/zcnas")) + "/scores.db")
protos = {d: json.loads(p) for d, p in db.execute("SELECT digest, protocol FROM protocols")}
for comp in ("az_expressivity", "az_progressivity", "az_trainability"):
    by = {}
    for d, p in protos.items():
        if (
            p["proxy"]["name"] == comp
            and p["inputs"].get("dataset") == "cifar10"
            and p.get("space") == "nats-tss"
            and p["proxy"]["params"].get("inputs", "gaussian") == "gaussian"
        ):
            v = p["proxy"]["version"]
            by[v] = dict(db.execute("SELECT arch, score FROM scores WHERE protocol=? AND status='ok'", (d,)).fetchall())
    common = sorted(set(by.get("1", {})) & set(by.get("2", {})))
    a1 = np.array([by["1"][k] for k in common])
    a2 = np.array([by["2"][k] for k in common])
    acc = tab.accuracies([space.resolve(k) for k in common], dataset="cifar10", split="test", epochs=200)
    ok = np.isfinite(a1) & np.isfinite(a2) & np.isfinite(acc)
    print(
        comp,
        "cells",
        ok.sum(),
        "tau v1",
        round(kendalltau(a1[ok], acc[ok]).statistic, 4),
        "tau v2",
        round(kendalltau(a2[ok], acc[ok]).statistic, 4),
        "tau(v1,v2)",
        round(kendalltau(a1[ok], a2[ok]).statistic, 4),
    )
