"""NAS-Bench-101 importers on real bytes: TFRecord, community HDF5 and the subset CSV.

The files are written in the exact official layouts by ``nas.testing.nb101`` (independently of
the reader), filled from the real 1,000-cell CSV in ``../shared/data/nb101``.
"""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from nas.benchmarks import load_source
from nas.benchmarks.nb101 import (
    OP_PAD,
    decode_model_metrics,
    import_nb101_hdf5,
    import_nb101_subset_csv,
    import_nb101_tfrecord,
    masked_crc32c,
    read_tfrecords,
)
from nas.benchmarks.table import BenchmarkTable, write_table
from nas.errors import BenchmarkError
from nas.testing.nb101 import (
    DROPPED,
    EPOCHS,
    OP_CODE,
    encode_evaluation,
    encode_model_metrics,
    load_csv_rows,
    make_tfrecord,
    nb101_record,
    pb_bytes,
    pb_double,
    pb_key,
    pb_varint,
    run_values,
    tf_masked_crc,
    write_nasbench_hdf5,
    write_tfrecord,
)

from conftest import SHARED_DATA, require

CSV_PATH = SHARED_DATA / "nb101" / "nb101_subset_1000.csv"


# ============================== fixtures =======================================================
@pytest.fixture(scope="module")
def rows():
    return load_csv_rows(require(CSV_PATH))  # skips, or fails under CI, when the shared data is missing


@pytest.fixture(scope="module")
def full_table(rows, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb101_full")
    record_file = tmp / "nasbench_full.tfrecord"
    payloads = make_tfrecord(record_file, rows)
    data = import_nb101_tfrecord(record_file)
    table = BenchmarkTable(write_table(data, tmp / "nb101.h5"))
    return record_file, payloads, data, table


# ============================== TFRecord =======================================================
def test_crc32c_standard_vector_and_mask():
    import crc32c

    assert crc32c.crc32c(b"123456789") == 0xE3069283
    c = 0xE3069283
    expected = ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) % 2**32
    assert masked_crc32c(b"123456789") == expected == tf_masked_crc(b"123456789")


def test_read_tfrecords_yields_the_written_records(tmp_path):
    payloads = [b"", b"x", bytes(range(256)) * 40, "é".encode()]
    path = tmp_path / "a.tfrecord"
    write_tfrecord(path, payloads)
    assert list(read_tfrecords(path)) == payloads
    assert list(read_tfrecords(path, verify=False)) == payloads


def test_decode_model_metrics_skips_unknown_fields():
    evals = [
        encode_evaluation(1.0, 2.0, 0.3, 0.4, 0.5, checkpoint="ck", extra=pb_key(9, 0) + pb_varint(300)),
        encode_evaluation(108.0, 9.5, 0.9, 0.8, 0.7),
    ]
    m = decode_model_metrics(encode_model_metrics(evals, 1234567, 42.0) + pb_bytes(11, b"zz"))
    assert m["trainable_parameters"] == 1234567 and m["total_time"] == 42.0
    assert m["evaluation_data"][0] == {
        "current_epoch": 1.0,
        "training_time": 2.0,
        "train_accuracy": 0.3,
        "validation_accuracy": 0.4,
        "test_accuracy": 0.5,
        "checkpoint_path": "ck",
    }
    assert m["evaluation_data"][1]["validation_accuracy"] == 0.8


def test_tfrecord_full_round_trip(rows, full_table):
    record_file, payloads, data, table = full_table
    assert sum(1 for _ in read_tfrecords(record_file)) == len(payloads) == 1000 * 12 - len(DROPPED)
    assert len(table) == 1000 and table.keys == sorted(r["hash"] for r in rows)
    assert (table.indices == -1).all()
    assert table.combinations() == sorted(("cifar10", s, e) for s in ("train", "valid", "test") for e in EPOCHS)
    assert table.source("cifar10", "train", 108) == "nasbench tfrecord final train_accuracy @108"
    assert table.attrs["records"] == str(len(payloads))
    assert table.attrs["importer"] == "nas.benchmarks.nb101.import_nb101_tfrecord"
    assert table.attrs["source"] == str(record_file.resolve())

    for i in list(range(0, 1000, 97)) + [3, 5]:
        row = rows[i]
        for e in EPOCHS:
            seeds = [s for s in range(3) if (i, e, s) not in DROPPED]
            runs = [run_values(row, e, s) for s in seeds]
            for split, field in (("train", "train"), ("valid", "valid"), ("test", "test")):
                values = np.array([100.0 * r[field] for r in runs])
                got = {
                    stat: table.accuracy(row["hash"], dataset="cifar10", split=split, epochs=e, stat=stat)
                    for stat in ("mean", "std", "n_seeds")
                }
                assert got["n_seeds"] == len(seeds)
                assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
                assert got["std"] == pytest.approx(values.std(), rel=1e-9, abs=1e-12)
        assert table.cost(row["hash"], "params", dataset="cifar10") == row["params"]
        times = [run_values(row, 108, s)["time"] for s in range(3) if (i, 108, s) not in DROPPED]
        assert table.cost(row["hash"], "train_time", dataset="cifar10") == pytest.approx(np.mean(times))
    # per-seed offsets are known: the valid std of a full cell is std(-1, 0, 2) percent
    assert table.accuracy(rows[0]["hash"], dataset="cifar10", split="valid", epochs=108, stat="std") == pytest.approx(
        np.std([-1.0, 0.0, 2.0]), rel=1e-9
    )


def test_tfrecord_graph_round_trip(rows, full_table):
    _, _, _, table = full_table
    by_hash = {r["hash"]: r for r in rows}
    adjacency, ops, nv = table.extras["adjacency"], table.extras["ops"], table.extras["num_vertices"]
    assert adjacency.shape == (1000, 7, 7) and adjacency.dtype == np.int8
    assert ops.shape == (1000, 7) and ops.dtype == np.int8 and nv.dtype == np.int8
    for k, key in enumerate(table.keys):
        row = by_hash[key]
        assert nv[k] == row["n"]
        assert (adjacency[k] == row["matrix"]).all()
        assert ops[k].tolist() == [OP_CODE[o] for o in row["ops"]] + [OP_PAD] * (7 - row["n"])


def test_tfrecord_only108(rows, tmp_path):
    path = tmp_path / "nasbench_only108.tfrecord"
    make_tfrecord(path, rows[:40], epochs=(108,))
    table = BenchmarkTable(write_table(import_nb101_tfrecord(path, progress=True), tmp_path / "t.h5"))
    assert table.epochs() == [108] and len(table) == 40
    assert table.attrs["epochs"] == "108" and table.attrs["records"] == str(40 * 3 - 2)
    row = rows[7]
    expected = np.mean([100 * run_values(row, 108, s)["test"] for s in range(3)])
    assert table.accuracy(row["hash"], dataset="cifar10", split="test", epochs=108) == pytest.approx(
        expected, rel=1e-12
    )
    assert table.accuracy(rows[5]["hash"], dataset="cifar10", split="valid", epochs=108, stat="n_seeds") == 1


# ============================== community HDF5 =================================================
@pytest.mark.parametrize("percent", [False, True])
def test_hdf5_round_trip(rows, tmp_path, percent):
    path = tmp_path / "nasbench.hdf5"
    metrics = write_nasbench_hdf5(path, rows, percent=percent)
    data = import_nb101_hdf5(path)
    table = BenchmarkTable(write_table(data, tmp_path / "t.h5"))
    assert len(table) == 1000 and table.keys == sorted(r["hash"] for r in rows)
    assert table.epochs() == list(EPOCHS) and table.splits() == ["test", "train", "valid"]
    position = {r["hash"]: i for i, r in enumerate(rows)}
    for k in range(0, 1000, 83):
        key = table.keys[k]
        i = position[key]
        for ei, e in enumerate(EPOCHS):
            for col, split in ((1, "train"), (2, "valid"), (3, "test")):
                seeds = metrics[i, ei, :, 1, col].astype(np.float64) * (1.0 if percent else 100.0)
                assert table.accuracy(key, dataset="cifar10", split=split, epochs=e) == pytest.approx(
                    seeds.mean(), rel=1e-12
                )
                assert table.accuracy(key, dataset="cifar10", split=split, epochs=e, stat="std") == pytest.approx(
                    seeds.std(), rel=1e-9, abs=1e-12
                )
        assert table.cost(key, "params", dataset="cifar10") == rows[i]["params"]
        assert table.cost(key, "train_time", dataset="cifar10") == pytest.approx(
            metrics[i, 3, :, 1, 0].astype(np.float64).mean()
        )
        n = rows[i]["n"]
        assert table.extras["num_vertices"][k] == n
        assert table.extras["ops"][k].tolist() == [OP_CODE[o] for o in rows[i]["ops"]] + [OP_PAD] * (7 - n)
        assert (table.extras["adjacency"][k] == rows[i]["matrix"]).all()


# ============================== subset CSV ======================================================
def test_subset_csv_round_trip_exact(rows, tmp_path):
    table = BenchmarkTable(write_table(import_nb101_subset_csv(CSV_PATH), tmp_path / "t.h5"))
    assert len(table) == 1000 and table.combinations() == [("cifar10", "valid", e) for e in EPOCHS]
    by_hash = {r["hash"]: r for r in rows}
    for e in EPOCHS:
        column = table.column(dataset="cifar10", split="valid", epochs=e)
        expected = np.array([float(by_hash[k]["raw"][f"val_acc_{e}ep"]) * 100 for k in table.keys])
        assert column.dtype == np.float64 and (column == expected).all()
        assert (table.column(dataset="cifar10", split="valid", epochs=e, stat="n_seeds") == 1).all()
        assert (table.column(dataset="cifar10", split="valid", epochs=e, stat="std") == 0).all()
    for k, key in enumerate(table.keys):
        row = by_hash[key]
        assert table.cost(key, "params", dataset="cifar10") == row["params"]
        assert table.cost(key, "train_time", dataset="cifar10") == row["time108"]
        assert (table.extras["adjacency"][k] == row["matrix"]).all()
        assert table.extras["ops"][k].tolist() == [OP_CODE[o] for o in row["ops"]] + [OP_PAD] * (7 - row["n"])
    assert table.attrs["importer"] == "nas.benchmarks.nb101.import_nb101_subset_csv"


# ============================== bad input =======================================================
def _one_line_error(excinfo, path: Path, *words: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize(
    "importer", [import_nb101_tfrecord, import_nb101_hdf5, import_nb101_subset_csv, lambda p: list(read_tfrecords(p))]
)
def test_missing_file(tmp_path, importer):
    path = tmp_path / "nope.bin"
    with pytest.raises(BenchmarkError) as excinfo:
        importer(path)
    _one_line_error(excinfo, path, "does not exist")


def test_random_bytes_are_not_a_tfrecord(tmp_path):
    path = tmp_path / "random.tfrecord"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_tfrecord(path)
    _one_line_error(excinfo, path, "not a TFRecord", "byte offset 0")
    with pytest.raises(BenchmarkError) as excinfo:  # without checksums, the length gives it away
        list(read_tfrecords(path, verify=False))
    _one_line_error(excinfo, path, "not a TFRecord", "byte offset 0")
    tiny = tmp_path / "tiny.tfrecord"
    tiny.write_bytes(b"hello")
    with pytest.raises(BenchmarkError) as excinfo:
        list(read_tfrecords(tiny))
    _one_line_error(excinfo, tiny, "not a TFRecord")


def test_corrupt_crc_and_truncation(tmp_path):
    path = tmp_path / "c.tfrecord"
    payloads = [b'{"a": %d}' % i for i in range(5)]
    offsets = write_tfrecord(path, payloads)
    raw = bytearray(path.read_bytes())
    raw[offsets[3] + 12 + 2] ^= 0x01  # one bit of record 3's data
    bad = tmp_path / "bad_data_crc.tfrecord"
    bad.write_bytes(bytes(raw))
    with pytest.raises(BenchmarkError) as excinfo:
        list(read_tfrecords(bad))
    _one_line_error(excinfo, bad, "corrupt", "data checksum", f"byte offset {offsets[3]}")

    raw = bytearray(path.read_bytes())
    raw[offsets[2] + 8] ^= 0xFF  # record 2's length checksum
    bad.write_bytes(bytes(raw))
    with pytest.raises(BenchmarkError) as excinfo:
        list(read_tfrecords(bad))
    _one_line_error(excinfo, bad, "corrupt", "length checksum", f"byte offset {offsets[2]}")

    short = tmp_path / "short.tfrecord"
    short.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BenchmarkError) as excinfo:
        list(read_tfrecords(short))
    _one_line_error(excinfo, short, "truncated", f"byte offset {offsets[4]}")
    short.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(BenchmarkError) as excinfo:
        list(read_tfrecords(short))
    _one_line_error(excinfo, short, "truncated", f"byte offset {path.stat().st_size}")


@pytest.mark.parametrize(
    "payload, words",
    [
        (b"[1, 2]", ("record 2", "JSON list")),
        (b'{"hash": 1}', ("record 2", "JSON list")),
        (b"\xff\xfe not json", ("record 2", "not UTF-8 JSON")),
        (b'["abc", "108", "0100", "input,output", ""]', ("record 2", "wrong types")),
        (b'["abc", 108, "0100", "input,output", "!!!"]', ("record 2", "unreadable metrics")),
        (b'["abc", 108, "010", "input,output", ""]', ("record 2", "no evaluation_data")),
    ],
)
def test_bad_records(rows, tmp_path, payload, words):
    path = tmp_path / "bad.tfrecord"
    good = make_tfrecord(tmp_path / "g.tfrecord", rows[:1], epochs=(108,), shuffle=False)
    offsets = write_tfrecord(path, [good[0], payload, good[1]])
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_tfrecord(path)
    _one_line_error(excinfo, path, *words, f"byte offset {offsets[1]}")


def test_bad_graph_and_protobuf(rows, tmp_path):
    metrics = base64.b64encode(encode_model_metrics([encode_evaluation(108.0, 1.0, 0.5, 0.5, 0.5)], 10, 1.0)).decode()
    cases = [
        (["abc", 108, "010", "input,output", metrics], "not a square"),
        (["abc", 108, "0100", "input,conv5x5", metrics], "unknown operation"),
        (["abc", 108, "0100", "input,conv3x3-bn-relu,output", metrics], "3 operations for 2 vertices"),
        (["abc", 108, "0100", "input,output", base64.b64encode(b"\x0a\x05\x09").decode()], "unreadable metrics"),
    ]
    for record, words in cases:
        path = tmp_path / "g.tfrecord"
        write_tfrecord(path, [json.dumps(record).encode()])
        with pytest.raises(BenchmarkError) as excinfo:
            import_nb101_tfrecord(path)
        _one_line_error(excinfo, path, "record 1", words)


def test_empty_tfrecord(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    assert list(read_tfrecords(path)) == []
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_tfrecord(path)
    _one_line_error(excinfo, path, "no records")


def test_hdf5_bad_input(rows, tmp_path):
    path = tmp_path / "nasbench.hdf5"
    write_nasbench_hdf5(path, rows[:10], drop=("metrics",))
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_hdf5(path)
    _one_line_error(excinfo, path, "lacks the dataset(s) metrics")

    with h5py.File(path, "a") as f:
        f.create_dataset("metrics", data=np.zeros((10, 4, 3, 4), dtype=np.float32))
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_hdf5(path)
    _one_line_error(excinfo, path, "dataset metrics", "(10, 4, 3, 4)")

    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_hdf5(junk)
    _one_line_error(excinfo, junk, "not an HDF5 file")


def test_csv_bad_input(rows, tmp_path):
    lines = CSV_PATH.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("val_acc_36ep")

    path = tmp_path / "missing_column.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        for row in csv.reader(lines[:5]):
            writer.writerow(row[:drop] + row[drop + 1 :])
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_subset_csv(path)
    _one_line_error(excinfo, path, "lacks the column(s) val_acc_36ep")

    path = tmp_path / "bad_value.csv"
    rows_ = list(csv.reader(lines[:5]))
    rows_[3][header.index("params")] = "many"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows_)
    with pytest.raises(BenchmarkError) as excinfo:
        import_nb101_subset_csv(path)
    _one_line_error(excinfo, path, "line 4", "params", "'many'")


def test_importer_reads_unusual_but_valid_protobufs(tmp_path):
    """Fields out of order, unknown fields and a second params field take the generic decoder."""
    final = (
        pb_double(5, 0.71)
        + pb_double(4, 0.72)
        + pb_bytes(6, b"ck")
        + pb_double(3, 0.9)
        + pb_double(2, 100.0)
        + pb_double(1, 108.0)
        + pb_key(12, 0)
        + pb_varint(1)
    )
    halfway = encode_evaluation(54.0, 50.0, 0.5, 0.5, 0.5)
    metrics = (
        pb_key(2, 0)
        + pb_varint(5)
        + pb_bytes(1, halfway)
        + pb_key(7, 5)
        + b"abcd"
        + pb_bytes(1, final)
        + pb_double(3, 1.0)
        + pb_key(2, 0)
        + pb_varint(4242)
    )
    record = ["f" * 32, 108, "0100", "input,output", base64.b64encode(metrics).decode()]
    path = tmp_path / "u.tfrecord"
    write_tfrecord(path, [json.dumps(record).encode()])
    data = import_nb101_tfrecord(path)
    assert data.keys == ["f" * 32]
    assert data.costs[("cifar10", "params")][0] == 4242  # the last value of a repeated scalar wins
    assert data.costs[("cifar10", "train_time")][0] == 100.0
    assert data.metrics[("cifar10", "valid", 108)]["mean"][0] == pytest.approx(72.0, rel=1e-12)
    assert data.metrics[("cifar10", "test", 108)]["mean"][0] == pytest.approx(71.0, rel=1e-12)
    assert data.extras["num_vertices"][0] == 2 and data.extras["ops"][0].tolist() == [-1, -2] + [OP_PAD] * 5


def test_more_than_three_repeats_widen_the_seed_axis(tmp_path):
    def record(key, epochs, valid):
        metrics = encode_model_metrics([encode_evaluation(float(epochs), 1.0, 0.5, valid, 0.5)], 7, 1.0)
        return nb101_record(key, epochs, [[0, 1], [0, 0]], ["input", "output"], metrics)

    path = tmp_path / "r.tfrecord"
    write_tfrecord(path, [record("a" * 32, 108, v) for v in (0.1, 0.2, 0.3, 0.4)] + [record("b" * 32, 4, 0.5)])
    data = import_nb101_tfrecord(path)
    col = data.metrics[("cifar10", "valid", 108)]
    assert col["n_seeds"].tolist() == [4, 0] and col["mean"][0] == pytest.approx(25.0, rel=1e-12)
    assert data.metrics[("cifar10", "valid", 4)]["n_seeds"].tolist() == [0, 1]
    assert np.isnan(col["mean"][1])


def _early_cells(count: int = 400):
    """(hash, cell) pairs from the start of the enumeration (small cells: found in a second)."""
    import itertools

    from nas.searchspaces.nb101 import iter_hashed_cells

    return list(itertools.islice(iter_hashed_cells(), count))


def _all_test_rows(shared_data, wanted: set[str]) -> list[dict]:
    import gzip

    with gzip.open(require(shared_data / "nb101" / "nb101_all_test.csv.gz"), "rt", newline="") as f:
        return [r for r in csv.DictReader(f) if r["hash"] in wanted]


def test_a_hash_keyed_gzip_table_joins_to_the_space(shared_data, tmp_path):
    import gzip

    from nas.searchspaces import get_space

    cells = dict(_early_cells()[100:140])
    rows = _all_test_rows(shared_data, set(cells))
    assert len(rows) == 40  # every cell of the space is in the full table
    path = tmp_path / "some.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["hash", "params", "hp108_cifar10_test"])
        writer.writeheader()
        writer.writerows(rows)
    data = load_source("nb101", str(path))
    space = get_space("nb101")
    for i, key in enumerate(data.keys):
        dim = int(data.extras["num_vertices"][i])
        assert data.extras["adjacency"][i][:dim, :dim].tolist() == [list(r) for r in cells[key].matrix]
        assert data.costs[("cifar10", "params")][i] == space.num_params(cells[key])
    row = next(r for r in rows if r["hash"] == data.keys[0])
    assert data.metrics[("cifar10", "test", 108)]["mean"][0] == float(row["hp108_cifar10_test"])


def test_a_hash_that_is_no_cell_or_wrong_parameters_is_an_error_naming_the_line(tmp_path):
    from nas.benchmarks.nb101 import import_nb101_hash_csv
    from nas.searchspaces import get_space

    cells = _early_cells(50)
    (h0, c0), (h1, _) = cells[10], cells[11]
    ours = get_space("nb101").num_params(c0)
    path = tmp_path / "x.csv"
    path.write_text(f"hash,params,hp108_cifar10_test\n{h0},{ours},90\n{'f' * 32},1,90\n{h1},,91\n")
    with pytest.raises(BenchmarkError, match=r"line 3: hash f{32} is not a NAS-Bench-101 cell \(1 such rows\)"):
        import_nb101_hash_csv(path, cells=cells)
    path.write_text(f"hash,params,hp108_cifar10_test\n{h0},{ours + 1},90\n")
    with pytest.raises(
        BenchmarkError, match=f"line 2: {ours + 1:,} parameters recorded, {ours:,} in our network of every graph"
    ):
        import_nb101_hash_csv(path, cells=cells)
    path.write_text("hash,params,hp108_cifar10_test\nnot-a-hash,1,90\n")
    with pytest.raises(BenchmarkError, match="line 2: hash 'not-a-hash' is not a module hash"):
        import_nb101_hash_csv(path, cells=cells)


def test_the_vertex_order_with_the_recorded_parameters_is_found():
    # nb101_all_test.csv.gz line 12: the enumeration's order of this graph gives 3,079,371 parameters;
    # the benchmark's (the output's uneven channel split goes to other vertices first) 3,078,206
    from nas.benchmarks.nb101 import _order_with_params
    from nas.searchspaces import get_space
    from nas.searchspaces.nb101 import make_cell

    space = get_space("nb101")
    matrix = [[0, 1, 1, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]  # fmt: skip
    ops = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "maxpool3x3", "output"]
    cell = make_cell(matrix, ops)
    assert cell.module_hash == "0001a2f6c8977346ccd12fa0c435bf42" and space.num_params(cell) == 3_079_371
    found = _order_with_params(space, cell, 3_078_206)
    assert found is not None and found.module_hash == cell.module_hash
    assert space.num_params(found) == 3_078_206
    assert _order_with_params(space, cell, 3_078_207) is None
