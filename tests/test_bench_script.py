"""The proxy timing script (``make bench``): it times any registered space, not only NATS-TSS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_proxies.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "gaussian", "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_times_the_cells_of_another_space(tmp_path):
    out = tmp_path / "bench.json"
    done = run_bench("--space", "nats-sss", "--cells", "2", "--proxy", "params,synflow", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "nats-sss, 2 cells" in done.stdout
    report = json.loads(out.read_text())
    assert report["space"] == "nats-sss" and report["cells"] == 2
    assert {row["proxy"] for row in report["proxies"]} == {"params", "synflow"}
    assert all(row["seconds"] > 0 for row in report["proxies"])
    assert report["forward_backward_s"] > report["forward_s"] > 0


def test_authors_timings_are_refused_outside_nats_tss(tmp_path):
    reference = tmp_path / "peer.csv"
    reference.write_text("index,t_fwd\n0,0.1\n")
    done = run_bench("--space", "nb101", "--cells", "1", "--proxy", "params", "--reference", str(reference))
    assert done.returncode == 2
    assert "--reference" in done.stderr and "nats-tss" in done.stderr


def test_a_cell_count_it_cannot_time_is_a_one_line_error():
    for space, cells in (("nats-sss", "0"), ("nats-tss", "501")):
        done = run_bench("--space", space, "--cells", cells, "--proxy", "params")
        assert done.returncode == 2
        assert f"--cells {cells}" in done.stderr and "Traceback" not in done.stderr
