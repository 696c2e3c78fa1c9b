"""Text files of id lists, one user per line: `user item item ...` (LightGCN and S3Rec files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import read_text
from tuijian.errors import DataError

C = Columns
POSITION = "position"


@dataclass(frozen=True)
class IdLists:
    """The pairs of an id-list file and what its lines held."""

    pairs: pl.DataFrame
    """`user_id`, `item_id` (Utf8) and `position` (Int64: 0-based place in the user's line)."""
    n_lines: int
    """Number of non-blank lines (users)."""
    users_without_items: list[str]
    """Users whose line holds no item."""


def read_id_lists(path: Path) -> IdLists:
    """Parse an id-list file, vectorized: whitespace of any length separates ids, trailing
    spaces and lines with a user but no items are accepted, and every id must be an integer."""
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    lines = pl.Series("tokens", text.split("\n"))
    tokens = lines.str.replace_all(r"\s+", " ").str.strip_chars(" ").str.split(" ")
    frame = (
        pl.DataFrame([tokens])
        .with_row_index("line", offset=1)
        .filter(pl.col("tokens").list.first() != "")
    )
    flat = frame.select("line", pl.col("tokens")).explode("tokens")
    bad = flat["tokens"].cast(pl.Int64, strict=False).is_null()
    if bad.any():
        _raise_bad_token(path, frame, int(flat["line"].filter(bad)[0]))
    frame = frame.select(
        pl.col("tokens").list.first().alias(C.user_id),
        pl.col("tokens").list.slice(1).alias(C.item_id),
    )
    empty = frame.filter(pl.col(C.item_id).list.len() == 0)[C.user_id].to_list()
    pairs = (
        frame.explode(C.item_id)
        .drop_nulls(C.item_id)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over(C.user_id).alias(POSITION))
    )
    return IdLists(pairs, frame.height, empty)


def _raise_bad_token(path: Path, frame: pl.DataFrame, line: int) -> None:
    """Raise DataError naming the line and the 1-based column of the first non-integer id."""
    tokens = frame.filter(pl.col("line") == line)["tokens"][0].to_list()
    column = next(i for i, tok in enumerate(tokens, start=1) if not _is_int(tok))
    raise DataError(
        f"{path}, line {line}: column {column}: cannot parse {tokens[column - 1]!r} as an id"
    )


def _is_int(token: str) -> bool:
    """True when `token` is a base-10 integer."""
    try:
        int(token)
    except ValueError:
        return False
    return True
