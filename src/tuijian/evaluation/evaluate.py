"""Evaluation protocols: full ranking (the default), sampled negatives (labelled), ratings."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.data.split import Split
from tuijian.errors import ConfigError, DataError
from tuijian.evaluation import metrics as M
from tuijian.models.base import Recommender
from tuijian.models.query import Given, QueryBatch
from tuijian.models.ranking import BlockHook, rank

DEFAULT_KS = (10, 20)


@dataclass(frozen=True)
class EvaluationResult:
    """Per-user metric values, their means, and the protocol that produced them."""

    per_user: pl.DataFrame
    summary: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.summary[key]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "protocol": self.protocol}

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 pattern of a sparse matrix, as CSR with sorted indices."""
    out = (matrix > 0).astype(np.float32).tocsr()
    out.sort_indices()
    return out


def exclusion_matrix(parts: list[Dataset]) -> sp.csr_matrix | None:
    """Items to hide when ranking: the union of the given parts' user-item pairs (computed
    once per combination of parts: every epoch's validation hides the same ones)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0].pattern
    return _union(tuple(parts))


@functools.lru_cache(maxsize=4)
def _union(parts: tuple[Dataset, ...]) -> sp.csr_matrix:
    """0/1 union of the parts' patterns (datasets hash by identity and never change)."""
    total = parts[0].pattern
    for part in parts[1:]:
        total = total + part.pattern
    return binary(total)


def exclusion_rows(parts: list[Dataset], users: np.ndarray) -> sp.csr_matrix | None:
    """Rows `users` of `exclusion_matrix(parts)`, kept for the next call with the same parts
    and users (each epoch's validation ranks the same users and hides the same items)."""
    if not parts:
        return None
    return _exclusion_rows(tuple(parts), np.asarray(users, dtype=np.int64).tobytes())


@functools.lru_cache(maxsize=4)
def _exclusion_rows(parts: tuple[Dataset, ...], users: bytes) -> sp.csr_matrix:
    """The cached rows of `exclusion_rows` (users as the bytes of an int64 array)."""
    total = exclusion_matrix(list(parts))
    assert total is not None
    return user_rows(total, np.frombuffer(users, dtype=np.int64))


def user_rows(matrix: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """Rows `users` of a CSR; the matrix itself when they are all its rows in order."""
    if len(users) == matrix.shape[0] and np.array_equal(users, np.arange(len(users))):
        return matrix
    return matrix[users]


def pad_columns(top: np.ndarray, k: int) -> np.ndarray:
    """Top-k lists widened with -1 to k columns (rankings are clipped to the catalogue)."""
    if top.shape[1] >= k:
        return top
    return np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)


def hit_matrix(top: np.ndarray, users: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """hits[u, r] = 1 when `top[u, r]` is in row `users[u]` of the 0/1 CSR `truth` (a
    `Dataset.pattern`); -1 never hits.

    `top` holds top-k lists (distinct items per row): they become a CSR whose values are the
    ranks, and its elementwise product with the truth rows (one merge in C, no search per
    entry: several times faster than `contains`) leaves the ranks of the hits.
    """
    n_queries, k = top.shape
    listed = top >= 0
    ranks = np.broadcast_to(np.arange(1, k + 1, dtype=np.float32), top.shape)
    indptr = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(listed.sum(axis=1), out=indptr[1:])
    lists = sp.csr_matrix((ranks[listed], top[listed], indptr), shape=(n_queries, truth.shape[1]))
    found = sp.csr_matrix(lists.multiply(user_rows(truth, users)))
    hits = np.zeros(top.shape, dtype=np.float32)
    rows = np.repeat(np.arange(n_queries), np.diff(found.indptr))
    hits[rows, found.data.astype(np.int64) - 1] = 1.0
    return hits


def contains(lookup: np.ndarray, users: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """out[u, r] = 1 when `lookup[u, r]` is in row `users[u]` of `truth` (any item matrix,
    repeats allowed; a binary search per entry)."""
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = rows * n_items + truth.indices.astype(np.int64)  # sorted: CSR rows, sorted indices
    query = users[:, None].astype(np.int64) * n_items + np.maximum(lookup, 0)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return ((keys[pos] == query) & (lookup >= 0)).astype(np.float32)


def category_matrix(dataset: Dataset) -> sp.csr_matrix | None:
    """Items x categories 0/1 matrix from the item features, or None without categories."""
    feats = dataset.item_features
    if feats is None or Columns.categories not in feats.columns:
        return None
    exploded = (
        feats.select(Columns.item_id, pl.col(Columns.categories).cast(pl.List(pl.Utf8)))
        .explode(Columns.categories)
        .drop_nulls()
    )
    idx = dataset.items.lookup(exploded[Columns.item_id]).to_numpy()
    keep = ~np.isnan(idx.astype(np.float64))
    if not keep.any():
        return None
    _, inverse = np.unique(
        exploded[Columns.categories].to_numpy()[keep].astype(str), return_inverse=True
    )
    return sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (idx[keep].astype(np.int64), inverse)),
        shape=(dataset.n_items, int(inverse.max()) + 1),
    )


def with_fresh_events(queries: QueryBatch, fresh: Dataset, users: np.ndarray) -> QueryBatch:
    """Known users' queries extended by their `fresh` rows as events given now, in time order
    (the leave-one-out sequential protocol gives the validation item before the test one)."""
    indptr_all, items_all = fresh.sequences
    counts = np.diff(indptr_all)[users]
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    flat = np.repeat(indptr_all[users] - indptr[:-1], counts) + np.arange(int(indptr[-1]))
    items = items_all[flat]
    rows = fresh.matrix[users]
    weights = np.asarray(rows[np.repeat(np.arange(len(users)), counts), items]).ravel()
    history = (queries.history + rows).tocsr()
    history.sort_indices()
    return replace(
        queries,
        history=history,
        own_history=queries.own_history & (counts == 0),
        given=Given(indptr, items, weights.astype(np.float32)),
    )


def rank_users(
    model: Recommender,
    truth: Dataset,
    exclude: sp.csr_matrix | None,
    k: int,
    users: np.ndarray | None = None,
    on_block: BlockHook | None = None,
    fresh: Dataset | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-ranking top-k of every user with a truth row: (users, top items, hit matrix).
    `exclude` holds the items to hide, one row per user; with `fresh`, each user's rows there
    are given after the training history."""
    truth_m = truth.pattern
    if users is None:
        users = truth.active_users
    queries = QueryBatch.for_users(model, users)
    if fresh is not None:
        queries = with_fresh_events(queries, fresh, users)
    if exclude is not None:
        queries = queries.with_exclude(exclude)
    top = pad_columns(rank(model, queries, k, exclude_seen=False, on_block=on_block).idx, k)
    return users, top, hit_matrix(top, users, truth_m)


def rank_histories(
    model: Recommender,
    truth: Dataset,
    history: Dataset,
    exclude: sp.csr_matrix | None,
    k: int,
    users: np.ndarray | None = None,
    on_block: BlockHook | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of every truth user scored from its `history` rows as an anonymous query (the
    model never gets the id: held-out users were not in training); history items are hidden,
    and so are the `exclude` rows (one per user)."""
    truth_m = truth.pattern
    if users is None:
        users = truth.active_users
    queries = QueryBatch.from_history(
        history.matrix[users], exclude=exclude if exclude is not None and exclude.nnz else None
    )
    top = pad_columns(rank(model, queries, k, exclude_seen=True, on_block=on_block).idx, k)
    return users, top, hit_matrix(top, users, truth_m)


class BlockMetrics:
    """Per-user AUC / log-loss (`metrics.SCORE_METRICS`) collected from the ranking's masked
    score blocks (`rank(on_block=...)`), in the same bounded-memory batches as the top-k.

    `truth` holds one 0/1 row per ranked query, in query order.
    """

    def __init__(self, names: tuple[str, ...], truth: sp.csr_matrix) -> None:
        self.truth = truth
        self.values = {name: np.zeros(truth.shape[0]) for name in names}

    def __call__(self, rows: slice, block: torch.Tensor, cols: np.ndarray | None) -> None:
        truth = self.truth[rows]
        if cols is not None:
            truth = truth[:, cols].tocsr()
        truth.sort_indices()
        for name, out in self.values.items():
            out[rows] = M.SCORE_METRICS[name](block, truth)


def evaluate(
    model: Recommender,
    split: Split,
    *,
    part: str = "test",
    ks: tuple[int, ...] | list[int] = DEFAULT_KS,
    metrics: tuple[str, ...] | None = None,
    users: np.ndarray | None = None,
    beyond_accuracy: bool = True,
    exclude_seen: bool = True,
    valid_as_history: bool = False,
) -> EvaluationResult:
    """Full-ranking evaluation over all items; train (and for test, valid) items excluded.

    When the part's users were held out of training (`split.histories`, the `users`
    protocol), each is ranked from its query history alone, with the history hidden.
    `exclude_seen=False` ranks the user's train (and valid) items too, as sequential papers
    do; `valid_as_history` gives, for the test part, each user's valid rows as the latest
    events after the training history (leave-one-out: the model sees all before the test item).
    """
    parts = split.parts()
    if part not in parts or part == "train":
        raise ConfigError(f"cannot evaluate on part {part!r}; choose from valid, test")
    history = split.histories.get(part)
    exclude_names = ["train"] if part == "valid" else [p for p in ("train", "valid") if p in parts]
    if history is not None or not exclude_seen:
        exclude_names = []  # held-out users have no rows in the other parts
    fresh = parts.get("valid") if valid_as_history and part == "test" else None
    if fresh is not None and history is not None:
        raise ConfigError("valid_as_history needs known users; held-out users have histories")
    return evaluate_ranking(
        model,
        parts[part],
        exclude=[parts[p] for p in exclude_names],
        history=history,
        ks=ks,
        metrics=metrics,
        users=users,
        beyond_accuracy=beyond_accuracy,
        fresh=fresh,
        protocol={
            "part": part,
            "excluded": exclude_names if history is None else ["history"],
            **({"given": ["valid"]} if fresh is not None else {}),
            "split": split.protocol,
        },
        train=split.train,
    )


def evaluate_ranking(
    model: Recommender,
    truth: Dataset,
    *,
    exclude: list[Dataset] | None = None,
    history: Dataset | None = None,
    ks: tuple[int, ...] | list[int] = DEFAULT_KS,
    metrics: tuple[str, ...] | None = None,
    users: np.ndarray | None = None,
    beyond_accuracy: bool = True,
    protocol: dict[str, Any] | None = None,
    train: Dataset | None = None,
    fresh: Dataset | None = None,
) -> EvaluationResult:
    """Rank all items for every user of `truth`, hide the `exclude` parts, score the lists.

    With `history` (held-out users), each truth user is an anonymous query made of its
    history rows, never its id; otherwise the model ranks the known user by index, with its
    `fresh` rows (if given) as events after the training history.
    `metrics` may also name `auc` and `logloss` (summary keys without a cut-off): they read the
    whole masked score block of each batch, not the top-k, and are computed only when asked.
    """
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ConfigError(f"cut-offs must be positive integers, got {ks}")
    names = metrics or tuple(M.RANKING_METRICS)
    valid = [*M.RANKING_METRICS, *M.SCORE_METRICS]
    unknown = [m for m in names if m not in valid]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; valid: {', '.join(valid)}")
    if truth.n_interactions == 0:
        raise DataError(f"{truth.name}: nothing to evaluate on (no interactions)")
    t0 = time.perf_counter()
    if users is None:
        users = truth.active_users
    hidden = exclusion_rows(exclude or [], users)
    scored = tuple(m for m in names if m in M.SCORE_METRICS)
    blocks = BlockMetrics(scored, user_rows(truth.pattern, users)) if scored else None
    names = tuple(m for m in names if m in M.RANKING_METRICS)
    width = min(ks[-1], truth.n_items)  # lists are clipped to the catalogue: no wider matrices
    if history is None:
        users, top, hits = rank_users(model, truth, hidden, width, users, blocks, fresh)
    else:
        users, top, hits = rank_histories(model, truth, history, hidden, width, users, blocks)
    n_truth = np.diff(truth.pattern.indptr)[users]
    columns: dict[str, np.ndarray] = {}
    for k in ks:
        for name in names:
            columns[f"{name}@{k}"] = M.RANKING_METRICS[name](hits, n_truth, k)
    columns.update(blocks.values if blocks is not None else {})
    summary = {key: float(np.mean(v)) for key, v in columns.items()}
    if beyond_accuracy:
        ref = train or truth
        for k in ks:
            summary[f"coverage@{k}"] = M.item_coverage(top[:, :k], truth.n_items)
            summary[f"gini@{k}"] = M.gini_index(top[:, :k], truth.n_items)
            nov = M.novelty(top[:, :k], ref.item_popularity, ref.n_users)
            columns[f"novelty@{k}"] = nov
            summary[f"novelty@{k}"] = float(nov.mean())
            cats = category_matrix(ref)
            if cats is not None:
                ild = M.intra_list_diversity(top[:, :k], cats)
                columns[f"diversity@{k}"] = ild
                summary[f"diversity@{k}"] = float(ild.mean())
    per_user = pl.DataFrame(
        {Columns.user_id: pl.Series(truth.users.id(users).tolist(), dtype=pl.Utf8), **columns}
    )
    proto = {
        "name": "full-ranking",
        "ks": list(ks),
        "n_users": len(users),
        "n_items": int(truth.n_items),
        "seconds": round(time.perf_counter() - t0, 4),
        **({"queries": "held-out users"} if history is not None else {}),
        **(protocol or {}),
    }
    return EvaluationResult(per_user, summary, proto)


def evaluate_sampled(
    model: Recommender,
    split: Split,
    *,
    part: str = "test",
    n_negatives: int = 100,
    ks: tuple[int, ...] | list[int] = DEFAULT_KS,
    seed: int = 0,
) -> EvaluationResult:
    """SAMPLED protocol, only to compare with papers that used it: each truth item is ranked
    against `n_negatives` items sampled uniformly from those the user never interacted with.

    Every metric name carries the `sampled_` prefix so it is never mistaken for full ranking.
    """
    parts = split.parts()
    truth = parts[part]
    known = exclusion_matrix(list(parts.values()))
    assert known is not None
    rng = np.random.default_rng(seed)
    users = truth.active_users
    t = truth.pattern
    case_user = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    case_item = t.indices.astype(np.int64)
    neg = rng.integers(0, truth.n_items, size=(len(case_user), n_negatives))
    free = truth.n_items - np.diff(known.indptr)[case_user]
    if (free < 1).any():
        user = truth.users.id(case_user[np.argmax(free < 1)])
        raise DataError(f"sampled evaluation: user {user!r} has no item left to sample")
    bad = contains(neg, case_user, known) > 0
    for _ in range(1000):  # resample the negatives that hit a known positive
        if not bad.any():
            break
        neg[bad] = rng.integers(0, truth.n_items, size=int(bad.sum()))
        bad = contains(neg, case_user, known) > 0
    ranks = np.empty(len(case_user), dtype=np.int64)
    order = np.argsort(case_user, kind="stable")
    bounds = np.searchsorted(case_user[order], users, side="left")
    ends = np.searchsorted(case_user[order], users, side="right")
    for lo_hi in np.array_split(np.arange(len(users)), max(1, len(users) // 1024)):
        if len(lo_hi) == 0:
            continue
        batch_users = users[lo_hi]
        scores = np.asarray(model.score(batch_users), dtype=np.float32)
        local = {int(u): j for j, u in enumerate(batch_users)}
        for j in lo_hi:
            rows = order[bounds[j] : ends[j]]
            s = scores[local[int(users[j])]]
            pos = s[case_item[rows]]
            ranks[rows] = (s[neg[rows]] >= pos[:, None]).sum(axis=1)
    ks = tuple(sorted(set(ks)))
    hits = (ranks[:, None] == np.arange(ks[-1])[None, :]).astype(np.float32)
    ones = np.ones(len(ranks), dtype=np.int64)
    columns = {
        f"sampled_{name}@{k}": M.RANKING_METRICS[name](hits, ones, k)
        for k in ks
        for name in ("hit", "ndcg", "mrr")
    }
    per_case = pl.DataFrame(
        {Columns.user_id: pl.Series(truth.users.id(case_user).tolist(), dtype=pl.Utf8), **columns}
    )
    per_user = per_case.group_by(Columns.user_id, maintain_order=True).mean()
    summary = {c: float(per_user[c].mean()) for c in columns}
    proto = {
        "name": "sampled",
        "warning": "sampled metrics overestimate full-ranking quality; not comparable",
        "n_negatives": n_negatives,
        "seed": seed,
        "ks": list(ks),
        "part": part,
        "split": split.protocol,
    }
    return EvaluationResult(per_user, summary, proto)


def evaluate_ratings(model: Recommender, split: Split, *, part: str = "test") -> EvaluationResult:
    """RMSE and MAE of predicted ratings on the part's (user, item, rating) rows."""
    truth = split.parts()[part]
    if not truth.has_ratings:
        raise DataError(f"{part}: no rating column; rating metrics need explicit ratings")
    inter = truth.interactions
    users = inter[Columns.user_idx].to_numpy()
    items = inter[Columns.item_idx].to_numpy()
    pred = model.predict(users, items)
    actual = inter[Columns.rating].to_numpy().astype(np.float64)
    per_row = pl.DataFrame(
        {
            Columns.user_id: pl.Series(truth.users.id(users).tolist(), dtype=pl.Utf8),
            "sq_error": (pred - actual) ** 2,
        }
    )
    summary = {"rmse": M.rmse(pred, actual), "mae": M.mae(pred, actual)}
    proto = {"name": "rating-prediction", "part": part, "n": len(actual), "split": split.protocol}
    return EvaluationResult(per_row, summary, proto)
