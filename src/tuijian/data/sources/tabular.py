"""Generic tables: a CSV or Parquet file, or a pandas / polars DataFrame, with a column mapping."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow.parquet as pq

from tuijian.data.columns import INTERACTION_COLUMNS, Columns
from tuijian.data.sources.base import (
    FEATURE_DTYPES,
    Origin,
    RawData,
    build_interactions,
    check_ids,
    check_parsed,
    parse_column,
    read_delimited,
    read_text,
    require_file,
)
from tuijian.errors import ConfigError, DataError

C = Columns

FeatureSpec = str | Sequence[str] | None
"""Feature columns: a list (or a comma-separated string) of `column` or `ours=theirs`."""


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
    item_features: FeatureSpec = None,
    user_features: FeatureSpec = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    category_separator: str = "|",
) -> RawData:
    """Interactions from a delimited text file (plain or gzip), with optional feature tables.

    `columns` maps our names to the file's (`{"user_id": "userId"}`); `names` names the
    columns of a file without header; `timestamp_unit` is the unit of numeric timestamps.
    Item / user features: see `with_features` (a table file named by `items` / `users` is read
    as Parquet when its name ends in `.parquet`, else with this file's separator and encoding).
    """
    path = Path(path)
    frame = read_delimited(
        path, separator=separator, has_header=has_header, names=names, encoding=encoding
    )
    if frame.width == 1:
        _one_column(path, frame.columns[0] if has_header else None, separator)
    mapping = resolve_mapping(columns, frame.columns)
    origin = Origin(str(path), first_line=2 if has_header else 1)
    inter = build_interactions(frame, mapping, origin, unit=timestamp_unit)
    sides = _Sides(frame, origin, mapping, separator, encoding, category_separator)
    return RawData(
        inter,
        item_features=sides.table(C.item_id, item_features, items),
        user_features=sides.table(C.user_id, user_features, users),
        name=_stem(path),
    )


def _one_column(path: Path, header: str | None, separator: str) -> None:
    """Raise DataError for a file read as one column: interactions need a user and an item, so
    the separator is wrong; the message names the likeliest one."""
    text = header if header is not None else read_text(path)[:4096].split("\n")[0]
    counts = {sep: text.count(sep) for sep in SEPARATORS if sep != separator}
    best = max(counts, key=lambda sep: counts[sep])
    shown = "\\t" if best == "\t" else best
    hint = (
        f"it looks separated by {best!r}: --option separator='{shown}'"
        if counts[best]
        else "give the separator: --option separator=..."
    )
    what = f"the header {text[:80]!r}" if header is not None else f"line 1 {text[:80]!r}"
    raise DataError(f"{path}: {what} parses as one column with separator {separator!r}; {hint}")


SEPARATORS = (",", ";", "\t", "|", " ", ":")
"""Separators `_one_column` looks for in a file read as one column."""


def load_parquet(
    path: str | Path,
    *,
    columns: dict[str, Any] | None = None,
    timestamp_unit: str = "s",
    item_features: FeatureSpec = None,
    user_features: FeatureSpec = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    category_separator: str = "|",
) -> RawData:
    """Interactions from a Parquet file (read with pyarrow), with the same mapping and feature
    options as CSV (a table file not ending in `.parquet` is read as comma-separated)."""
    path = Path(path)
    frame = _read_parquet(path)
    mapping = resolve_mapping(columns, frame.columns)
    origin = Origin(str(path))
    inter = build_interactions(frame, mapping, origin, unit=timestamp_unit)
    sides = _Sides(frame, origin, mapping, ",", "utf-8", category_separator)
    return RawData(
        inter,
        item_features=sides.table(C.item_id, item_features, items),
        user_features=sides.table(C.user_id, user_features, users),
        name=_stem(path),
    )


def _read_parquet(path: Path) -> pl.DataFrame:
    """A Parquet file as a polars frame, or a DataError naming the file."""
    require_file(path)
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DataError(f"{path}: cannot read as Parquet: {err}") from None
    frame = cast(pl.DataFrame, pl.from_arrow(table))
    if frame.height == 0:
        raise DataError(f"{path}: file has no rows")
    return frame


def from_frame(
    df: Any,
    columns: dict[str, Any] | None = None,
    *,
    name: str = "frame",
    timestamp_unit: str = "s",
    item_features: FeatureSpec = None,
    user_features: FeatureSpec = None,
    category_separator: str = "|",
) -> RawData:
    """RawData from a pandas or polars DataFrame built in Python (errors name the row); feature
    columns of the frame as in `with_features`."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if not isinstance(df, pl.DataFrame):
        if type(df).__module__.split(".")[0] != "pandas" or not hasattr(df, "columns"):
            raise DataError(f"from_frame needs a pandas or polars DataFrame, got {type(df)}")
        df = pl.from_pandas(df.rename(columns=str))
    if df.height == 0:
        raise DataError(f"{name}: the frame has no rows")
    mapping = resolve_mapping(columns, df.columns)
    origin = Origin(name)
    inter = build_interactions(df, mapping, origin, unit=timestamp_unit)
    sides = _Sides(df, origin, mapping, ",", "utf-8", category_separator)
    return RawData(
        inter,
        item_features=sides.table(C.item_id, item_features, None),
        user_features=sides.table(C.user_id, user_features, None),
        name=name,
    )


def _stem(path: Path) -> str:
    """A dataset name from a file name: `ratings.csv.gz` -> `ratings`."""
    return path.name.split(".")[0] or path.name


# ---- feature tables ---------------------------------------------------------------------------
CATEGORY_ALIAS = "category"
"""A feature column named so becomes `categories` (the list the content model and the
diversity metric read)."""


def feature_columns(spec: FeatureSpec, key: str) -> dict[str, str]:
    """Our feature name -> the table's column: `category` -> categories, `title=name` renames."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec or [])
    out: dict[str, str] = {}
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        ours, sep, theirs = (s.strip() for s in part.partition("="))
        if not sep:
            ours, theirs = (C.categories if ours == CATEGORY_ALIAS else ours), ours
        if not ours or not theirs:
            raise ConfigError(f"feature column {part!r} must be a name or ours=theirs")
        if ours == key or ours in out:
            raise ConfigError(f"feature column {ours!r} is the key or given twice ({part!r})")
        out[ours] = theirs
    return out


class _Sides:
    """Builds a loader's item / user feature tables, from its own rows or a separate file."""

    def __init__(
        self,
        frame: pl.DataFrame,
        origin: Origin,
        mapping: dict[str, str],
        separator: str,
        encoding: str,
        category_separator: str,
    ) -> None:
        self.frame, self.origin, self.mapping = frame, origin, mapping
        self.separator, self.encoding = separator, encoding
        self.category_separator = category_separator

    def table(self, key: str, spec: FeatureSpec, file: str | Path | None) -> pl.DataFrame | None:
        """The feature table keyed by `key` (`item_id` / `user_id`), or None when none asked.

        From the interactions, each id takes the first non-empty value of each column in file
        order. A separate file holds one row per id, keyed by the column the interactions map
        to `key` (or `key` itself) and gives all its columns unless `spec` names some.
        """
        if spec is None and file is None:
            return None
        side = "items" if key == C.item_id else "users"
        if file is None:
            frame, origin, key_col = self.frame, self.origin, self.mapping[key]
            columns = feature_columns(spec, key)
            if not columns:
                raise ConfigError(f"no {side[:-1]} feature columns given ({spec!r})")
        else:
            frame, origin = self._read(Path(file))
            named = self.mapping[key]
            key_col = named if named in frame.columns else key
            if key_col not in frame.columns:
                either = repr(key) if named == key else f"{named!r} or {key!r}"
                raise DataError(
                    f"{origin.source}: no {either} column to key the {side} by "
                    f"(columns: {frame.columns})"
                )
            rest = [c for c in frame.columns if c != key_col]
            columns = feature_columns(spec if spec is not None else rest, key)
        absent = sorted(theirs for theirs in columns.values() if theirs not in frame.columns)
        if absent:
            raise DataError(
                f"{origin.source}: no {side[:-1]} feature column(s) {absent} "
                f"(columns: {frame.columns})"
            )
        raw = frame[key_col]
        ids = parse_column(raw, pl.Utf8)
        rows = pl.Series(range(frame.height))
        if file is None:  # rows without an id are blank lines; build_interactions checked ids
            keep = ids.is_not_null()
            frame, raw, ids, rows = (
                frame.filter(keep),
                raw.filter(keep),
                ids.filter(keep),
                rows.filter(keep),
            )
        check_parsed(raw, ids, origin, key_col, "an id", rows)
        check_ids(ids, origin, key_col, rows)
        table = pl.DataFrame([ids.alias(key)]).with_columns(
            self._typed(frame[theirs], ours) for ours, theirs in columns.items()
        )
        if file is not None:
            repeat = ~table[key].is_first_distinct()
            if repeat.any():
                pos = int(repeat.arg_true()[0])
                raise DataError(f"{origin.at(int(rows[pos]))}: {key_col} {ids[pos]!r} repeats")
            return table
        firsts = [pl.col(c).drop_nulls().first() for c in columns]
        return table.group_by(key, maintain_order=True).agg(firsts)

    def _read(self, path: Path) -> tuple[pl.DataFrame, Origin]:
        if path.name.endswith(".parquet"):
            return _read_parquet(path), Origin(str(path))
        frame = read_delimited(path, separator=self.separator, encoding=self.encoding)
        return frame, Origin(str(path), first_line=2)

    def _typed(self, values: pl.Series, ours: str) -> pl.Series:
        """A feature column under our name: text stripped, categories as a list of strings."""
        if ours == C.categories:
            if values.dtype == pl.List:
                return values.cast(pl.List(pl.Utf8)).alias(ours)
            parts = parse_column(values, pl.Utf8).str.split(self.category_separator)
            return parts.list.eval(pl.element().str.strip_chars().filter(pl.element() != "")).alias(
                ours
            )
        if ours in FEATURE_DTYPES and values.dtype == pl.List:  # title / text from a list
            values = values.cast(pl.List(pl.Utf8)).list.join(" ")
        if ours in FEATURE_DTYPES or values.dtype == pl.Utf8:
            return parse_column(values, pl.Utf8).alias(ours)
        return values.alias(ours)
