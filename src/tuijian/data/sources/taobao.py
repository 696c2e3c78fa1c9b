"""Taobao UserBehavior logs: `user,item,category,behavior,timestamp` without a header."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Final

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import (
    ROW,
    Origin,
    RawData,
    build_interactions,
    parse_timestamps,
    read_delimited,
)
from tuijian.errors import ConfigError, DataError

C = Columns

BEHAVIORS: Final = ("pv", "cart", "fav", "buy")
"""The behaviour types of the log, kept as the `event` values."""

OFFICIAL_RANGE: Final = (1511539200, 1512316800)
"""2017-11-25 00:00 to 2017-12-04 00:00 China time (UTC+8), end excluded: the published days."""

CATEGORY = "category_id"
TimeBound = int | str | datetime | date


def load_taobao(
    path: str | Path,
    *,
    time_range: tuple[TimeBound, TimeBound] | None = OFFICIAL_RANGE,
) -> RawData:
    """Behaviour events with `event` in pv/cart/fav/buy; item `categories` from the category id.

    Rows with a timestamp outside `time_range` (start included, end excluded; unix seconds,
    ISO strings or datetimes) are dropped and counted in `notes`; None keeps every row.
    `path` is the CSV file or a folder holding exactly one.
    """
    path = _csv_file(Path(path))
    names = [C.user_id, C.item_id, CATEGORY, C.event, C.timestamp]
    frame = read_delimited(path, has_header=False, names=names, quote_char=None)
    origin = Origin(str(path), first_line=1)
    mapping = {n: n for n in names if n != CATEGORY}
    frame = frame.with_columns(pl.col(CATEGORY).str.strip_chars())
    inter = build_interactions(frame, mapping, origin, keep=(CATEGORY, ROW))
    unknown = ~inter[C.event].is_in(BEHAVIORS)
    if unknown.any():
        pos = int(unknown.arg_true()[0])
        raise DataError(
            f"{origin.at(int(inter[ROW][pos]))}: column 'behavior_type': "
            f"{inter[C.event][pos]!r} is not one of {list(BEHAVIORS)}"
        )
    categories = inter.select(C.item_id, CATEGORY)
    inter = inter.drop(CATEGORY, ROW)
    notes: dict[str, object] = {"rows_read": inter.height}
    if time_range is not None:
        start, end = _bounds(time_range)
        keep = (inter[C.timestamp] >= start) & (inter[C.timestamp] < end)
        inter = inter.filter(keep)
        categories = categories.filter(keep)
        notes["time_range"] = (start, end)
        notes["dropped_outside_time_range"] = int((~keep).sum())
    items = (
        categories.drop_nulls()
        .unique(maintain_order=True)
        .group_by(C.item_id, maintain_order=True)
        .agg(pl.col(CATEGORY).alias(C.categories))
    )
    return RawData(inter, items, name=path.stem, notes=notes)


def _csv_file(path: Path) -> Path:
    """`path` itself, or the single `.csv` file in folder `path`."""
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one .csv file, found {[p.name for p in found]}")
        return found[0]
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    return path


def _bounds(time_range: tuple[TimeBound, TimeBound]) -> tuple[int, int]:
    """(start, end) in unix seconds from ints, ISO strings, datetimes or dates (UTC if naive)."""
    if len(time_range) != 2:
        raise ConfigError(f"time_range must be (start, end), got {time_range!r}")
    values = pl.Series("time_range", list(time_range), dtype=pl.Object)
    out = []
    for bound in values:
        if isinstance(bound, datetime | date):
            bound = bound.isoformat()
        parsed = parse_timestamps(pl.Series([str(bound)]))[0]
        if parsed is None:
            raise ConfigError(f"time_range bound {bound!r} is not a timestamp or ISO date-time")
        out.append(int(parsed))
    start, end = out
    if start >= end:
        raise ConfigError(f"time_range start {start} is not before end {end}")
    return start, end
