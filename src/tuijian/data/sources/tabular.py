"""Generic tables: a CSV or Parquet file, or a pandas / polars DataFrame, with a column mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow.parquet as pq

from tuijian.data.columns import INTERACTION_COLUMNS, Columns
from tuijian.data.sources.base import Origin, RawData, build_interactions, read_delimited
from tuijian.errors import ConfigError, DataError

C = Columns


def resolve_mapping(columns: dict[str, Any] | None, present: list[str]) -> dict[str, str]:
    """Our column name -> the table's column name.

    Columns the table already names like ours are taken as they are; `columns` adds or
    overrides entries. A value may be an int: the 0-based position of the column.
    """
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(INTERACTION_COLUMNS))
    if unknown:
        raise ConfigError(
            f"unknown interaction column(s) {unknown} in the column mapping; "
            f"valid: {list(INTERACTION_COLUMNS)}"
        )
    mapping = {c: c for c in INTERACTION_COLUMNS if c in present}
    for ours, theirs in columns.items():
        if isinstance(theirs, int) and not isinstance(theirs, bool):
            if not 0 <= theirs < len(present):
                raise ConfigError(
                    f"column position {theirs} for {ours!r} is out of range "
                    f"(the table has {len(present)} columns: {present})"
                )
            theirs = present[theirs]
        if not isinstance(theirs, str):
            raise ConfigError(f"column mapping for {ours!r} must be a name or a position")
        mapping[ours] = theirs
    for required in (C.user_id, C.item_id):
        mapping.setdefault(required, required)
    return mapping


def load_csv(
    path: str | Path,
    *,
    columns: dict[str, Any] | None = None,
    separator: str = ",",
    has_header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    timestamp_unit: str = "s",
) -> RawData:
    """Interactions from a delimited text file (plain or gzip).

    `columns` maps our names to the file's (`{"user_id": "userId"}`); `names` names the
    columns of a file without header; `timestamp_unit` is the unit of numeric timestamps.
    """
    path = Path(path)
    frame = read_delimited(
        path, separator=separator, has_header=has_header, names=names, encoding=encoding
    )
    mapping = resolve_mapping(columns, frame.columns)
    origin = Origin(str(path), first_line=2 if has_header else 1)
    inter = build_interactions(frame, mapping, origin, unit=timestamp_unit)
    return RawData(inter, name=_stem(path))


def load_parquet(
    path: str | Path,
    *,
    columns: dict[str, Any] | None = None,
    timestamp_unit: str = "s",
) -> RawData:
    """Interactions from a Parquet file (read with pyarrow), with the same mapping as CSV."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DataError(f"{path}: cannot read as Parquet: {err}") from None
    frame = cast(pl.DataFrame, pl.from_arrow(table))
    if frame.height == 0:
        raise DataError(f"{path}: file has no rows")
    mapping = resolve_mapping(columns, frame.columns)
    inter = build_interactions(frame, mapping, Origin(str(path)), unit=timestamp_unit)
    return RawData(inter, name=_stem(path))


def from_frame(
    df: Any,
    columns: dict[str, Any] | None = None,
    *,
    name: str = "frame",
    timestamp_unit: str = "s",
) -> RawData:
    """RawData from a pandas or polars DataFrame built in Python (errors name the row)."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if not isinstance(df, pl.DataFrame):
        if type(df).__module__.split(".")[0] != "pandas" or not hasattr(df, "columns"):
            raise DataError(f"from_frame needs a pandas or polars DataFrame, got {type(df)}")
        df = pl.from_pandas(df.rename(columns=str))
    if df.height == 0:
        raise DataError(f"{name}: the frame has no rows")
    mapping = resolve_mapping(columns, df.columns)
    inter = build_interactions(df, mapping, Origin(name), unit=timestamp_unit)
    return RawData(inter, name=name)


def _stem(path: Path) -> str:
    """A dataset name from a file name: `ratings.csv.gz` -> `ratings`."""
    return path.name.split(".")[0] or path.name
