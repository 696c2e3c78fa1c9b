"""RawData checks, the generic CSV / Parquet / DataFrame readers and the `load` dispatcher."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from tuijian.data import Columns
from tuijian.data.sources import FORMATS, RawData, from_frame, load
from tuijian.data.sources.base import parse_timestamps
from tuijian.errors import ConfigError, DataError

C = Columns


def write(path: Path, text: str) -> Path:
    """Write a small text fixture and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


MAPPING = {C.user_id: "userId", C.item_id: "movieId", C.rating: "stars", C.timestamp: "ts"}


# ---- RawData ----------------------------------------------------------------------------------
def pairs(users: list[str | None], items: list[str]) -> pl.DataFrame:
    """A Utf8 user/item interactions frame."""
    return pl.DataFrame(
        {C.user_id: users, C.item_id: items}, schema={C.user_id: pl.Utf8, C.item_id: pl.Utf8}
    )


def test_rawdata_counts_and_repr() -> None:
    raw = RawData(pairs(["a", "a", "b"], ["x", "y", "x"]), name="t")
    assert (raw.n_users, raw.n_items) == (2, 2)
    assert repr(raw) == "RawData('t', interactions=3, users=2, items=2)"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({C.user_id: ["a"]}), "lack the 'item_id' column"),
        (pl.DataFrame({C.user_id: [1], C.item_id: ["x"]}), "'user_id' is Int64"),
        (pairs([], []), "no interactions"),
        (pairs(["a", None], ["x", "y"]), "missing values"),
        (pairs(["a"], ["x"]).with_columns(pl.lit(1).alias("extra")), "unexpected"),
        (pairs(["a"], ["x"]).with_columns(pl.lit(1.0).alias(C.weight)), "Float32"),
    ],
)
def test_rawdata_rejects_bad_interactions(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        RawData(frame, name="t")


def test_rawdata_checks_features_and_split() -> None:
    inter = pairs(["a", "b"], ["x", "y"])
    dup = pl.DataFrame({C.item_id: ["x", "x"]})
    with pytest.raises(DataError, match="'x' occurs more than once"):
        RawData(inter, item_features=dup)
    bad_cats = pl.DataFrame({C.item_id: ["x"], C.categories: ["a"]})
    with pytest.raises(DataError, match="'categories' is String"):
        RawData(inter, item_features=bad_cats)
    with pytest.raises(DataError, match="no 'user_id' column"):
        RawData(inter, user_features=pl.DataFrame({"age": [1]}))
    split = {"train": inter[:1], "test": inter[1:]}
    assert RawData(inter, fixed_split=split).fixed_split == split
    with pytest.raises(DataError, match="expected train, test"):
        RawData(inter, fixed_split={"train": inter})
    with pytest.raises(DataError, match="hold 4 rows, interactions 2"):
        RawData(inter, fixed_split={"train": inter, "test": inter})


# ---- timestamps -------------------------------------------------------------------------------
def test_parse_timestamps_accepts_numbers_and_iso_strings() -> None:
    raw = pl.Series(
        [
            "881250949",
            " 881250949.7 ",
            "2017-11-25T10:00:00Z",
            "2017-11-25 18:00:00+08:00",
            "2017-11-25T10:00:00.250",
            "2017-11-25",
            "noon",
        ]
    )
    expected = [881250949, 881250949, 1511604000, 1511604000, 1511604000, 1511568000, None]
    assert parse_timestamps(raw).to_list() == expected
    assert parse_timestamps(pl.Series([1511604000123]), unit="ms").to_list() == [1511604000]
    with pytest.raises(ConfigError, match="timestamp unit"):
        parse_timestamps(raw, unit="days")


# ---- csv --------------------------------------------------------------------------------------
def test_csv_with_mapping_iso_times_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "userId,movieId,stars,ts,extra\n1,10,4.5,2017-11-25T10:00:00Z,a\n\n2, 11 ,3,881250949,b\n",
    )
    raw = load("csv", path, columns=MAPPING)
    assert raw.name == "r"
    assert raw.interactions.columns == [C.user_id, C.item_id, C.timestamp, C.rating]
    assert raw.interactions.rows() == [("1", "10", 1511604000, 4.5), ("2", "11", 881250949, 3.0)]
    assert raw.item_features is None and raw.fixed_split is None


def test_csv_takes_our_column_names_as_they_are(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user_id,item_id,weight,event\nu,i,2,buy\n")
    raw = load("csv", path)
    assert raw.interactions.schema == {
        C.user_id: pl.Utf8,
        C.item_id: pl.Utf8,
        C.event: pl.Utf8,
        C.weight: pl.Float32,
    }
    assert raw.interactions.row(0) == ("u", "i", "buy", 2.0)


def test_csv_separator_headerless_positions_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "u.data.gz"
    path.write_bytes(gzip.compress(b"196\t242\t3\t881250949\n186\t302\t1\t891717742\n"))
    columns = {C.user_id: 0, C.item_id: 1, C.rating: 2, C.timestamp: 3}
    raw = load("csv", path, columns=columns, separator="\t", has_header=False)
    assert raw.interactions.rows() == [
        ("196", "242", 881250949, 3.0),
        ("186", "302", 891717742, 1.0),
    ]
    named = load(
        "csv", path, separator="\t", has_header=False, names=["user_id", "item_id", "r", "t"]
    )
    assert named.interactions.columns == [C.user_id, C.item_id]


def test_csv_millisecond_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\na,b,1433221332117\n")
    raw = load("csv", path, timestamp_unit="ms")
    assert raw.interactions[C.timestamp].to_list() == [1433221332]


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"file not found: .*nope\.csv"):
        load("csv", tmp_path / "nope.csv")


def test_csv_missing_column_names_file_column_and_present_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "userId,movieId,stars\n1,2,3\n")
    with pytest.raises(DataError) as err:
        load("csv", path, columns=MAPPING)
    message = str(err.value)
    assert str(path) in message and "'ts'" in message
    assert "['userId', 'movieId', 'stars']" in message


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("1,10,4,100\n2,11,x,200\n", "line 3: column 'stars': cannot parse 'x' as a number"),
        ("1,10,4,100\n\n2,11,5,soon\n", "line 4: column 'ts': cannot parse 'soon' as a timestamp"),
        ("1,10,4,100\n,11,5,200\n", "line 3: column 'userId' has no value"),
    ],
)
def test_csv_unparsable_value_names_file_line_and_column(
    tmp_path: Path, body: str, where: str
) -> None:
    path = write(tmp_path / "r.csv", "userId,movieId,stars,ts\n" + body)
    with pytest.raises(DataError) as err:
        load("csv", path, columns=MAPPING)
    assert str(err.value).startswith(f"{path}, {where}")


def test_csv_empty_header_only_and_ragged(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file is empty"):
        load("csv", write(tmp_path / "a.csv", ""))
    with pytest.raises(DataError, match="no data rows"):
        load("csv", write(tmp_path / "b.csv", "user_id,item_id\n"))
    with pytest.raises(DataError, match=r"c\.csv, line 2: 3 fields, but the header has 2"):
        load("csv", write(tmp_path / "c.csv", "user_id,item_id\n1,2,3\n"))


def test_csv_bad_mapping_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"unknown interaction column\(s\) \['user'\]"):
        load("csv", path, columns={"user": "a"})
    with pytest.raises(ConfigError, match="position 5"):
        load("csv", path, columns={C.user_id: 5})


# ---- parquet and frames -----------------------------------------------------------------------
def test_parquet_with_mapping_and_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pl.DataFrame(
        {"u": [1, 2], "i": [10, 11], "stars": [4, 5], "when": ["2017-11-25", "2017-11-26"]}
    ).write_parquet(path)
    columns = {C.user_id: "u", C.item_id: "i", C.rating: "stars", C.timestamp: "when"}
    raw = load("parquet", path, columns=columns)
    assert raw.interactions.rows() == [("1", "10", 1511568000, 4.0), ("2", "11", 1511654400, 5.0)]


def test_parquet_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load("parquet", tmp_path / "x.parquet")
    bad = write(tmp_path / "bad.parquet", "not parquet")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load("parquet", bad)
    path = tmp_path / "r.parquet"
    pl.DataFrame(
        {"user_id": ["a", "b"], "item_id": ["x", "y"], "rating": ["1", "two"]}
    ).write_parquet(path)
    with pytest.raises(DataError, match=r"r\.parquet, row 1: column 'rating': cannot parse 'two'"):
        load("parquet", path)
    empty = tmp_path / "e.parquet"
    pl.DataFrame({"user_id": [], "item_id": []}).write_parquet(empty)
    with pytest.raises(DataError, match="no rows"):
        load("parquet", empty)


def test_from_frame_pandas_and_polars() -> None:
    pdf = pd.DataFrame(
        {"uid": [1.0, 2.0], "iid": ["a", "b"], "ts": pd.to_datetime(["2017-11-25"] * 2)}
    )
    raw = from_frame(pdf, {C.user_id: "uid", C.item_id: "iid", C.timestamp: "ts"})
    assert raw.interactions.rows() == [("1", "a", 1511568000), ("2", "b", 1511568000)]
    assert raw.name == "frame"
    plf = pl.DataFrame({C.user_id: ["u"], C.item_id: [7], C.rating: [3]})
    assert from_frame(plf).interactions.row(0) == ("u", "7", 3.0)


def test_from_frame_errors() -> None:
    with pytest.raises(DataError, match="pandas or polars DataFrame"):
        from_frame([1, 2])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="frame, row 1: column 'rating'"):
        from_frame(
            pl.DataFrame({C.user_id: ["a", "b"], C.item_id: ["x", "y"], C.rating: [1.0, None]})
        )
    with pytest.raises(DataError, match="missing column 'item_id'"):
        from_frame(pl.DataFrame({C.user_id: ["a"]}))


# ---- dispatch ---------------------------------------------------------------------------------
def test_formats_are_stable() -> None:
    assert FORMATS == (
        "csv",
        "parquet",
        "movielens",
        "recbole",
        "lightgcn",
        "sequence",
        "taobao",
        "retailrocket",
    )


def test_unknown_format_and_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown data format 'excel'; valid formats: \['csv'"):
        load("excel", tmp_path)
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['sep'\]"):
        load("csv", tmp_path / "r.csv", sep="\t")


def test_load_renames(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user_id,item_id\na,b\n")
    assert load("csv", path, name="mine").name == "mine"
