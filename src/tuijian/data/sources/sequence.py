"""Sequential-recommendation files (S3Rec / SASRec): `<name>.txt`, items in time order."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import RawData, read_text, require_file
from tuijian.data.sources.idlists import POSITION, read_id_lists
from tuijian.errors import DataError

C = Columns


def load_sequence(path: str | Path) -> RawData:
    """Per-user item sequences; `timestamp` is the position in the sequence (0, 1, 2, ...)
    so temporal and leave-last-out splits keep the order. `<name>_item2attributes.json`
    next to the file, when present, gives the item `categories` (attribute ids as strings)."""
    path = require_file(Path(path), "sequence file")
    lists = read_id_lists(path)
    inter = lists.pairs.select(
        C.user_id, C.item_id, pl.col(POSITION).cast(pl.Int64).alias(C.timestamp)
    )
    attributes = path.with_name(f"{path.stem}_item2attributes.json")
    items = _attributes(attributes) if attributes.is_file() else None
    notes = {"timestamp": "position in the user's sequence"}
    if lists.users_without_items:
        notes["users_without_items"] = lists.users_without_items
    return RawData(inter, items, name=path.stem, notes=notes)


def _attributes(path: Path) -> pl.DataFrame:
    """Item `categories` from a JSON object `{"item_id": [attr_id, ...], ...}`."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise DataError(f"{path}: expected an object mapping item ids to lists of attributes")
    return pl.DataFrame(
        {
            C.item_id: [str(key).strip() for key in data],
            C.categories: [[str(attr) for attr in attrs] for attrs in data.values()],
        },
        schema={C.item_id: pl.Utf8, C.categories: pl.List(pl.Utf8)},
    )
