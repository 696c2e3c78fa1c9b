"""RecBole atomic files: `<name>.inter` with optional `<name>.item` / `<name>.user`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import (
    ROW,
    Origin,
    RawData,
    build_interactions,
    check_parsed,
    drop_blank_rows,
    parse_column,
    read_delimited,
)
from tuijian.data.sources.tabular import resolve_mapping
from tuijian.errors import DataError

C = Columns

FIELD_TYPES: Final = ("token", "token_seq", "float", "float_seq")
CATEGORY_FIELDS: Final = ("class", "genre", "genres", "categories", "category")
"""Field names whose values become the item `categories` list."""


def load_recbole(path: str | Path, *, columns: dict[str, Any] | None = None) -> RawData:
    """A RecBole dataset: `path` is its folder or its `.inter` file.

    `columns` maps our names to field names when they differ from `user_id`, `item_id`,
    `rating`, `timestamp`. Sequence fields become lists; a class/genre field becomes
    `categories`, a title field `title`, and items with either get a `text` column.
    """
    inter_path = _inter_file(Path(path))
    name = inter_path.stem
    frame, types = _read_atomic(inter_path)
    mapping = resolve_mapping(columns, frame.columns)
    mapping = {ours: theirs for ours, theirs in mapping.items() if theirs in frame.columns}
    for required in (C.user_id, C.item_id):
        if required not in mapping:
            raise DataError(
                f"{inter_path}: missing field {required!r}; fields present: {list(types)}"
            )
    inter = build_interactions(frame, mapping, Origin(str(inter_path), first_line=2))
    items = users = None
    item_path = inter_path.with_suffix(".item")
    if item_path.is_file():
        items = _features(item_path, mapping[C.item_id], C.item_id, item=True)
    user_path = inter_path.with_suffix(".user")
    if user_path.is_file():
        users = _features(user_path, mapping[C.user_id], C.user_id, item=False)
    return RawData(inter, items, users, name=name, notes={"fields": types})


def _inter_file(path: Path) -> Path:
    """The `.inter` file at `path`, or the one in folder `path` (preferring `<folder>.inter`)."""
    if path.is_file():
        if path.suffix != ".inter":
            raise DataError(f"{path}: a RecBole dataset is read from its .inter file")
        return path
    if not path.is_dir():
        raise DataError(f"RecBole dataset not found: {path}")
    own = path / f"{path.name}.inter"
    if own.is_file():
        return own
    found = sorted(path.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{path}: no .inter file (found {sorted(p.name for p in path.iterdir())})")
    raise DataError(f"{path}: several .inter files {[p.name for p in found]}; pass one of them")


def _read_atomic(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """A tab-separated atomic file as Utf8 columns named by field, and each field's type."""
    frame = read_delimited(path, separator="\t", quote_char=None)
    types: dict[str, str] = {}
    for header in frame.columns:
        field, _, kind = header.strip().rpartition(":")
        if not field or kind not in FIELD_TYPES:
            raise DataError(
                f"{path}, line 1: header field {header!r} is not 'name:type' "
                f"with a type in {list(FIELD_TYPES)}"
            )
        types[field] = kind
    return frame.rename(dict(zip(frame.columns, types, strict=True))), types


def _features(path: Path, field: str, key: str, *, item: bool) -> pl.DataFrame:
    """Item or user features from an atomic file, keyed by `key` (renamed from `field`).

    Empty values are allowed (null, or an empty list); values that do not parse are not.
    """
    frame, types = _read_atomic(path)
    if field not in types:
        raise DataError(f"{path}: missing field {field!r}; fields present: {list(types)}")
    frame = drop_blank_rows(frame)
    origin = Origin(str(path), first_line=2)
    rows = frame[ROW]
    ids = parse_column(frame[field], pl.Utf8())
    check_parsed(frame[field], ids, origin, field, "an id", rows)
    out: dict[str, pl.Series] = {key: ids}
    for name, kind in types.items():
        if name == field:
            continue
        target = _target_name(name, out) if item else name
        raw = frame[name]
        if target in (C.title, C.text):
            out[target] = raw.fill_null("").str.strip_chars()
        elif kind in ("token_seq", "float_seq") or target == C.categories:
            tokens = (
                raw.fill_null("").str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
            )
            if kind == "float_seq":
                numbers = tokens.list.eval(pl.element().cast(pl.Float64, strict=False))
                bad = numbers.list.eval(pl.element().is_null()).list.any()
                _reject(bad, raw, origin, name, "numbers", rows)
                tokens = numbers
            out[target] = tokens
        elif kind == "float":
            parsed = parse_column(raw, pl.Float64())
            bad = parsed.is_null() & (raw.str.strip_chars().fill_null("") != "")
            _reject(bad, raw, origin, name, "a number", rows)
            out[target] = parsed
        else:
            out[target] = parse_column(raw, pl.Utf8())
    features = pl.DataFrame([series.alias(name) for name, series in out.items()])
    has_content = C.title in features.columns or C.categories in features.columns
    if item and has_content and C.text not in features.columns:
        features = features.with_columns(_text(features).alias(C.text))
    return features


def _target_name(field: str, taken: dict[str, pl.Series]) -> str:
    """Our column name for an item field: the first class/genre field is `categories`, the
    first title field `title`; any other field keeps its name."""
    lowered = field.lower()
    if lowered in CATEGORY_FIELDS and C.categories not in taken:
        return C.categories
    if "title" in lowered and C.title not in taken:
        return C.title
    return field


def _text(features: pl.DataFrame) -> pl.Expr:
    """The item text: title, then categories, joined by '. '."""
    parts = []
    if C.title in features.columns:
        parts.append(pl.col(C.title))
    if C.categories in features.columns:
        parts.append(pl.col(C.categories).list.join(", "))
    return pl.concat_list(parts).list.eval(pl.element().filter(pl.element() != "")).list.join(". ")


def _reject(
    bad: pl.Series, raw: pl.Series, origin: Origin, name: str, kind: str, rows: pl.Series
) -> None:
    """Raise DataError at the first row flagged in `bad`, quoting its raw value."""
    if bad.any():
        pos = int(bad.arg_true()[0])
        raise DataError(
            f"{origin.at(int(rows[pos]))}: column {name!r}: cannot parse {raw[pos]!r} as {kind}"
        )
