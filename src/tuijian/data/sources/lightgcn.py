"""LightGCN / NGCF benchmark folders: `train.txt` and `test.txt` of user-item id lists."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import RawData, require_file
from tuijian.data.sources.idlists import read_id_lists

C = Columns

PART_FILES: Final = {"train": "train.txt", "test": "test.txt"}


def load_lightgcn(path: str | Path) -> RawData:
    """The published split of a LightGCN folder, kept as `fixed_split` (train, test).

    Each line is a user then the items, space-separated; users with an empty list in a part
    are counted in `notes["users_without_items"]`.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    parts: dict[str, pl.DataFrame] = {}
    empty: dict[str, list[str]] = {}
    for part, file_name in PART_FILES.items():
        lists = read_id_lists(require_file(folder / file_name, f"LightGCN {part} file"))
        parts[part] = lists.pairs.select(C.user_id, C.item_id)
        empty[part] = lists.users_without_items
    inter = pl.concat(list(parts.values()))
    notes = {
        "rows": {part: frame.height for part, frame in parts.items()},
        "users_without_items": empty,
    }
    return RawData(inter, fixed_split=parts, name=folder.name, notes=notes)
