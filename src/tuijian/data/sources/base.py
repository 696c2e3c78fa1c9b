"""RawData, the validated result of every source, and the parsing helpers the sources share."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from tuijian.data.columns import INTERACTION_COLUMNS, Columns
from tuijian.errors import ConfigError, DataError

C = Columns

INTERACTION_DTYPES: Final[dict[str, pl.DataType]] = {
    C.user_id: pl.Utf8(),
    C.item_id: pl.Utf8(),
    C.timestamp: pl.Int64(),
    C.event: pl.Utf8(),
    C.rating: pl.Float64(),
    C.weight: pl.Float32(),
}
"""The dtype of every interaction column a source may produce."""

FEATURE_DTYPES: Final[dict[str, pl.DataType]] = {
    C.title: pl.Utf8(),
    C.text: pl.Utf8(),
    C.categories: pl.List(pl.Utf8()),
}
"""The dtype of the well-known item feature columns."""

MAX_ID_LENGTH: Final = 1024
"""Longest user / item id accepted, in characters; a longer one is rejected with its line."""

MISSING_WORDS: Final = frozenset({"nan", "null", "none", "na", "n/a", "<na>"})
"""Id spellings (any case) that mean a missing value: such an id is rejected like an empty one."""

SPLIT_PARTS: Final = ("train", "valid", "test")
ROW: Final = "__row"
"""Column of original row positions that some helpers add, for error locations."""

_TIMESTAMP_UNITS: Final = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
TIMESTAMP_UNIT_CHOICES: Final = (*_TIMESTAMP_UNITS, "auto", "raw")
"""Values of a loader's `timestamp_unit`: a unit, `auto` (the unit that puts every value in
TIMESTAMP_RANGE) or `raw` (numbers kept as they are, unchecked: logical clocks, old history)."""
TIMESTAMP_RANGE: Final = (0, 4_102_444_800)
"""Plausible unix seconds, 1970-01-01 up to (excluded) 2100-01-01; others are rejected with
their line unless `timestamp_unit="raw"`."""
_DATETIME_FORMATS: Final = (
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M%z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


@dataclass(frozen=True, eq=False)
class RawData:
    """An interaction log and its side tables as read from one source, checked on creation.

    `interactions` has Utf8 `user_id` / `item_id` and optionally Int64 `timestamp` (unix
    seconds), Utf8 `event`, Float64 `rating`, Float32 `weight`, with no missing values.
    `fixed_split` holds a published split ("train", "test", maybe "valid"); `interactions` is
    then all its parts concatenated. `notes` records what the loader changed or dropped.
    """

    interactions: pl.DataFrame
    item_features: pl.DataFrame | None = None
    user_features: pl.DataFrame | None = None
    fixed_split: dict[str, pl.DataFrame] | None = None
    name: str = "data"
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_interactions(self.interactions, self.name)
        if self.item_features is not None:
            _check_features(self.item_features, C.item_id, f"{self.name} item features")
        if self.user_features is not None:
            _check_features(self.user_features, C.user_id, f"{self.name} user features")
        if self.fixed_split is not None:
            _check_split(self.fixed_split, self.interactions, self.name)

    @property
    def n_users(self) -> int:
        """Number of distinct users in the interactions."""
        return self.interactions[C.user_id].n_unique()

    @property
    def n_items(self) -> int:
        """Number of distinct items in the interactions."""
        return self.interactions[C.item_id].n_unique()

    def __repr__(self) -> str:
        split = f", split={sorted(self.fixed_split)}" if self.fixed_split else ""
        return (
            f"RawData({self.name!r}, interactions={self.interactions.height}, "
            f"users={self.n_users}, items={self.n_items}{split})"
        )


def _check_interactions(frame: pl.DataFrame, where: str) -> None:
    """Raise DataError unless `frame` is a non-empty interactions table with the right dtypes."""
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"{where}: interactions must be a polars DataFrame, got {type(frame)}")
    extra = [c for c in frame.columns if c not in INTERACTION_DTYPES]
    if extra:
        raise DataError(f"{where}: unexpected interaction columns {extra}")
    for col in (C.user_id, C.item_id):
        if col not in frame.columns:
            raise DataError(f"{where}: interactions lack the {col!r} column (have {frame.columns})")
    for col in frame.columns:
        want = INTERACTION_DTYPES[col]
        if frame.schema[col] != want:
            raise DataError(f"{where}: column {col!r} is {frame.schema[col]}, expected {want}")
    if frame.height == 0:
        raise DataError(f"{where}: no interactions")
    nulls = {c: n for c, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
    if nulls:
        raise DataError(f"{where}: missing values in interactions {nulls}")
    origin = Origin(where)
    for col in (C.user_id, C.item_id):
        check_ids(frame[col], origin, col)
    for col in (C.rating, C.weight):
        if col in frame.columns:
            check_finite(frame[col], origin, col)


def _check_features(frame: pl.DataFrame, key: str, where: str) -> None:
    """Raise DataError unless `frame` is keyed by a unique, non-null Utf8 `key` column."""
    if key not in frame.columns:
        raise DataError(f"{where}: no {key!r} column (have {frame.columns})")
    if frame.schema[key] != pl.Utf8:
        raise DataError(f"{where}: column {key!r} is {frame.schema[key]}, expected String")
    if frame[key].null_count():
        raise DataError(f"{where}: {frame[key].null_count()} rows have no {key}")
    if frame[key].n_unique() != frame.height:
        dup = frame.filter(frame[key].is_duplicated())[key][0]
        raise DataError(f"{where}: {key} {dup!r} occurs more than once")
    for col, dtype in FEATURE_DTYPES.items():
        if col in frame.columns and frame.schema[col] != dtype:
            raise DataError(f"{where}: column {col!r} is {frame.schema[col]}, expected {dtype}")


def _check_split(parts: dict[str, pl.DataFrame], whole: pl.DataFrame, where: str) -> None:
    """Raise DataError unless `parts` is a train/test(/valid) split that adds up to `whole`."""
    unknown = sorted(set(parts) - set(SPLIT_PARTS))
    if unknown or not {"train", "test"} <= set(parts):
        raise DataError(f"{where}: split parts are {sorted(parts)}, expected train, test [, valid]")
    for part, frame in parts.items():
        _check_interactions(frame, f"{where} {part} part")
        if frame.schema != whole.schema:
            raise DataError(f"{where}: {part} part columns differ from the interactions")
    total = sum(frame.height for frame in parts.values())
    if total != whole.height:
        raise DataError(f"{where}: split parts hold {total} rows, interactions {whole.height}")


# ---- files ------------------------------------------------------------------------------------
def require_file(path: Path, what: str = "file") -> Path:
    """Return `path` if it is a file, else raise DataError naming it."""
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a {what} (give a file in it)")
    if not path.is_file():
        hint = f" (folder holds {sorted(p.name for p in path.parent.iterdir())[:20]})"
        raise DataError(f"{what} not found: {path}" + (hint if path.parent.is_dir() else ""))
    return path


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The decoded text of a file; a file that is not valid in `encoding` raises DataError."""
    require_file(path)
    return decode(path.read_bytes(), path, encoding)


def check_encoding(encoding: str) -> str:
    """`encoding` if Python knows it, else a ConfigError naming the option."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"unknown text encoding {encoding!r} (--option encoding=...: e.g. utf-8, latin-1, "
            "cp1252, gbk)"
        ) from None
    return encoding


def decode(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    """`data` (the bytes of `path`) decoded; invalid text raises DataError with its line."""
    try:
        return data.decode(check_encoding(encoding))
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.end].hex(" ")
        hint = "; if the file is in another encoding, give it: --option encoding=latin-1"
        raise DataError(
            f"{path}, line {line}: not valid {encoding} text (byte(s) {bad}: {err.reason}){hint}"
        ) from None


def read_delimited(
    path: Path,
    *,
    separator: str = ",",
    has_header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    quote_char: str | None = '"',
) -> pl.DataFrame:
    """Read a delimited text file with every column as Utf8, so values are parsed and checked
    later with line numbers. Blank lines become all-null rows (which keeps row i at line i)."""
    if not separator or separator in ("\n", "\r", quote_char):
        raise ConfigError(
            f"separator {separator!r} cannot separate columns (--option separator=...: e.g. "
            "',', ';', tab)"
        )
    require_file(path)
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    if codecs.lookup(check_encoding(encoding)).name != "utf-8":
        data = decode(data, path, encoding).encode()
    if len(separator.encode()) > 1:  # polars takes one byte: others become \x1f
        data = data.replace(separator.encode(), b"\x1f")
        separator = "\x1f"
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            separator=separator,
            has_header=has_header,
            new_columns=names,
            infer_schema=False,
            quote_char=quote_char,
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: file is empty") from None
    except pl.exceptions.PolarsError as err:
        decode(data, path)  # invalid UTF-8: the line of the first bad byte
        ragged = _ragged_line(data.decode(), separator, has_header, names, quote_char)
        message = ragged or f"cannot read as delimited text: {str(err).splitlines()[0]}"
        raise DataError(f"{path}{message}" if ragged else f"{path}: {message}") from None
    if frame.height == 0:
        raise DataError(f"{path}: file has no data rows")
    return frame


def _ragged_line(
    text: str, separator: str, has_header: bool, names: list[str] | None, quote: str | None
) -> str | None:
    """', line N: ...' for the first line with more fields than the header (or `names`)."""
    rows = csv.reader(
        io.StringIO(text),
        delimiter=separator,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
    )
    width = len(names) if names else None
    try:
        for row in rows:
            if width is None:
                width = len(row)
                if has_header:
                    continue
            if len(row) > width:
                return (
                    f", line {rows.line_num}: {len(row)} fields, but the "
                    f"{'header has' if not names and has_header else 'rows have'} {width}"
                    f" (separator {separator!r})"
                )
    except csv.Error:
        return None
    return None


def drop_blank_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` without all-null rows (blank lines), with a `__row` column of original positions."""
    blank = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    return frame.with_row_index(ROW).filter(~blank)


# ---- value parsing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    """Where a table's rows came from, so errors can say 'file, line N' or 'frame, row N'."""

    source: str
    first_line: int | None = None
    """Line number of row 0 in a text file (2 under a header); None for in-memory rows."""

    def at(self, row: int) -> str:
        """Human location of row `row` (0-based position in the table as read)."""
        if self.first_line is None:
            return f"{self.source}, row {row}"
        return f"{self.source}, line {row + self.first_line}"


def parse_timestamps(raw: pl.Series, unit: str = "s") -> pl.Series:
    """Unix seconds (Int64) from integers, floats, datetimes or ISO strings; null if unparsable.

    Numbers are taken in `unit` (s, ms, us, ns); ISO strings without a zone are read as UTC.
    """
    if unit not in _TIMESTAMP_UNITS:
        raise ConfigError(f"timestamp unit {unit!r} is not one of {list(_TIMESTAMP_UNITS)}")
    scale = _TIMESTAMP_UNITS[unit]
    dtype = raw.dtype
    if dtype == pl.Date:
        return raw.cast(pl.Datetime("us")).dt.epoch("s")
    if dtype == pl.Datetime:
        return raw.dt.epoch("s")
    if dtype.is_integer():
        return (raw.cast(pl.Int64) // scale).alias(raw.name)
    if dtype.is_float():
        return (raw / scale).floor().cast(pl.Int64, strict=False).alias(raw.name)
    text = raw.cast(pl.Utf8).str.strip_chars()
    as_int = text.cast(pl.Int64, strict=False) // scale
    as_float = (text.cast(pl.Float64, strict=False) / scale).floor().cast(pl.Int64, strict=False)
    iso = text.str.replace("T", " ", literal=True).str.replace(r"[Zz]$", "+00:00")
    dates = [
        iso.str.to_datetime(fmt, strict=False, time_unit="us").dt.epoch("s")
        for fmt in _DATETIME_FORMATS
    ]
    return pl.select(pl.coalesce(as_int, as_float, *dates)).to_series().alias(raw.name)


def parse_column(raw: pl.Series, dtype: pl.DataType) -> pl.Series:
    """`raw` converted to `dtype` (ids and text stripped to Utf8); null where it cannot be."""
    if dtype == pl.Utf8:
        if raw.dtype.is_float() and _is_integral(raw.drop_nulls().drop_nans()):
            raw = raw.cast(pl.Int64, strict=False)
        text = raw.cast(pl.Utf8).str.strip_chars()
        return text.replace("", None)
    if raw.dtype == pl.Utf8:
        raw = raw.str.strip_chars()
    return raw.cast(dtype, strict=False)


def _is_integral(values: pl.Series) -> bool:
    """True when every value of a float series is a whole number."""
    return bool((values == values.floor()).all())


def check_parsed(
    raw: pl.Series,
    parsed: pl.Series,
    origin: Origin,
    label: str,
    kind: str,
    rows: pl.Series | None = None,
) -> pl.Series:
    """Raise DataError at the first row whose value is missing or could not be parsed.

    `rows` maps positions in `raw` back to positions in the table as read (after a filter).
    """
    bad = parsed.is_null()
    if parsed.dtype.is_float():
        bad = bad | parsed.is_nan()
    if not bad.any():
        return parsed
    pos = int(bad.arg_true()[0])
    where = origin.at(int(rows[pos]) if rows is not None else pos)
    value = raw[pos]
    if value is None or value != value or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: column {label!r} has no value")
    raise DataError(f"{where}: column {label!r}: cannot parse {value!r} as {kind}")


def _timestamps(
    raw: pl.Series, unit: str, origin: Origin, label: str, rows: pl.Series
) -> pl.Series:
    """Parsed timestamps in `unit` (see TIMESTAMP_UNIT_CHOICES), checked against TIMESTAMP_RANGE.

    A value outside the range raises DataError at its line; when the value would be plausible
    in a finer unit (milliseconds read as seconds), the message names that `timestamp_unit`.
    """
    if unit not in TIMESTAMP_UNIT_CHOICES:
        raise ConfigError(f"timestamp unit {unit!r} is not one of {list(TIMESTAMP_UNIT_CHOICES)}")
    if unit == "raw":
        return parse_timestamps(raw, "s")
    low, high = TIMESTAMP_RANGE
    units = list(_TIMESTAMP_UNITS) if unit == "auto" else [unit]
    for candidate in units:
        parsed = parse_timestamps(raw, candidate)
        values = parsed.drop_nulls()
        if values.is_empty() or (values.min() >= low and values.max() < high):  # type: ignore[operator]
            return parsed
    bad = ((parsed < low) | (parsed >= high)).fill_null(False)
    pos = int(bad.arg_true()[0])
    where = f"{origin.at(int(rows[pos]))}: column {label!r}: timestamp {raw[pos]!r}"
    if unit == "auto":
        raise DataError(f"{where} is not a plausible time (1970 to 2100) in any unit s, ms, us, ns")
    seconds, scale = int(parsed[pos]), _TIMESTAMP_UNITS[unit]
    finer = [
        u for u, f in _TIMESTAMP_UNITS.items() if f > scale and low <= seconds * scale // f < high
    ]
    numeric = raw.dtype.is_numeric() or str(raw[pos]).strip().replace(".", "", 1).isdigit()
    if seconds >= high and finer and numeric:
        hint = f"timestamp_unit={finer[0]} (--option timestamp_unit={finer[0]})"
        raise DataError(f"{where} is after 2100 read as {unit}; it looks like {finer[0]}: {hint}")
    when = "before 1970" if seconds < low else "after 2100"
    raise DataError(
        f"{where} is {when}; fix the column or keep such values with timestamp_unit=raw"
        " (--option timestamp_unit=raw)"
    )


def check_ids(ids: pl.Series, origin: Origin, label: str, rows: pl.Series | None = None) -> None:
    """Raise DataError at the first id that spells a missing value or exceeds MAX_ID_LENGTH."""
    text = ids.cast(pl.Utf8)
    missing = text.str.strip_chars().str.to_lowercase().is_in(sorted(MISSING_WORDS))
    long = text.str.len_chars() > MAX_ID_LENGTH
    for bad, reason in ((missing, "missing"), (long, "long")):
        if not bad.any():
            continue
        pos = int(bad.arg_true()[0])
        where = origin.at(int(rows[pos]) if rows is not None else pos)
        if reason == "missing":
            raise DataError(
                f"{where}: column {label!r} has no value (an id written {text[pos]!r} is missing)"
            )
        raise DataError(
            f"{where}: column {label!r}: an id of {len(text[pos]):,} characters is longer than "
            f"the limit of {MAX_ID_LENGTH}"
        )


def check_finite(
    values: pl.Series, origin: Origin, label: str, rows: pl.Series | None = None
) -> None:
    """Raise DataError at the first NaN or infinite number of a numeric column."""
    if not values.dtype.is_float():
        return
    bad = values.is_nan() | values.is_infinite()
    if bad.any():
        pos = int(bad.arg_true()[0])
        where = origin.at(int(rows[pos]) if rows is not None else pos)
        raise DataError(f"{where}: column {label!r}: {values[pos]} is not a finite number")


_KIND: Final = {
    C.user_id: "an id",
    C.item_id: "an id",
    C.timestamp: "a timestamp (unix seconds or ISO date-time)",
    C.event: "an event name",
    C.rating: "a number",
    C.weight: "a number",
}


def build_interactions(
    frame: pl.DataFrame,
    mapping: dict[str, str],
    origin: Origin,
    *,
    unit: str = "s",
    keep: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Select, rename and type-check interaction columns (`mapping`: our name -> frame column).

    Rows whose mapped values are all empty (blank lines) are dropped; any other missing or
    unparsable value raises DataError naming the source, the line or row and the column.
    `keep` names extra columns to carry along unchanged (`ROW` gives each row's position).
    """
    missing = [ours for ours, theirs in mapping.items() if theirs not in frame.columns]
    if missing:
        names = ", ".join(repr(mapping[m]) for m in missing)
        raise DataError(
            f"{origin.source}: missing column {names} (for {missing}); "
            f"columns present: {frame.columns}"
        )
    blank = pl.all_horizontal(pl.col(mapping[c]).is_null() for c in mapping)
    frame = frame.with_row_index(ROW).filter(~blank)
    if frame.height == 0:
        raise DataError(f"{origin.source}: no data rows")
    out = []
    for ours in INTERACTION_COLUMNS:
        if ours in mapping:
            raw = frame[mapping[ours]].alias(ours)
            if ours == C.timestamp:
                parsed = _timestamps(raw, unit, origin, mapping[ours], frame[ROW])
            else:
                parsed = parse_column(raw, INTERACTION_DTYPES[ours])
            check_parsed(raw, parsed, origin, mapping[ours], _KIND[ours], frame[ROW])
            if ours in (C.user_id, C.item_id):
                check_ids(parsed, origin, mapping[ours], frame[ROW])
            elif ours in (C.rating, C.weight):
                check_finite(parsed, origin, mapping[ours], frame[ROW])
            out.append(parsed.cast(INTERACTION_DTYPES[ours]))
    return pl.DataFrame(out + [frame[name] for name in keep])
