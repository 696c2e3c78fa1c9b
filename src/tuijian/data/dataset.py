"""Dataset: the immutable, indexed form of an interaction log plus its feature tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from tuijian.data.columns import Columns
from tuijian.data.vocabulary import Vocabulary
from tuijian.errors import ConfigError, DataError

C = Columns

Catalogue = Literal["interactions", "features"]
CATALOGUES: tuple[Catalogue, ...] = ("interactions", "features")
"""Which items `build_dataset` makes rankable: those of the interactions, or also every item
of the feature table."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions indexed by shared user/item vocabularies, with optional feature tables.

    `interactions` has `user_idx`, `item_idx`, `weight` and optionally `timestamp`, `event`,
    `rating`; one row per event (a prepared dataset has one row per user-item pair).
    `item_features` / `user_features` are keyed by `item_id` / `user_id` (external ids).
    """

    users: Vocabulary
    items: Vocabulary
    interactions: pl.DataFrame
    item_features: pl.DataFrame | None = None
    user_features: pl.DataFrame | None = None
    name: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = {C.user_idx, C.item_idx, C.weight} - set(self.interactions.columns)
        if missing:
            raise DataError(f"dataset interactions lack columns {sorted(missing)}")

    # ---- sizes --------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return self.interactions.height

    @property
    def has_timestamps(self) -> bool:
        return C.timestamp in self.interactions.columns

    @property
    def has_ratings(self) -> bool:
        return C.rating in self.interactions.columns

    # ---- derived views (computed once; the dataset never changes) -------------------------
    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """CSR users x items of summed weights (float32, duplicates added)."""
        inter = self.interactions
        m = sp.csr_matrix(
            (
                inter[C.weight].to_numpy().astype(np.float32),
                (inter[C.user_idx].to_numpy(), inter[C.item_idx].to_numpy()),
            ),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        m.sort_indices()
        return m

    @cached_property
    def pattern(self) -> sp.csr_matrix:
        """The 0/1 float32 CSR of `matrix`'s positive entries, indices sorted (what evaluation
        counts as relevant and hides as seen)."""
        out = (self.matrix > 0).astype(np.float32).tocsr()
        out.sort_indices()
        return out

    @cached_property
    def rating_matrix(self) -> sp.csr_matrix:
        """CSR users x items of explicit ratings (last rating wins); needs a `rating` column."""
        if not self.has_ratings:
            raise DataError(f"{self.name}: no rating column for rating prediction")
        inter = self.interactions.unique([C.user_idx, C.item_idx], keep="last", maintain_order=True)
        return sp.csr_matrix(
            (
                inter[C.rating].to_numpy().astype(np.float32),
                (inter[C.user_idx].to_numpy(), inter[C.item_idx].to_numpy()),
            ),
            shape=(self.n_users, self.n_items),
        )

    @cached_property
    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user time-ordered item sequences as (indptr, item_idx), CSR style.

        Order is by timestamp when present (stable: ties keep file order), else file order.
        """
        inter = self.interactions.with_row_index("__row")
        keys = [C.user_idx, C.timestamp, "__row"] if self.has_timestamps else [C.user_idx, "__row"]
        inter = inter.sort(keys)
        users = inter[C.user_idx].to_numpy()
        items = inter[C.item_idx].to_numpy().astype(np.int64)
        counts = np.bincount(users, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, items

    def user_sequence(self, user_idx: int) -> np.ndarray:
        indptr, items = self.sequences
        return items[indptr[user_idx] : indptr[user_idx + 1]]

    @cached_property
    def active_users(self) -> np.ndarray:
        """Indices of users with at least one interaction here."""
        return np.flatnonzero(np.diff(self.matrix.indptr) > 0)

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item."""
        return np.bincount(self.matrix.indices, minlength=self.n_items).astype(np.int64)

    @cached_property
    def feature_only_items(self) -> list[str]:
        """Ids of item-feature rows outside the catalogue: metadata that is never ranked (what
        preparation removed, or items nobody interacted with), kept for a cold-item protocol."""
        if self.item_features is None:
            return []
        ids = self.item_features[C.item_id].cast(pl.Utf8).unique(maintain_order=True)
        return ids.filter(self.items.lookup(ids).is_null()).to_list()

    def with_interactions(self, interactions: pl.DataFrame, name: str | None = None) -> Dataset:
        """A new dataset over the same vocabularies and features with other interactions."""
        return Dataset(
            users=self.users,
            items=self.items,
            interactions=interactions,
            item_features=self.item_features,
            user_features=self.user_features,
            name=name or self.name,
            meta=dict(self.meta),
        )

    def external(self) -> pl.DataFrame:
        """Interactions with external `user_id` / `item_id` columns in front."""
        inter = self.interactions
        return inter.with_columns(
            pl.Series(C.user_id, self.users.id(inter[C.user_idx].to_numpy()).tolist(), pl.Utf8),
            pl.Series(C.item_id, self.items.id(inter[C.item_idx].to_numpy()).tolist(), pl.Utf8),
        ).select([C.user_id, C.item_id, *inter.columns])

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the dataset to a folder as Parquet tables plus `dataset.json`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.users.to_frame().write_parquet(path / "users.parquet")
        self.items.to_frame().write_parquet(path / "items.parquet")
        self.interactions.write_parquet(path / "interactions.parquet")
        if self.item_features is not None:
            self.item_features.write_parquet(path / "item_features.parquet")
        if self.user_features is not None:
            self.user_features.write_parquet(path / "user_features.parquet")
        meta = {"name": self.name, "meta": self.meta, "format": "tuijian.dataset/1"}
        (path / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset folder written by `save`."""
        return cls.load_parts(path, "interactions.parquet")

    @classmethod
    def load_parts(cls, path: str | Path, interactions: str) -> Dataset:
        """Read a dataset folder, taking the interactions from the named Parquet file."""
        path = Path(path)
        if not (path / "dataset.json").is_file():
            raise DataError(f"{path}: not a tuijian dataset folder (no dataset.json)")
        meta = json.loads((path / "dataset.json").read_text())

        def opt(name: str) -> pl.DataFrame | None:
            p = path / name
            return pl.read_parquet(p) if p.is_file() else None

        return cls(
            users=Vocabulary.from_frame(pl.read_parquet(path / "users.parquet")),
            items=Vocabulary.from_frame(pl.read_parquet(path / "items.parquet")),
            interactions=pl.read_parquet(path / interactions),
            item_features=opt("item_features.parquet"),
            user_features=opt("user_features.parquet"),
            name=meta.get("name", "dataset"),
            meta=meta.get("meta", {}),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions})"
        )


def build_dataset(
    frame: pl.DataFrame,
    *,
    item_features: pl.DataFrame | None = None,
    user_features: pl.DataFrame | None = None,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
    name: str = "dataset",
    catalogue: Catalogue = "interactions",
) -> Dataset:
    """Index an interactions table with external `user_id`/`item_id` into a `Dataset`.

    Vocabularies default to the sorted unique ids of the table: the rankable catalogue is what
    survived preparation. Feature rows of other items stay in `item_features` as metadata (the
    content model and the diversity metric look rows up by id and skip them) and are never
    ranked; `catalogue="features"` makes them rankable too, for callers that rank items nobody
    interacted with (a cold-item protocol). A missing `weight` becomes 1.
    """
    if catalogue not in CATALOGUES:
        raise ConfigError(f"catalogue must be one of {', '.join(CATALOGUES)}, got {catalogue!r}")
    for table, key in ((item_features, C.item_id), (user_features, C.user_id)):
        if table is not None and key not in table.columns:
            raise DataError(f"{name}: a feature table lacks the {key!r} column ({table.columns})")
    for col in (C.user_id, C.item_id):
        if col not in frame.columns:
            raise DataError(f"interactions lack the {col!r} column (have {frame.columns})")
    frame = frame.with_columns(pl.col(C.user_id).cast(pl.Utf8), pl.col(C.item_id).cast(pl.Utf8))
    if C.weight not in frame.columns:
        frame = frame.with_columns(pl.lit(1.0, dtype=pl.Float32).alias(C.weight))
    weight = frame[C.weight].cast(pl.Float32)
    bad = (weight <= 0) | weight.is_nan() | weight.is_infinite()
    if bad.any():  # one rule everywhere: prepare() drops them, a Dataset never holds them
        row = int(bad.arg_true()[0])
        raise DataError(
            f"{name}: {int(bad.sum())} interactions weigh <= 0 or not a finite number (first: "
            f"row {row}, weight {weight[row]}); prepare() drops rows with weight <= 0"
        )
    if users is None:
        users = Vocabulary.from_series(frame[C.user_id], name=C.user_id)
    if items is None:
        ids = frame[C.item_id]
        if catalogue == "features" and item_features is not None:
            ids = pl.concat([ids, item_features[C.item_id].cast(pl.Utf8)])
        items = Vocabulary.from_series(ids, name=C.item_id)
    uidx = users.lookup(frame[C.user_id])
    iidx = items.lookup(frame[C.item_id])
    frame = frame.with_columns(uidx.alias(C.user_idx), iidx.alias(C.item_idx)).drop_nulls(
        [C.user_idx, C.item_idx]
    )
    rest = [c for c in frame.columns if c not in (C.user_id, C.item_id, C.user_idx, C.item_idx)]
    inter = frame.select(
        pl.col(C.user_idx).cast(pl.Int64), pl.col(C.item_idx).cast(pl.Int64), *rest
    ).with_columns(pl.col(C.weight).cast(pl.Float32))
    if item_features is not None:
        item_features = item_features.with_columns(pl.col(C.item_id).cast(pl.Utf8))
    if user_features is not None:
        user_features = user_features.with_columns(pl.col(C.user_id).cast(pl.Utf8))
    meta = {"catalogue": catalogue}
    return Dataset(users, items, inter, item_features, user_features, name=name, meta=meta)
