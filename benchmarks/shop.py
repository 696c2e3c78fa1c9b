"""The shop datasets of issue 11 and the CTR rows every ranking model is measured on.

Datasets (one row per user-item pair, the strongest event kept, weights view 1, cart 3, buy 5):
- `synthetic`: the built-in shop ("small": 5,000 users, 2,500 items), global time cut 8:2.
- `retailrocket`: ../shared/data/retailrocket-caserec (no timestamps): random 8:2 per user.
- `taobao`: ../shared/data/taobao-userbehavior-head (pv 1, fav 2, cart 3, buy 5), users with
  >= 5 and items with >= 2 rows, global time cut 8:2.

CTR rows: every training pair (the user's other items as the history) plus `negatives`
unseen items per pair sampled uniformly, labels 1 / 0; test rows are the test pairs (the
whole training row as history) plus the same number of sampled unseen items (never in the
user's train or test rows). The fields are those of `tuijian.models.ctr` (item, category,
activity, popularity, category affinity), so logistic regression and LightGBM read the same
information as Wide & Deep and DeepFM, except the learned embedding of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from benchmarks.common import DATA
from tuijian.data import Columns, Dataset, PrepareConfig, Split, build_dataset, load, prepare
from tuijian.data.split import random_split, temporal_split
from tuijian.data.synthetic import shop_dataset
from tuijian.models.two_tower.features import item_categories
from tuijian.nn.sampling import NegativeSampler

C = Columns
SEED = 2020
BUY = "buy"


def shop_split(name: str) -> Split:
    """The named shop, prepared and split as the module docstring says (train, test)."""
    if name == "synthetic":
        raw = shop_dataset("small")
        weights = {"view": 1.0, "cart": 3.0, "buy": 5.0}
        frame, _ = prepare(raw.interactions, PrepareConfig(event_weights=weights))
        data = build_dataset(frame, item_features=raw.item_features, name=name)
        return temporal_split(data, (0.8, 0.2))
    if name == "retailrocket":
        raw = load("retailrocket", DATA / "retailrocket-caserec")
        events = raw.interactions.with_columns(
            pl.col(C.event).replace({"add_to_cart": "cart", "purchase": BUY})
        )
        weights = {"view": 1.0, "cart": 3.0, "buy": 5.0}
        config = PrepareConfig(
            event_weights=weights, min_user_interactions=2, min_item_interactions=2
        )
        frame, _ = prepare(events, config)
        return random_split(build_dataset(frame, name=name), (0.8, 0.2), seed=SEED)
    if name == "taobao":
        raw = load("taobao", DATA / "taobao-userbehavior-head")
        events = raw.interactions.with_columns(pl.col(C.event).replace({"pv": "view"}))
        weights = {"view": 1.0, "fav": 2.0, "cart": 3.0, "buy": 5.0}
        config = PrepareConfig(
            event_weights=weights, min_user_interactions=5, min_item_interactions=2
        )
        frame, _ = prepare(events, config)
        data = build_dataset(frame, item_features=raw.item_features, name=name)
        return temporal_split(data, (0.8, 0.2))
    raise SystemExit(f"unknown shop {name!r}: synthetic, retailrocket, taobao")


def bought(part: Dataset) -> sp.csr_matrix:
    """Binary users x items matrix of the part's pairs whose strongest event is a buy."""
    inter = part.interactions.filter(pl.col(C.event) == BUY)
    return sp.csr_matrix(
        (
            np.ones(inter.height, np.float32),
            (inter[C.user_idx].to_numpy(), inter[C.item_idx].to_numpy()),
        ),
        shape=(part.n_users, part.n_items),
    )


@dataclass(frozen=True)
class Rows:
    """CTR rows: users, items, labels and their fields."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    category: np.ndarray  # 0 = none
    dense: np.ndarray  # (n, 3): activity, popularity, affinity


class Fields:
    """The CTR fields of (user, item) rows from a training matrix, as `models.ctr` reads them."""

    def __init__(self, train: Dataset) -> None:
        cats, n_cat = item_categories(train, 1)
        self.item_cat = np.where(cats[:, 0] == n_cat, 0, cats[:, 0] + 1)
        self.n_cat = n_cat + 1
        self.matrix = sp.csr_matrix(train.matrix, dtype=np.float64)
        self.log_pop = np.log1p(np.diff((self.matrix > 0).tocsc().indptr)).astype(np.float64)
        onehot = sp.csr_matrix(
            (np.ones(train.n_items), (np.arange(train.n_items), self.item_cat)),
            shape=(train.n_items, self.n_cat),
        )
        self.by_cat = (self.matrix @ onehot).toarray()  # (U, C + 1) weight per category
        self.total = np.asarray(self.matrix.sum(axis=1)).ravel()
        self.count = np.diff(self.matrix.indptr).astype(np.float64)

    def rows(
        self, users: np.ndarray, items: np.ndarray, labels: np.ndarray, left_out: np.ndarray
    ) -> Rows:
        """Fields of the rows; `left_out[r]` is an item removed from the user's history for
        that row (the training target), or -1."""
        gone = left_out >= 0
        w_out = np.zeros(len(users))
        w_out[gone] = np.asarray(self.matrix[users[gone], left_out[gone]]).ravel()
        cat = self.item_cat[items]
        same = gone & (self.item_cat[np.maximum(left_out, 0)] == cat)
        in_cat = self.by_cat[users, cat] - np.where(same, w_out, 0.0)
        total = self.total[users] - w_out
        affinity = np.divide(in_cat, total, out=np.zeros(len(users)), where=total > 0)
        activity = np.log1p(self.count[users] - gone)
        dense = np.stack([activity, self.log_pop[items], affinity], axis=1)
        return Rows(users, items, labels.astype(np.float32), cat, dense)


def train_rows(fields: Fields, negatives: int, seed: int = SEED) -> Rows:
    """Every training pair (label 1, itself left out of the history) and `negatives` unseen
    items per pair (label 0, the same history)."""
    matrix = fields.matrix
    users = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    items = matrix.indices.astype(np.int64)
    sampler = NegativeSampler(sp.csr_matrix(matrix > 0, dtype=np.float32))
    negs = sampler.sample(users, negatives, np.random.default_rng(seed)).reshape(len(users), -1)
    all_users = np.concatenate([users, np.repeat(users, negatives)])
    all_items = np.concatenate([items, negs.ravel().astype(np.int64)])
    labels = np.concatenate([np.ones(len(users)), np.zeros(negs.size)])
    left_out = np.concatenate([items, np.repeat(items, negatives)])
    return fields.rows(all_users, all_items, labels, left_out)


def test_rows(fields: Fields, split: Split, negatives: int, seed: int = SEED) -> Rows:
    """Test pairs (label 1) and `negatives` items per pair the user never touched (label 0)."""
    test = sp.csr_matrix(split.test.matrix)
    users = np.repeat(np.arange(test.shape[0]), np.diff(test.indptr))
    items = test.indices.astype(np.int64)
    known = sp.csr_matrix((fields.matrix + test) > 0, dtype=np.float32)
    sampler = NegativeSampler(known)
    negs = sampler.sample(users, negatives, np.random.default_rng(seed + 1)).ravel()
    all_users = np.concatenate([users, np.repeat(users, negatives)])
    all_items = np.concatenate([items, negs.astype(np.int64)])
    labels = np.concatenate([np.ones(len(users)), np.zeros(len(negs))])
    return fields.rows(all_users, all_items, labels, np.full(len(all_users), -1))


def standardizer(rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the dense fields of training rows (a constant field keeps scale 1:
    dividing it by ~0 made lbfgs stop at the first step with all weights zero)."""
    std = rows.dense.std(axis=0)
    return rows.dense.mean(axis=0), np.where(std > 1e-9, std, 1.0)


def onehot_design(
    rows: Rows, n_items: int, n_cat: int, standard: tuple[np.ndarray, np.ndarray]
) -> sp.csr_matrix:
    """Logistic regression's design: one-hot item and category, standardized dense fields."""
    n = len(rows.users)
    ids = sp.csr_matrix((np.ones(n), (np.arange(n), rows.items)), shape=(n, n_items))
    cats = sp.csr_matrix((np.ones(n), (np.arange(n), rows.category)), shape=(n, n_cat))
    mean, scale = standard
    return sp.hstack([ids, cats, sp.csr_matrix((rows.dense - mean) / scale)]).tocsr()


def tree_design(rows: Rows) -> np.ndarray:
    """LightGBM's design: item and category as categorical columns, then the dense fields."""
    return np.column_stack([rows.items, rows.category, rows.dense]).astype(np.float64)


def summary(labels: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """AUC and log-loss of logits against 0/1 labels."""
    from sklearn.metrics import log_loss, roc_auc_score

    prob = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -30, 30)))
    return {
        "auc": round(float(roc_auc_score(labels, logits)), 4),
        "logloss": round(float(log_loss(labels, prob, labels=[0, 1])), 4),
    }
