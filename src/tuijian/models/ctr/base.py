"""What the CTR ranking models share: the feature fields, pointwise batches, block scoring.

A row is a (query, item) pair described by fields, as in the CTR literature:

    query side   pooled history  mean embedding of the history's items, by weight  (Q, D)
                 user features   one embedding per categorical column (0 = unknown)  (Q, F, D)
                 activity        log1p(number of history items)                     (Q,)
    item side    item id, item category (its first one; 0 = none)                    (n, D) each
                 item dense      log1p(training users), log1p(users with a positive
                                 event, e.g. a buy), their smoothed ratio (conversion) (n, 3)
    pair         affinity        share of the history's weight in the item's category (Q, n)

There is no user-id field: a query is its history (plus features), so any history given at
call time is scored exactly like a training user's (history-native), and the models rank the
candidates of a retrieval stage for users and sessions alike. Training is pointwise binary
cross-entropy: every training pair, with the user's other items as the history (the target
leaves it, or the row would give its own label away), against `n_negatives` items sampled
uniformly among those the user never interacted with, scored with the same history. With
`labels="events"` the observed pair is a positive only when one of its events is in
`positive_events` (e.g. buy), so view-only pairs become negatives too. Scores are logits.

The first layer of every deep tower is split into a query part, an item part and a pair
part, (Q, 1, H) + (1, n, H) + affinity x (H,), so a block of Q x n pairs costs one matrix
product per side and H per pair before the nonlinearity.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal, NamedTuple, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.errors import ConfigError
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.query import QueryBatch
from tuijian.models.two_tower.features import (
    item_categories,
    pairs_with_events,
    user_feature_codes,
)
from tuijian.models.two_tower.youtube_dnn import ragged_rows
from tuijian.nn.losses import bce_loss
from tuijian.nn.mlp import MLP
from tuijian.nn.sampling import NegativeSampler

C = Columns
# Pairs scored at once: a chunk of Q x n pairs keeps its (Q, n, H) activations under this.
PAIR_CHUNK = 1 << 16


class CTRConfig(TorchConfig):
    """Field embedding size, the deep tower, negatives and labels of the pointwise loss."""

    dim: int = Field(16, ge=1)
    layers: tuple[int, ...] = (64, 32)
    dropout: float = Field(0.0, ge=0, lt=1)
    n_negatives: int = Field(4, ge=0)
    labels: Literal["observed", "events"] = "observed"
    positive_events: tuple[str, ...] = ("buy",)
    use_user_features: bool = True
    batch_size: int = Field(1024, ge=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(3e-3, gt=0)
    valid_metric: str = "ndcg@10"


CTRConfigT = TypeVar("CTRConfigT", bound=CTRConfig)


class QueryFields(NamedTuple):
    """The query side of a batch: ragged weighted histories and feature codes."""

    hist_items: torch.Tensor  # (N,) item indices of every history, concatenated
    hist_owner: torch.Tensor  # (N,) query of each history item
    hist_weight: torch.Tensor  # (N,) float32 weights
    codes: torch.Tensor  # (Q, F) user feature codes


class Rows(NamedTuple):
    """A training batch: B queries, each with 1 + K items (the pair, then its negatives)."""

    query: QueryFields
    items: torch.Tensor  # (B, 1 + K) item indices
    labels: torch.Tensor  # (B, 1 + K) float32 0/1


class QuerySide(NamedTuple):
    pooled: torch.Tensor  # (Q, D)
    feats: torch.Tensor  # (Q, F, D)
    activity: torch.Tensor  # (Q,)
    profile: torch.Tensor  # (Q, C + 1) share of the history's weight per category
    codes: torch.Tensor  # (Q, F)


class ItemSide(NamedTuple):
    items: torch.Tensor  # (R, n) item indices
    emb: torch.Tensor  # (R, n, D) item id embeddings (R = 1 for a block, Q for rows)
    cat: torch.Tensor  # (R, n) category codes, 0 = none
    cat_emb: torch.Tensor  # (R, n, D)
    dense: torch.Tensor  # (R, n, 3) popularity, positive events, conversion


class CTRNet(nn.Module):
    """Field embeddings shared by the CTR models; subclasses turn fields into logits."""

    def __init__(
        self,
        n_items: int,
        item_cat: np.ndarray,
        n_categories: int,
        item_dense: np.ndarray,
        feature_sizes: np.ndarray,
        dim: int,
    ) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_items, dim)
        self.cat_emb = nn.Embedding(n_categories + 1, dim)
        nn.init.normal_(self.item_emb.weight, std=0.05)
        nn.init.normal_(self.cat_emb.weight, std=0.05)
        self.n_features = len(feature_sizes)
        offsets = np.concatenate([[0], np.cumsum(feature_sizes)[:-1]]).astype(np.int64)
        self.register_buffer("feature_offsets", torch.from_numpy(offsets), False)
        self.user_feat = nn.Embedding(max(1, int(feature_sizes.sum())), dim)
        nn.init.normal_(self.user_feat.weight, std=0.05)
        self.register_buffer("item_cat", torch.from_numpy(item_cat.astype(np.int64)), False)
        dense = torch.from_numpy(item_dense.astype(np.float32))
        self.register_buffer("item_dense", dense, False)
        self.n_categories = n_categories

    def query_side(self, q: QueryFields) -> QuerySide:
        n = len(q.codes)
        vec = self.item_emb(q.hist_items) * q.hist_weight[:, None]  # (N, D)
        pooled = torch.zeros((n, vec.shape[1]), dtype=vec.dtype, device=vec.device)
        pooled.index_add_(0, q.hist_owner, vec)
        total = torch.zeros(n, dtype=vec.dtype, device=vec.device)
        total.index_add_(0, q.hist_owner, q.hist_weight)
        pooled = pooled / total.clamp_min(1e-9)[:, None]
        profile = torch.zeros((n, self.n_categories + 1), dtype=vec.dtype, device=vec.device)
        profile.index_put_(
            (q.hist_owner, self.item_cat[q.hist_items]), q.hist_weight, accumulate=True
        )
        profile = profile / total.clamp_min(1e-9)[:, None]
        count = torch.zeros(n, dtype=vec.dtype, device=vec.device)
        count.index_add_(0, q.hist_owner, torch.ones_like(q.hist_weight))
        feats = self.user_feat(q.codes + self.feature_offsets)  # (Q, F, D)
        return QuerySide(pooled, feats, torch.log1p(count), profile, q.codes)

    def item_side(self, items: torch.Tensor) -> ItemSide:
        """Fields of (R, n) item indices."""
        cat = self.item_cat[items]
        return ItemSide(items, self.item_emb(items), cat, self.cat_emb(cat), self.item_dense[items])

    @staticmethod
    def affinity(q: QuerySide, it: ItemSide) -> torch.Tensor:
        """(Q, n) share of each query's history weight in each item's category."""
        if it.cat.shape[0] == 1:
            return q.profile[:, it.cat[0]]
        return q.profile.gather(1, it.cat)

    def forward(self, query: QueryFields, items: torch.Tensor) -> torch.Tensor:
        """(Q, n) logits of (Q, n) items per query, or of (1, n) items for every query."""
        q = self.query_side(query)
        it = self.item_side(items)
        return self.logits(q, it, self.affinity(q, it))

    def logits(self, q: QuerySide, it: ItemSide, affinity: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class DeepTower(nn.Module):
    """An MLP over [query fields, item fields, affinity] whose first layer is split by side."""

    def __init__(self, query_width: int, item_width: int, layers: tuple[int, ...], dropout: float):
        super().__init__()
        if not layers:
            raise ConfigError("a deep tower needs at least one layer (layers=(64, 32)...)")
        self.query_in = nn.Linear(query_width, layers[0])
        self.item_in = nn.Linear(item_width, layers[0], bias=False)
        self.pair_in = nn.Parameter(torch.zeros(layers[0]))
        rest = (*layers, 1)
        self.rest = MLP(rest, dropout, last_activation=False)

    def forward(self, query: torch.Tensor, item: torch.Tensor, affinity: torch.Tensor):
        """(Q, Dq), (R, n, Di), (Q, n) -> (Q, n) logits."""
        h = self.query_in(query)[:, None, :] + self.item_in(item)  # (Q, n, H)
        h = torch.relu(h + affinity[..., None] * self.pair_in)
        return self.rest(h)[..., 0]


class CTRRecommender(TorchRecommender[CTRConfigT]):
    """A pointwise ranking model over query, item and pair fields (see the module docstring).

    History-native: the query side is read from the history (and the user's features), so a
    training user's history given anonymously scores like the user when there are no user
    features. Subclasses build the module.
    """

    history_mode = "native"
    module_: CTRNet
    state_fields: ClassVar[tuple[str, ...]] = (
        "item_cat_",
        "n_categories_",
        "item_dense_",
        "user_codes_",
        "feature_sizes_",
    )

    def prepare_data(self, train: Dataset) -> None:
        cfg = self.config
        cats, n_cat = item_categories(train, 1)
        self.item_cat_ = np.where(cats[:, 0] == n_cat, 0, cats[:, 0] + 1)  # 0 = none
        self.n_categories_ = n_cat
        self.item_dense_ = self._item_dense(train)
        if cfg.use_user_features:
            self.user_codes_, self.feature_sizes_ = user_feature_codes(train)
        else:
            self.user_codes_ = np.zeros((len(self.users_), 0), np.int64)
            self.feature_sizes_ = np.zeros(0, np.int64)
        matrix = self.user_items_
        self.pair_user = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        self.pair_label = np.ones(matrix.nnz, dtype=np.float32)
        if cfg.labels == "events":
            self.pair_label = self._event_labels(train)
        self.sampler = NegativeSampler(self.seen_) if cfg.n_negatives else None

    def _item_dense(self, train: Dataset) -> np.ndarray:
        """(I, 3) float32: log1p of the item's training users, of its users with a positive
        event (`positive_events`; 0 without an event column), and their ratio smoothed
        towards the catalogue's (conversion rate, prior weight 10 users)."""
        users = np.diff(self.seen_.tocsc().indptr).astype(np.float64)
        positive = np.zeros(self.n_items)
        inter = train.interactions
        if C.event in inter.columns:
            hits = inter.filter(pl.col(C.event).is_in(list(self.config.positive_events)))
            pairs = np.unique(
                hits[C.user_idx].to_numpy().astype(np.int64) * self.n_items
                + hits[C.item_idx].to_numpy()
            )
            positive = np.bincount(pairs % self.n_items, minlength=self.n_items).astype(float)
        prior = positive.sum() / max(users.sum(), 1.0)
        rate = (positive + 10.0 * prior) / (users + 10.0)
        return np.stack([np.log1p(users), np.log1p(positive), rate], axis=1).astype(np.float32)

    def _event_labels(self, train: Dataset) -> np.ndarray:
        """1.0 for training pairs with an event in `positive_events`, else 0.0 (CSR order)."""
        hits = pairs_with_events(train, self.user_items_, self.config.positive_events)
        return hits.astype(np.float32)

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Rows]:
        """Every training pair once, in random order, with its user's other items as the
        history and `n_negatives` sampled items scored with the same history."""
        cfg = self.config
        matrix = self.user_items_
        order = rng.permutation(matrix.nnz)
        for start in range(0, len(order), cfg.batch_size):
            pairs = order[start : start + cfg.batch_size]
            users = self.pair_user[pairs]
            pos, owner = ragged_rows(matrix.indptr, users)
            keep = pos != pairs[owner]
            pos, owner = pos[keep], owner[keep]
            items = matrix.indices[pairs][:, None].astype(np.int64)
            labels = self.pair_label[pairs][:, None]
            if self.sampler is not None:
                negs = self.sampler.sample(users, cfg.n_negatives, rng).reshape(len(pairs), -1)
                items = np.concatenate([items, negs.astype(np.int64)], axis=1)
                labels = np.concatenate([labels, np.zeros(negs.shape, np.float32)], axis=1)
            query = self._query(
                matrix.indices[pos], owner, matrix.data[pos], self.user_codes_[users]
            )
            yield Rows(query, self._long(items), torch.from_numpy(labels).to(self.device))

    def _long(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)).to(self.device)

    def _query(
        self, items: np.ndarray, owner: np.ndarray, weight: np.ndarray, codes: np.ndarray
    ) -> QueryFields:
        """Numpy parts of a query side as tensors on the model's device."""
        return QueryFields(
            self._long(items),
            self._long(owner),
            torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)).to(self.device),
            self._long(codes),
        )

    def n_batch_samples(self, batch: Rows) -> int:
        return int(batch.items.numel())

    def compute_loss(self, batch: Rows) -> torch.Tensor:
        return bce_loss(self.module_(batch.query, batch.items), batch.labels)

    # ---- scoring ---------------------------------------------------------------------------
    def _scores(
        self, history: sp.csr_matrix, user_idx: np.ndarray | None, item_idx: np.ndarray | None
    ) -> torch.Tensor:
        """(Q, n) logits of every query (a weight history, features of known users) against
        every item or `item_idx`, in chunks of at most PAIR_CHUNK pairs."""
        hist = sp.csr_matrix(history, dtype=np.float32)
        n = hist.shape[0]
        codes = np.zeros((n, self.user_codes_.shape[1]), dtype=np.int64)
        if user_idx is not None and codes.shape[1]:
            known = np.asarray(user_idx) >= 0
            codes[known] = self.user_codes_[np.asarray(user_idx)[known]]
        cols = np.arange(self.n_items) if item_idx is None else np.asarray(item_idx, np.int64)
        items = self._long(cols)[None, :]  # (1, n)
        step = max(1, PAIR_CHUNK // max(1, len(cols)))
        out = torch.empty((n, len(cols)), dtype=torch.float32)
        with torch.no_grad():
            for lo in range(0, n, step):
                rows = np.arange(lo, min(lo + step, n))
                pos, owner = ragged_rows(hist.indptr, rows)
                query = self._query(hist.indices[pos], owner, hist.data[pos], codes[rows])
                out[lo : lo + len(rows)] = self.module_(query, items).float().cpu()
        return out

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Logits of known users, read from their training histories and features."""
        users = np.asarray(user_idx, dtype=np.int64)
        return self._scores(self.user_items_[users], users, item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Logits of histories given at call time (anonymous: unknown user features)."""
        return self._scores(history, None, item_idx)

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Every query from its history and its user's features; empty histories get the
        popularity fallback."""
        out = self._scores(queries.history, queries.user_idx, item_idx)
        empty = queries.empty
        if empty.any():
            pop = self.item_popularity_ if item_idx is None else self.item_popularity_[item_idx]
            out[torch.from_numpy(empty)] = torch.from_numpy(pop)
        return out

    def score_candidates(self, queries: QueryBatch, items: np.ndarray) -> torch.Tensor:
        """(Q, N) logits of each query's own N candidate items (a retrieval stage's top-N),
        pairs only: Q x N rows, not Q x the union of the candidates."""
        hist = queries.history
        n = hist.shape[0]
        codes = np.zeros((n, self.user_codes_.shape[1]), dtype=np.int64)
        if codes.shape[1]:
            known = queries.user_idx >= 0
            codes[known] = self.user_codes_[queries.user_idx[known]]
        width = max(1, items.shape[1])
        step = max(1, PAIR_CHUNK // width)
        out = torch.empty(items.shape, dtype=torch.float32)
        with torch.no_grad():
            for lo in range(0, n, step):
                rows = np.arange(lo, min(lo + step, n))
                pos, owner = ragged_rows(hist.indptr, rows)
                query = self._query(hist.indices[pos], owner, hist.data[pos], codes[rows])
                out[rows] = self.module_(query, self._long(items[rows])).float().cpu()
        return out

    def predict_proba(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Click (or buy) probabilities of (user, item) pairs: sigmoid of the logits."""
        return 1.0 / (1.0 + np.exp(-self.predict(user_idx, item_idx).astype(np.float64)))
