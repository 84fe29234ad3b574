"""The `nas` command line: outputs, JSON, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.cli import main

from conftest import require

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_spaces(capsys):
    code, out, _ = run(capsys, "spaces", "--json")
    spaces = {s["name"]: s for s in json.loads(out)}
    assert code == 0 and spaces["nats-tss"]["size"] == 15625 and spaces["nats-sss"]["size"] == 32768
    assert spaces["nb101"]["size"] == 423624


def test_import_info_and_arch(capsys, shared_data):
    nb201 = require(shared_data / "nb201" / "nb201_accuracies.csv")
    code, out, _ = run(capsys, "bench", "import", "nats-tss", str(nb201), "--epochs", "200", "--quiet")
    assert code == 0 and "imported 15,625 nats-tss architectures" in out
    code, out, _ = run(capsys, "bench", "info", "nats-tss", "--json")
    info = json.loads(out)
    assert info["rows"] == 15625 and info["load_seconds"] < 1.0
    best = {(e["dataset"], e["split"], e["epochs"]): e["best"] for e in info["entries"]}
    assert best[("cifar10", "test", 200)] == 94.3733
    code, out, _ = run(capsys, "arch", "nats-tss", "9930", "--json")
    arch = json.loads(out)
    assert arch["arch"] == BEST and arch["index"] == 9930 and arch["params"] == 1288506
    import csv

    with open(nb201, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["index"] == "9930")
    assert arch["recorded"]["accuracy"]["cifar10/test/200"]["mean"] == float(row["cifar10_test"])
    code, out, _ = run(capsys, "arch", "nats-tss", BEST)
    assert code == 0 and "index     9930" in out and "cifar10/test/200" in out


def test_arch_without_table(capsys):
    code, out, _ = run(capsys, "arch", "nats-tss", "0")
    assert code == 0 and "no benchmark table imported" in out and "129,306" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["arch", "nats-tss", "|nor_conv_3x3~0|+|bad~0|"], "nats-tss: cannot parse"),
        (["arch", "nats-tss", "15625"], "index 15625 is out of range"),
        (["arch", "imagenet", "0"], "unknown search space 'imagenet'"),
        (["bench", "import", "nats-tss", "/no/such/file.pth"], "does not exist"),
        (["bench", "info", "nats-sss"], "no nats-sss table"),
    ],
)
def test_bad_input_is_one_line_error(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("nas: error: ") and message in err and err.count("\n") == 1


def test_console_script_help():
    """The installed entry point runs and every command has examples in its help."""
    for argv in (["--help"], ["bench", "import", "--help"], ["arch", "--help"]):
        result = subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout and "nas arch nats-tss 9930" in result.stdout


def test_nb101_hash_through_imported_table(capsys, shared_data):
    subset = require(shared_data / "nb101" / "nb101_subset_1000.csv")
    with open(subset, newline="") as f:
        import csv

        row = next(csv.DictReader(f))
    assert run(capsys, "bench", "import", "nb101", str(subset), "--quiet")[0] == 0
    code, out, _ = run(capsys, "arch", "nb101", row["hash"], "--json")
    arch = json.loads(out)
    assert code == 0 and arch["key"] == row["hash"] and arch["params"] == int(row["params"])
    assert arch["recorded"]["accuracy"]["cifar10/valid/108"]["mean"] == float(row["val_acc_108ep"]) * 100
    code, _, err = run(capsys, "arch", "nb101", "0123456789abcdef0123456789abcdef")
    assert code == 2 and "is not in the imported table" in err


def test_makefile_demo_commands_parse():
    """Every `nas` line of `make demo` is a valid command (a renamed flag must fail here, not on
    a newcomer's first command)."""
    import re
    import shlex
    from pathlib import Path

    from nas.cli import build_parser

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*:=\s*(.+)$", makefile, re.M))
    block = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in block.splitlines() if "/nas " in line]
    assert commands
    for line in commands:
        line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), line)
        argv = shlex.split(line.split("/nas ", 1)[1])
        build_parser().parse_args(argv)  # exits (SystemExit) on an unknown flag
