"""Queries: what a list is asked for. A known user, a history given at call time, or both.

`Query` is the public, id-level request; `QueryBatch` is its index-level, vectorized form (a CSR
of histories, one row per query) that the ranking path and every model's scoring take. A known
user's history is, by default, their training history extended by the items given with the
query (fresh events); an anonymous query's history is only the given items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from tuijian.errors import DataError

if TYPE_CHECKING:
    from tuijian.models.base import Recommender


@dataclass(frozen=True)
class Query:
    """One request for a list, in external ids.

    Attributes:
        user_id: a user known at fit time, or None for an anonymous visitor.
        items: item ids the user interacted with at call time, oldest first (for a known user
            these extend the training history); ids the model does not know are ignored.
        weights: one weight per item (default 1.0), summed per item like training weights.
        timestamps: one time per item, for models that read the order and the gaps.
        events: one event type per item (view, cart, buy...), for models that read them.
        candidates: rank only these item ids (None: the whole catalogue).
        exclude: never return these item ids.
        time: when the list is asked for (context for time-aware models).
        training_history: for a known user, start from the training history (False: use only
            `items`, e.g. a session of a logged-in user).
    """

    user_id: object | None = None
    items: Sequence[object] = ()
    weights: Sequence[float] | None = None
    timestamps: Sequence[float] | None = None
    events: Sequence[str] | None = None
    candidates: Sequence[object] | None = None
    exclude: Sequence[object] = ()
    time: float | None = None
    training_history: bool = True

    def __post_init__(self) -> None:
        for name in ("weights", "timestamps", "events"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.items):
                raise DataError(
                    f"query for {self.user_id!r}: {len(values)} {name} for {len(self.items)} items"
                )


@dataclass(frozen=True)
class Given:
    """The items given at call time, ragged over queries: query q owns `items[indptr[q]:...]`."""

    indptr: np.ndarray  # (Q + 1,) int64
    items: np.ndarray  # (N,) int64 item indices, in the order given
    weights: np.ndarray  # (N,) float32
    timestamps: np.ndarray | None = None  # (N,) float64
    events: np.ndarray | None = None  # (N,) object (str)

    @classmethod
    def empty(cls, n_queries: int) -> Given:
        return cls(
            np.zeros(n_queries + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.float32),
        )

    def rows(self, start: int, stop: int) -> Given:
        """The given items of queries start..stop-1."""
        lo, hi = self.indptr[start], self.indptr[stop]
        cut = slice(lo, hi)
        return Given(
            self.indptr[start : stop + 1] - lo,
            self.items[cut],
            self.weights[cut],
            None if self.timestamps is None else self.timestamps[cut],
            None if self.events is None else self.events[cut],
        )


def row_slice(matrix: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows start..stop-1 of a CSR as a view of its arrays (scipy's slicing copies them)."""
    lo, hi = matrix.indptr[start], matrix.indptr[stop]
    return sp.csr_matrix(
        (matrix.data[lo:hi], matrix.indices[lo:hi], matrix.indptr[start : stop + 1] - lo),
        shape=(stop - start, matrix.shape[1]),
        copy=False,
    )


def _pattern(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 CSR with ones at (rows, cols), duplicates collapsed, indices sorted."""
    out = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 float32 pattern of `matrix`; a canonical 0/1 float32 CSR comes back as is."""
    if (
        sp.isspmatrix_csr(matrix)
        and matrix.dtype == np.float32
        and matrix.has_canonical_format
        and bool((matrix.data == 1.0).all())
    ):
        return matrix
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


@dataclass(frozen=True, eq=False)
class QueryBatch:
    """Queries in index space, ready to score: one CSR row of history per query.

    `history` is what models score: weights per item, the known user's training row plus the
    given items, duplicates summed. `own_history` marks queries whose history is exactly a known
    user's training history: those are scored by `score(user_idx)`, the rest by
    `score_history`, and empty histories by the popularity fallback.
    """

    history: sp.csr_matrix  # (Q, I) float32
    user_idx: np.ndarray  # (Q,) int64, -1 = no known user
    own_history: np.ndarray  # (Q,) bool
    candidates: sp.csr_matrix | None = None  # (Q, I) 0/1, None = every item
    exclude: sp.csr_matrix | None = None  # (Q, I) 0/1, never returned
    given: Given = field(default=None)  # type: ignore[assignment]
    time: np.ndarray | None = None  # (Q,) float64, NaN = not given
    training: np.ndarray | None = None  # (Q,) bool, history starts from the user's training

    def __post_init__(self) -> None:
        n = self.history.shape[0]
        if self.given is None:
            object.__setattr__(self, "given", Given.empty(n))
        for name in ("candidates", "exclude"):
            m = getattr(self, name)
            if m is not None and m.shape != self.history.shape:
                raise DataError(f"{name} has shape {m.shape}, history {self.history.shape}")
        if len(self.user_idx) != n or len(self.own_history) != n:
            raise DataError(f"{n} histories but {len(self.user_idx)} users")

    def __len__(self) -> int:
        return self.history.shape[0]

    @property
    def n_items(self) -> int:
        return self.history.shape[1]

    @property
    def empty(self) -> np.ndarray:
        """(Q,) bool: queries with nothing in their history (they get the fallback)."""
        return np.diff(self.history.indptr) == 0

    def rows(self, start: int, stop: int) -> QueryBatch:
        """Queries start..stop-1 (views of every part's arrays, nothing copied)."""
        sl = slice(start, stop)
        stop = min(stop, len(self))
        return QueryBatch(
            history=row_slice(self.history, start, stop),
            user_idx=self.user_idx[sl],
            own_history=self.own_history[sl],
            candidates=None if self.candidates is None else row_slice(self.candidates, start, stop),
            exclude=None if self.exclude is None else row_slice(self.exclude, start, stop),
            given=self.given.rows(start, stop),
            time=None if self.time is None else self.time[sl],
            training=None if self.training is None else self.training[sl],
        )

    def with_exclude(self, exclude: sp.csr_matrix | None) -> QueryBatch:
        """The same queries with `exclude` added to what they already exclude."""
        if exclude is None:
            return self
        extra = _binary(exclude)
        merged = extra if self.exclude is None else _binary(self.exclude + extra)
        return replace(self, exclude=merged)

    # ---- constructors ----------------------------------------------------------------------
    @classmethod
    def for_users(
        cls, model: Recommender, user_idx: np.ndarray, *, exclude: sp.csr_matrix | None = None
    ) -> QueryBatch:
        """Known users by index, each with their training history (what evaluation ranks)."""
        users = np.asarray(user_idx, dtype=np.int64)
        return cls(
            history=model.user_history(users),
            user_idx=users,
            own_history=np.ones(len(users), dtype=bool),
            exclude=None if exclude is None else _binary(exclude),
            training=np.ones(len(users), dtype=bool),
        )

    @classmethod
    def from_history(
        cls,
        history: sp.csr_matrix,
        user_idx: np.ndarray | None = None,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: sp.csr_matrix | None = None,
    ) -> QueryBatch:
        """Queries whose whole history is the given (Q, n_items) weight matrix (e.g. held-out
        users of the strong-generalization protocol); `user_idx` only labels them."""
        hist = sp.csr_matrix(history, dtype=np.float32, copy=True)
        hist.sum_duplicates()
        hist.sort_indices()
        n = hist.shape[0]
        users = np.full(n, -1, dtype=np.int64) if user_idx is None else np.asarray(user_idx)
        return cls(
            history=hist,
            user_idx=users.astype(np.int64),
            own_history=np.zeros(n, dtype=bool),
            candidates=None if candidates is None else _binary(candidates),
            exclude=None if exclude is None else _binary(exclude),
        )

    @classmethod
    def build(
        cls,
        model: Recommender,
        queries: Sequence[Query],
        *,
        candidates: Sequence[object] | None = None,
        exclude: Sequence[object] | None = None,
    ) -> QueryBatch:
        """Index a list of `Query`s against the model's vocabularies in one pass over all ids.

        Unknown user ids raise `UnknownIdError`; unknown history items are ignored (the model
        has nothing to say about them); unknown candidate or exclude ids raise. `candidates`
        and `exclude` apply to every query (a query's own candidates take precedence).
        """
        n = len(queries)
        n_items = model.n_items
        users = np.full(n, -1, dtype=np.int64)
        named = [q for q in range(n) if queries[q].user_id is not None]
        if named:
            users[named] = model.users_.index([queries[q].user_id for q in named])
        use_training = np.array(
            [q.training_history and q.user_id is not None for q in queries], dtype=bool
        )
        counts = np.array([len(q.items) for q in queries], dtype=np.int64)
        flat = [x for q in queries for x in q.items]
        items = model.items_.index_or_missing(flat)
        weights = np.concatenate(
            [
                np.ones(len(q.items), np.float32)
                if q.weights is None
                else np.asarray(q.weights, np.float32)
                for q in queries
            ]
            or [np.zeros(0, np.float32)]
        )
        owner = np.repeat(np.arange(n), counts)
        known = items >= 0
        given_counts = np.bincount(owner[known], minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(given_counts, out=indptr[1:])
        timestamps = events = None
        if any(q.timestamps is not None for q in queries):
            timestamps = np.concatenate(
                [
                    np.full(len(q.items), np.nan) if q.timestamps is None else q.timestamps
                    for q in queries
                ]
            ).astype(np.float64)[known]
        if any(q.events is not None for q in queries):
            events = np.array(
                [e for q in queries for e in (q.events or [None] * len(q.items))], dtype=object
            )[known]
        given = Given(indptr, items[known], weights[known], timestamps, events)
        fresh = sp.csr_matrix(
            (given.weights, (owner[known], given.items)), shape=(n, n_items), dtype=np.float32
        )
        base = model.user_history(np.where(use_training, users, 0))
        base = sp.diags(use_training.astype(np.float32)) @ base
        history = (base + fresh).tocsr()
        history.sum_duplicates()
        history.eliminate_zeros()
        history.sort_indices()
        own = use_training & (given_counts == 0)
        return cls(
            history=history,
            user_idx=users,
            own_history=own,
            candidates=_id_pattern(model, queries, "candidates", candidates),
            exclude=_id_pattern(model, queries, "exclude", exclude),
            given=given,
            time=np.array([np.nan if q.time is None else q.time for q in queries], np.float64),
            training=use_training,
        )


def _id_pattern(
    model: Recommender, queries: Sequence[Query], name: str, shared: Sequence[object] | None
) -> sp.csr_matrix | None:
    """Per-query item sets (a query's own list, else `shared`) as a (Q, I) 0/1 CSR, or None."""
    lists = [getattr(q, name) for q in queries]
    if name == "exclude":  # a query's exclusions add to the shared ones
        lists = [[*(own or ()), *(shared or ())] for own in lists]
    else:
        lists = [shared if own is None else own for own in lists]
    if all(x is None for x in lists):
        return None
    if name == "candidates" and any(x is None for x in lists):
        all_items = np.arange(model.n_items)
        idx = [all_items if x is None else model.items_.index(x) for x in lists]
    else:
        idx = [model.items_.index(x) for x in lists]
    counts = np.array([len(x) for x in idx], dtype=np.int64)
    if counts.sum() == 0 and name == "exclude":
        return None
    rows = np.repeat(np.arange(len(queries)), counts)
    cols = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    return _pattern(rows, cols, (len(queries), model.n_items))
