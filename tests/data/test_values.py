"""Bounded memory and sane values: long ids, missing-id spellings, non-finite numbers,
non-positive weights and implausible timestamps each follow one documented rule."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tuijian.data import Columns, Vocabulary
from tuijian.data.dataset import build_dataset
from tuijian.data.prepare import prepare
from tuijian.data.sources import from_frame, load
from tuijian.data.sources.base import MAX_ID_LENGTH
from tuijian.data.split import fixed_split
from tuijian.errors import ConfigError, DataError

C = Columns


def csv(tmp_path: Path, *rows: str, header: str = "user_id,item_id,rating") -> Path:
    path = tmp_path / "log.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# ---- ids --------------------------------------------------------------------------------------
def test_vocabulary_keeps_ids_variable_length() -> None:
    """One long id must not widen every id: a fixed-width text array here would take 80 MB."""
    ids = [f"i{j}" for j in range(1_000)] + ["x" * 20_000]
    vocab = Vocabulary(ids, name=C.item_id)
    tracemalloc.start()
    try:
        looked_up = vocab.lookup(pl.Series(["i3", "x" * 20_000, "nope"]))
        frame = vocab.to_frame()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert looked_up.to_list() == [vocab.index("i3")[0], 1_000, None]
    assert frame.schema[C.item_id] == pl.Utf8 and frame.height == 1_001
    assert peak < 10_000_000, f"peak {peak:,} bytes"


def test_dataset_external_ids_round_trip_a_long_id() -> None:
    long_id = "y" * 5_000
    data = build_dataset(pl.DataFrame({C.user_id: ["a", "b"], C.item_id: [long_id, "z"]}))
    external = data.external()
    assert external.schema[C.item_id] == pl.Utf8
    assert sorted(external[C.item_id].to_list()) == sorted([long_id, "z"])


def test_an_id_over_the_limit_names_file_line_and_limit(tmp_path: Path) -> None:
    path = csv(
        tmp_path, "a,x,1", "b," + "x" * (MAX_ID_LENGTH + 1) + ",2", header="user_id,item_id,r"
    )
    with pytest.raises(
        DataError, match=rf"log\.csv, line 3: column 'item_id': an id of 1,025 .*{MAX_ID_LENGTH}"
    ):
        load("csv", path)
    assert load("csv", csv(tmp_path, "a," + "x" * MAX_ID_LENGTH + ",1")).n_items == 1
    with pytest.raises(DataError, match="frame, row 0: column 'user_id': an id of"):
        from_frame(pl.DataFrame({C.user_id: ["u" * 2_000], C.item_id: ["i"]}))


@pytest.mark.parametrize("written", ["NaN", "nan", "NULL", "null", "None", "NA", "n/a", " "])
def test_an_id_spelling_a_missing_value_is_rejected_with_its_line(
    tmp_path: Path, written: str
) -> None:
    path = csv(tmp_path, "a,x,1", f"b,{written},2")
    with pytest.raises(DataError, match=r"log\.csv, line 3: column 'item_id' has no value"):
        load("csv", path)


def test_a_float_nan_id_is_rejected() -> None:
    for ids in ([1.0, float("nan")], [1.5, float("nan")]):
        frame = pl.DataFrame({C.user_id: ["a", "b"], C.item_id: ids})
        with pytest.raises(DataError, match="frame, row 1: column 'item_id' has no value"):
            from_frame(frame)


# ---- numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "NaN"])
def test_a_non_finite_rating_or_weight_is_rejected_with_its_line(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(DataError, match=r"log\.csv, line 3: column 'rating'"):
        load("csv", csv(tmp_path, "a,x,1", f"b,y,{value}"))
    path = csv(tmp_path, "a,x,1", f"b,y,{value}", header="user_id,item_id,weight")
    with pytest.raises(DataError, match=r"log\.csv, line 3: column 'weight'"):
        load("csv", path)


def test_non_positive_weights_are_dropped_by_prepare_with_a_report_line(tmp_path: Path) -> None:
    path = csv(tmp_path, "a,x,1", "a,y,0", "b,x,-2", "b,y,3", header="user_id,item_id,weight")
    frame, report = prepare(load("csv", path).interactions)
    assert sorted(frame.select(C.user_id, C.item_id).rows()) == [("a", "x"), ("b", "y")]
    step = next(s for s in report.steps if s.name == "positive weights")
    assert (step.rows_removed, step.detail) == (2, "rows with weight <= 0 dropped")


def test_a_dataset_never_holds_a_non_positive_weight() -> None:
    """A test part made only of weight <= 0 rows crashed evaluation with an IndexError."""
    train = pl.DataFrame({C.user_id: ["a", "b"], C.item_id: ["x", "y"]})
    test = pl.DataFrame(
        {C.user_id: ["a", "b"], C.item_id: ["y", "x"], C.weight: [0.0, -1.0]},
        schema_overrides={C.weight: pl.Float32},
    )
    with pytest.raises(DataError, match=r"2 interactions weigh <= 0 .* prepare\(\) drops"):
        fixed_split({"train": train, "test": test})
    with pytest.raises(DataError, match="weigh <= 0 or not a finite number"):
        build_dataset(test.with_columns(pl.lit(np.nan, pl.Float32).alias(C.weight)))


# ---- timestamps -------------------------------------------------------------------------------
def test_millisecond_timestamps_read_as_seconds_name_the_unit(tmp_path: Path) -> None:
    path = csv(tmp_path, "a,x,1433221332", "b,y,1433221332117", header="user_id,item_id,timestamp")
    with pytest.raises(
        DataError, match=r"line 3: .*after 2100 read as s; it looks like ms: timestamp_unit=ms"
    ):
        load("csv", path)
    both_ms = csv(
        tmp_path, "a,x,1433221332000", "b,y,1433221332117", header="user_id,item_id,timestamp"
    )
    assert load("csv", both_ms, timestamp_unit="ms").interactions[C.timestamp].to_list() == [
        1433221332,
        1433221332,
    ]
    assert load("csv", both_ms, timestamp_unit="auto").interactions[C.timestamp][1] == 1433221332


@pytest.mark.parametrize(
    "value,when",
    [("-86400", "before 1970"), ("1969-07-20", "before 1970"), ("2200-01-01", "after 2100")],
)
def test_implausible_timestamps_are_rejected_unless_raw(
    tmp_path: Path, value: str, when: str
) -> None:
    path = csv(tmp_path, "a,x,5", f"b,y,{value}", header="user_id,item_id,timestamp")
    with pytest.raises(
        DataError,
        match=rf"line 3: column 'timestamp': timestamp '{value}' is {when}; .*timestamp_unit=raw",
    ):
        load("csv", path)
    kept = load("csv", path, timestamp_unit="raw").interactions[C.timestamp][1]
    assert (kept < 0) if when == "before 1970" else (kept > 4_102_444_800)
    with pytest.raises(ConfigError, match="timestamp unit 'days'"):
        load("csv", path, timestamp_unit="days")
