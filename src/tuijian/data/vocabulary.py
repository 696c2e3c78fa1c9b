"""Vocabulary: a bijection between external ids (strings) and dense indices 0..n-1.

Ids stay variable-length strings end to end (an object array of `str`, a polars String column):
never a fixed-width numpy text array, which costs ids x longest id x 4 bytes, so one very long
id would multiply the memory of every id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from tuijian.errors import UnknownIdError


class Vocabulary:
    """Immutable external id <-> index map; external ids are normalised to strings."""

    __slots__ = ("_ids", "_index", "_mapping", "name")

    def __init__(self, ids: Iterable[object], name: str = "id") -> None:
        arr = np.asarray([str(x) for x in ids], dtype=object)
        self._ids = arr
        self._index = {x: i for i, x in enumerate(arr.tolist())}
        self.name = name
        self._mapping: pl.DataFrame | None = None
        if len(self._index) != len(arr):
            raise ValueError(f"{name} vocabulary has duplicate ids")

    @classmethod
    def from_series(cls, values: pl.Series, name: str = "id") -> Vocabulary:
        """Sorted unique ids of a column (numeric ids sort numerically, then become strings)."""
        uniq = values.unique().sort()
        return cls(uniq.cast(pl.Utf8).to_list(), name=name)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_: object) -> bool:
        return str(id_) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:
        return hash((len(self._ids), tuple(self._ids[:8].tolist())))

    @property
    def ids(self) -> np.ndarray:
        """All external ids in index order (object array of str)."""
        return self._ids

    def index(self, ids: Sequence[object] | np.ndarray | object) -> np.ndarray:
        """Indices of external ids; raises `UnknownIdError` naming the first unknown one."""
        if isinstance(ids, str | int | np.integer):
            ids = [ids]
        out = np.empty(len(ids), dtype=np.int64)  # type: ignore[arg-type]
        for j, x in enumerate(ids):  # type: ignore[arg-type]
            try:
                out[j] = self._index[str(x)]
            except KeyError:
                raise UnknownIdError(f"unknown {self.name}: {x!r}") from None
        return out

    def index_or_missing(self, ids: Sequence[object] | np.ndarray) -> np.ndarray:
        """Indices of external ids, -1 for ids not in the vocabulary (never raises)."""
        get = self._index.get
        return np.fromiter((get(str(x), -1) for x in ids), dtype=np.int64, count=len(ids))

    def lookup(self, ids: pl.Series) -> pl.Series:
        """Vectorized index of a column of ids; unknown ids become null."""
        if self._mapping is None:
            self._mapping = pl.DataFrame(
                {
                    "__id": pl.Series(self._ids.tolist(), dtype=pl.Utf8),
                    "__idx": np.arange(len(self._ids), dtype=np.int64),
                }
            )
        mapping = self._mapping
        frame = pl.DataFrame({"__id": ids.cast(pl.Utf8)})
        return frame.join(mapping, on="__id", how="left", maintain_order="left")["__idx"]

    def id(self, idx: np.ndarray | Sequence[int]) -> np.ndarray:
        """External ids of indices."""
        return self._ids[np.asarray(idx, dtype=np.int64)]

    def to_frame(self) -> pl.DataFrame:
        """The ids as a one-column String frame named after the vocabulary."""
        return pl.DataFrame({self.name: self._ids.tolist()}, schema={self.name: pl.Utf8})

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Vocabulary:
        name = frame.columns[0]
        return cls(frame[name].to_list(), name=name)
