"""Writers of NAS-Bench-101 files in the exact official layouts, for tests and benchmarks.

TFRecord framing with masked CRC32C, JSON records, hand-encoded ``ModelMetrics`` protobufs, and
the community ``nasbench.hdf5`` datasets, filled from a CSV of real cells in the layout of
``nb101_subset_1000.csv`` (the shared data's 1,000-cell subset). They are written independently
of the reader (:mod:`nas.benchmarks.nb101`) so that a round trip checks the format, not only
self-consistency. ``scripts/bench_import.py`` builds its full-size synthetic file with them.
"""

from __future__ import annotations

import base64
import csv
import json
import struct
from pathlib import Path

import h5py
import numpy as np

EPOCHS = (4, 12, 36, 108)
OP_CODE = {"input": -1, "output": -2, "conv3x3-bn-relu": 0, "conv1x1-bn-relu": 1, "maxpool3x3": 2}


def tf_masked_crc(data: bytes) -> int:
    import crc32c

    c = crc32c.crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", tf_masked_crc(length)) + data + struct.pack("<I", tf_masked_crc(data))


def write_tfrecord(path: Path, payloads) -> list[int]:
    """Write records; return the byte offset of each."""
    offsets = []
    with open(path, "wb") as f:
        for data in payloads:
            offsets.append(f.tell())
            f.write(tfrecord_frame(data))
    return offsets


def pb_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def pb_key(field: int, wire: int) -> bytes:
    return pb_varint((field << 3) | wire)


def pb_double(field: int, value: float) -> bytes:
    return pb_key(field, 1) + struct.pack("<d", value)


def pb_bytes(field: int, value: bytes) -> bytes:
    return pb_key(field, 2) + pb_varint(len(value)) + value


def encode_evaluation(epoch, time_s, train, valid, test, checkpoint="", extra=b"") -> bytes:
    msg = pb_double(1, epoch) + pb_double(2, time_s) + pb_double(3, train) + pb_double(4, valid) + pb_double(5, test)
    if checkpoint:
        msg += pb_bytes(6, checkpoint.encode())
    return msg + extra


def encode_model_metrics(evaluations: list[bytes], params: int, total_time: float) -> bytes:
    msg = b"".join(pb_bytes(1, e) for e in evaluations)
    return msg + pb_key(2, 0) + pb_varint(params) + pb_double(3, total_time)


def nb101_record(module_hash, epochs, matrix, ops, metrics: bytes) -> bytes:
    dim = len(ops)
    bits = "".join(str(int(matrix[i][j])) for i in range(dim) for j in range(dim))
    row = [module_hash, epochs, bits, ",".join(ops), base64.b64encode(metrics).decode("ascii")]
    return json.dumps(row).encode("utf-8")


def load_csv_rows(path: str | Path) -> list[dict]:
    """The cells of a subset CSV (``nb101_subset_1000.csv``'s layout) as the writers take them."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            n = int(r["num_vertices"])
            matrix = np.zeros((7, 7), dtype=np.int8)  # the CSV's matrices are n x n
            small = np.array(json.loads(r["adjacency"]), dtype=np.int8)
            matrix[: len(small), : len(small)] = small
            rows.append(
                {
                    "hash": r["hash"],
                    "n": n,
                    "matrix": matrix,
                    "ops": json.loads(r["ops"]),
                    "params": int(r["params"]),
                    "time108": float(r["train_time_108ep_s"]),
                    "val": {e: float(r[f"val_acc_{e}ep"]) for e in EPOCHS},
                    "raw": r,
                }
            )
    return rows


SEED_OFFSETS = (-0.01, 0.0, 0.02)


def run_values(row: dict, epochs: int, seed: int) -> dict[str, float]:
    """Known final values of one synthetic run: the CSV's accuracy plus a per-seed offset."""
    v = row["val"][epochs]
    off = SEED_OFFSETS[seed]
    return {
        "time": row["time108"] * epochs / 108 + (seed - 1) * 2.0,
        "train": 0.5 * (1 + v) + off / 2,
        "valid": v + off,
        "test": v - 0.004 + off,
    }


#: (hash index, epochs, seed) runs the writer leaves out, to check n_seeds < 3 and NaN handling.
DROPPED = {(3, 4, 2), (5, 108, 0), (5, 108, 1)}


def make_tfrecord(path: Path, rows: list[dict], epochs=EPOCHS, shuffle=True) -> list[bytes]:
    payloads = []
    for i, row in enumerate(rows):
        for e in epochs:
            for seed in range(3):
                if (i, e, seed) in DROPPED:
                    continue
                v = run_values(row, e, seed)
                evaluations = [
                    encode_evaluation(0.0, 0.0, 0.1, 0.1, 0.1),  # step 0
                    encode_evaluation(
                        e / 2,
                        v["time"] / 2,
                        v["train"] / 2,
                        v["valid"] / 2,
                        v["test"] / 2,
                        extra=pb_key(9, 0) + pb_varint(7),
                    ),  # halfway
                    encode_evaluation(
                        float(e),
                        v["time"],
                        v["train"],
                        v["valid"],
                        v["test"],
                        checkpoint=f"/cns/model_dir/{row['hash']}/model.ckpt-{e}",
                        extra=pb_key(15, 5) + b"\x01\x02\x03\x04",
                    ),  # final
                ]
                metrics = encode_model_metrics(evaluations, row["params"], v["time"] * 1.1)
                payloads.append(nb101_record(row["hash"], e, row["matrix"], row["ops"], metrics))
    if shuffle:
        order = np.random.default_rng(0).permutation(len(payloads))
        payloads = [payloads[i] for i in order]
    write_tfrecord(path, payloads)
    return payloads


def write_nasbench_hdf5(path: Path, rows: list[dict], drop=(), percent=False):
    """The community nasbench.hdf5 layout, filled with the same synthetic runs."""
    n = len(rows)
    metrics = np.zeros((n, 4, 3, 2, 4), dtype=np.float32)
    ops = np.zeros((n, 7), dtype=np.int8)  # padded with 0, as the converter does
    adjacency = np.zeros((n, 7, 7), dtype=np.int8)
    scale = 100.0 if percent else 1.0
    for i, row in enumerate(rows):
        adjacency[i] = row["matrix"]
        ops[i, : row["n"]] = [OP_CODE[o] for o in row["ops"]]
        for k, e in enumerate(EPOCHS):
            for s in range(3):
                v = run_values(row, e, s)
                metrics[i, k, s, 1] = (v["time"], v["train"] * scale, v["valid"] * scale, v["test"] * scale)
                metrics[i, k, s, 0] = (v["time"] / 2, 0.3, 0.3, 0.3)
    with h5py.File(path, "w") as f:
        datasets = {
            "hash": np.array([r["hash"].encode() for r in rows]),
            "num_vertices": np.array([r["n"] for r in rows], dtype=np.int8),
            "trainable_parameters": np.array([r["params"] for r in rows], dtype=np.int32),
            "adjacency": adjacency,
            "operations": ops,
            "metrics": metrics,
        }
        for name, value in datasets.items():
            if name not in drop:
                f.create_dataset(name, data=value)
    return metrics
