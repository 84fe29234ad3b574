"""``nas bench import ... --merge``: two sources of one space in one table, the newer import winning
where both record a value (``nas.benchmarks.merge``)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.benchmarks import BenchmarkTable, import_benchmark
from nas.benchmarks.merge import merge_tables
from nas.benchmarks.table import TableData
from nas.errors import BenchmarkError

from conftest import require


def _sources(shared_data):
    return (
        str(require(shared_data / "nats_sss" / "nats_sss_hp90_valid.csv.gz")),
        str(require(shared_data / "nats" / "NATS-sss-v1_0-50262-simple")),
    )


def test_official_files_merged_after_the_csv_win_and_add_their_budgets(shared_data, tmp_path):
    csv_file, official = _sources(shared_data)
    path = tmp_path / "sss.h5"
    import_benchmark("nats-sss", csv_file, epochs=90, out=path)
    alone = BenchmarkTable(import_benchmark("nats-sss", official, out=tmp_path / "official.h5"))
    import_benchmark("nats-sss", official, out=path, merge=True)
    merged = BenchmarkTable(path)
    assert len(merged) == 32768  # the CSV's rows stay
    assert ("cifar10", "test", 90) in merged.combinations()  # the official budgets come in
    for key in alone.keys:  # where both record one, the official value (the newer import) is the table's
        for dataset in ("cifar10", "cifar100", "imagenet16-120"):
            assert merged.accuracy(key, dataset=dataset, split="valid", epochs=90) == alone.accuracy(
                key, dataset=dataset, split="valid", epochs=90
            )
    test = merged.column(dataset="cifar10", split="test", epochs=90)
    assert np.isfinite(test).sum() == len(alone)  # only the official rows have test accuracies
    assert "(wins)" in merged.source("cifar10", "valid", 90)


def test_the_csv_merged_after_the_official_files_wins_instead(shared_data, tmp_path):
    csv_file, official = _sources(shared_data)
    path = tmp_path / "sss.h5"
    alone = BenchmarkTable(import_benchmark("nats-sss", official, out=path))
    text = BenchmarkTable(import_benchmark("nats-sss", csv_file, epochs=90, out=tmp_path / "csv.h5"))
    import_benchmark("nats-sss", csv_file, epochs=90, out=path, merge=True)
    merged = BenchmarkTable(path)
    assert len(merged) == 32768 and merged.keys[: len(alone)] == alone.keys  # the existing rows first
    key = alone.keys[0]
    assert merged.accuracy(key, dataset="cifar10", split="valid", epochs=90) == text.accuracy(
        key, dataset="cifar10", split="valid", epochs=90
    )
    assert merged.accuracy(key, dataset="cifar10", split="test", epochs=90) == alone.accuracy(
        key, dataset="cifar10", split="test", epochs=90
    )


def _data(keys, values, space="nats-sss"):
    data = TableData(space=space, keys=list(keys), indices=np.arange(len(keys)))
    data.add_metric(("cifar10", "valid", 90), np.array(values, dtype=float), "test source")
    return data


def test_a_missing_value_of_the_new_source_never_erases_a_recorded_one():
    merged, report = merge_tables(_data("ab", [70.0, 80.0]), _data("bc", [np.nan, 90.0]))
    assert merged.keys == ["a", "b", "c"] and report.rows_added == 1
    assert merged.metrics[("cifar10", "valid", 90)]["mean"].tolist() == [70.0, 80.0, 90.0]
    assert report.values_changed == 0 and "1 rows added" in report.line()
    merged, report = merge_tables(_data("ab", [70.0, 80.0]), _data("b", [81.0]))
    assert merged.metrics[("cifar10", "valid", 90)]["mean"].tolist() == [70.0, 81.0]
    assert report.values_changed == 1 and report.largest_change == pytest.approx(1.0)


def test_tables_of_two_spaces_do_not_merge():
    with pytest.raises(BenchmarkError, match="cannot merge a nats-tss table into a nats-sss table"):
        merge_tables(_data("a", [1.0]), _data("a", [1.0], space="nats-tss"))
