"""MovieLens folders: 100K (`u.data`), 1M (`ratings.dat` or the pairs-only copy) and latest."""

from __future__ import annotations

from pathlib import Path
from typing import Final, cast

import polars as pl
import pyarrow.parquet as pq

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
from tuijian.errors import DataError

C = Columns

GENRES_100K: Final = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""The 100K genre flags in file order, used when `u.genre` is absent."""

NO_GENRES: Final = "(no genres listed)"
PAIRS_FILES: Final = ("ratings_user_movie_only.parquet", "ratings_user_movie_only.tsv.gz")
_PAIR_USER: Final = ("userID", "user_id", "userId")
_PAIR_ITEM: Final = ("movieID", "movie_id", "movieId", "item_id")
_MARKERS: Final = ("u.data", "ratings.dat", *PAIRS_FILES, "ratings.csv")


def load_movielens(path: str | Path) -> RawData:
    """A MovieLens folder, its layout detected from the files it holds.

    Items get `title`, `year`, `categories` (genres) and `text` (title, genres and, for
    ml-latest, user tags); users get the demographic columns where the folder has them.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"MovieLens folder not found: {folder}")
    if (folder / "u.data").is_file():
        return _load_100k(folder)
    if (folder / "ratings.dat").is_file():
        return _load_1m(folder)
    if any((folder / name).is_file() for name in PAIRS_FILES):
        return _load_1m_pairs(folder)
    if (folder / "ratings.csv").is_file():
        return _load_latest(folder)
    raise DataError(
        f"{folder}: not a MovieLens folder (expected one of {list(_MARKERS)}; "
        f"found {sorted(p.name for p in folder.iterdir())})"
    )


# ---- 100K -------------------------------------------------------------------------------------
def _load_100k(folder: Path) -> RawData:
    """`u.data` ratings, `u.item` movies with genre flags, `u.user` demographics."""
    path = folder / "u.data"
    names = [C.user_id, C.item_id, C.rating, C.timestamp]
    frame = read_delimited(path, separator="\t", has_header=False, names=names, quote_char=None)
    inter = build_interactions(frame, {n: n for n in names}, Origin(str(path), first_line=1))
    items = _items_100k(folder) if (folder / "u.item").is_file() else None
    users = None
    if (folder / "u.user").is_file():
        user_names = [C.user_id, "age", "gender", "occupation", "zip_code"]
        users = _features(folder / "u.user", "|", user_names, C.user_id, ints=("age",))
    return RawData(inter, items, users, name=folder.name, notes={"variant": "100k"})


def _genre_names(folder: Path) -> list[str]:
    """Genre names in flag order, from `u.genre` (`name|id`) when present."""
    path = folder / "u.genre"
    if not path.is_file():
        return list(GENRES_100K)
    frame = read_delimited(path, separator="|", has_header=False, names=["name", "id"])
    frame = frame.drop_nulls().with_columns(pl.col("id").cast(pl.Int64, strict=False))
    return frame.sort("id")["name"].to_list()


def _items_100k(folder: Path) -> pl.DataFrame:
    """`u.item` (latin-1, `|`): id, title, release date, video date, URL, then genre flags."""
    path = folder / "u.item"
    genres = _genre_names(folder)
    names = [C.item_id, C.title, "release_date", "video_release_date", "url", *genres]
    frame = read_delimited(
        path, separator="|", has_header=False, encoding="latin-1", quote_char=None
    )
    if frame.width != len(names):
        raise DataError(f"{path}: {frame.width} fields per line, expected {len(names)}")
    frame = drop_blank_rows(frame.rename(dict(zip(frame.columns, names, strict=True))))
    _check_ids(frame, C.item_id, Origin(str(path), first_line=1))
    flags = [pl.when(pl.col(g).str.strip_chars() == "1").then(pl.lit(g)) for g in genres]
    frame = frame.select(
        pl.col(C.item_id).str.strip_chars(),
        pl.col(C.title).fill_null(""),
        pl.col("release_date").str.slice(-4).cast(pl.Int64, strict=False).alias("year"),
        pl.concat_list(flags).list.drop_nulls().alias(C.categories),
    )
    return _with_text(frame)


# ---- 1M ---------------------------------------------------------------------------------------
def _load_1m(folder: Path) -> RawData:
    """`ratings.dat` (`user::item::rating::ts`) plus `movies.dat` / `users.dat`."""
    path = folder / "ratings.dat"
    names = [C.user_id, C.item_id, C.rating, C.timestamp]
    frame = read_delimited(path, separator="::", has_header=False, names=names, quote_char=None)
    inter = build_interactions(frame, {n: n for n in names}, Origin(str(path), first_line=1))
    items, users = _side_1m(folder)
    return RawData(inter, items, users, name=folder.name, notes={"variant": "1m"})


def _load_1m_pairs(folder: Path) -> RawData:
    """The user-movie pairs of ml-1m without rating or timestamp (Parquet, else gzip TSV)."""
    parquet, tsv = (folder / name for name in PAIRS_FILES)
    if parquet.is_file():
        frame = cast(pl.DataFrame, pl.from_arrow(pq.read_table(parquet)))
        origin, path = Origin(str(parquet)), parquet
    else:
        frame = read_delimited(tsv, separator="\t", quote_char=None)
        origin, path = Origin(str(tsv), first_line=2), tsv
    mapping = {
        C.user_id: _pick(frame, _PAIR_USER, path),
        C.item_id: _pick(frame, _PAIR_ITEM, path),
    }
    inter = build_interactions(frame, mapping, origin)
    items, users = _side_1m(folder)
    notes = {"variant": "1m-pairs", "file": path.name}
    return RawData(inter, items, users, name=folder.name, notes=notes)


def _pick(frame: pl.DataFrame, candidates: tuple[str, ...], path: Path) -> str:
    """The first of `candidates` that `frame` has as a column, else DataError."""
    for name in candidates:
        if name in frame.columns:
            return name
    raise DataError(
        f"{path}: missing column (one of {list(candidates)}); columns present: {frame.columns}"
    )


def _side_1m(folder: Path) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """`movies.dat` (latin-1 `id::title::genres`) and `users.dat` (`id::gender::age::occ::zip`)."""
    items = users = None
    if (folder / "movies.dat").is_file():
        names = [C.item_id, C.title, "genres"]
        frame = _features(folder / "movies.dat", "::", names, C.item_id, encoding="latin-1")
        items = _movies(frame)
    if (folder / "users.dat").is_file():
        names = [C.user_id, "gender", "age", "occupation", "zip_code"]
        users = _features(folder / "users.dat", "::", names, C.user_id, ints=("age",))
    return items, users


# ---- latest -----------------------------------------------------------------------------------
def _load_latest(folder: Path) -> RawData:
    """`ratings.csv`, `movies.csv` and `tags.csv` of ml-latest / ml-latest-small / ml-25m."""
    path = folder / "ratings.csv"
    frame = read_delimited(path)
    mapping = {
        C.user_id: "userId",
        C.item_id: "movieId",
        C.rating: "rating",
        C.timestamp: "timestamp",
    }
    inter = build_interactions(frame, mapping, Origin(str(path), first_line=2))
    items = None
    if (folder / "movies.csv").is_file():
        movies = read_delimited(folder / "movies.csv")
        movies = _require(movies, ["movieId", "title", "genres"], folder / "movies.csv")
        movies = drop_blank_rows(movies)
        _check_ids(movies, "movieId", Origin(str(folder / "movies.csv"), first_line=2))
        movies = movies.rename({"movieId": C.item_id})
        tags = _tags(folder / "tags.csv") if (folder / "tags.csv").is_file() else None
        items = _movies(movies, tags)
    return RawData(inter, items, name=folder.name, notes={"variant": "latest"})


def _tags(path: Path) -> pl.DataFrame:
    """Distinct tags per movie from `tags.csv` (userId,movieId,tag,timestamp), sorted."""
    frame = _require(read_delimited(path), ["movieId", "tag"], path)
    return (
        frame.select(pl.col("movieId").str.strip_chars().alias(C.item_id), pl.col("tag"))
        .drop_nulls()
        .unique()
        .group_by(C.item_id)
        .agg(pl.col("tag").sort().alias("tags"))
    )


# ---- shared -----------------------------------------------------------------------------------
def _movies(frame: pl.DataFrame, tags: pl.DataFrame | None = None) -> pl.DataFrame:
    """Movie features from `item_id, title, genres` (`|`-joined) and optional tag lists."""
    genres = (
        pl.col("genres")
        .fill_null("")
        .str.split("|")
        .list.eval(pl.element().filter((pl.element() != "") & (pl.element() != NO_GENRES)))
    )
    out = frame.select(
        pl.col(C.item_id).str.strip_chars(),
        pl.col(C.title).fill_null(""),
        pl.col(C.title).str.extract(r"\((\d{4})\)\s*$").cast(pl.Int64, strict=False).alias("year"),
        genres.alias(C.categories),
    )
    if tags is not None:
        out = out.join(tags, on=C.item_id, how="left", maintain_order="left")
    return _with_text(out)


def _with_text(items: pl.DataFrame) -> pl.DataFrame:
    """Add `text`: the title, then the genres, then the tags (when there are any)."""
    parts = [pl.col(C.title), pl.col(C.categories).list.join(", ")]
    if "tags" in items.columns:
        parts.append(pl.col("tags").fill_null([]).list.join(", "))
    text = pl.concat_list(parts).list.eval(pl.element().filter(pl.element() != "")).list.join(". ")
    return items.with_columns(text.alias(C.text)).drop("tags", strict=False)


def _features(
    path: Path,
    separator: str,
    names: list[str],
    key: str,
    *,
    ints: tuple[str, ...] = (),
    encoding: str = "utf-8",
) -> pl.DataFrame:
    """A headerless feature file with known columns; `ints` are parsed as Int64 (checked)."""
    frame = read_delimited(
        path, separator=separator, has_header=False, encoding=encoding, quote_char=None
    )
    if frame.width != len(names):
        raise DataError(f"{path}: {frame.width} fields per line, expected {len(names)}")
    frame = drop_blank_rows(frame.rename(dict(zip(frame.columns, names, strict=True))))
    origin = Origin(str(path), first_line=1)
    _check_ids(frame, key, origin)
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in names)
    for col in ints:
        parsed = parse_column(frame[col], pl.Int64())
        check_parsed(frame[col], parsed, origin, col, "an integer", frame[ROW])
        frame = frame.with_columns(parsed)
    return frame.drop(ROW)


def _check_ids(frame: pl.DataFrame, col: str, origin: Origin) -> None:
    """Raise DataError at the first row whose id in `col` is missing (`ROW`: line positions)."""
    rows = frame[ROW] if ROW in frame.columns else None
    check_parsed(frame[col], parse_column(frame[col], pl.Utf8()), origin, col, "an id", rows)


def _require(frame: pl.DataFrame, names: list[str], path: Path) -> pl.DataFrame:
    """`frame` if it has every column in `names`, else DataError naming the missing ones."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns present: {frame.columns}")
    return frame
