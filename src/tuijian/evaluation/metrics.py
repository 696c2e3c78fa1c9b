"""Ranking and rating metrics: pure vectorized functions of a users x k hit matrix.

`hits[u, r]` is 1 when the item ranked r+1 for user u is relevant; `n_truth[u]` counts the
user's relevant items. Every function returns per-user values (mean them for the summary).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

_DISCOUNT = 1.0 / np.log2(np.arange(2, 100_002, dtype=np.float64))


def precision(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Share of the top-k that is relevant (denominator k, as in the usual definition)."""
    return hits[:, :k].sum(axis=1) / k


def recall(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Share of the user's relevant items found in the top-k."""
    return hits[:, :k].sum(axis=1) / np.maximum(n_truth, 1)


def hit_rate(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top-k."""
    return (hits[:, :k].sum(axis=1) > 0).astype(np.float64)


def ndcg(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG; the ideal DCG places min(n_truth, k) hits first."""
    dcg = hits[:, :k] @ _DISCOUNT[:k]
    ideal = np.concatenate([[0.0], np.cumsum(_DISCOUNT[:k])])[np.minimum(n_truth, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def mrr(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item in the top-k (0 when none)."""
    h = hits[:, :k] > 0
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


def average_precision(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """AP@k: mean of precision@i at each hit i, over min(n_truth, k)."""
    h = hits[:, :k].astype(np.float64)
    prec_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(n_truth, k).astype(np.float64)
    return np.divide((prec_at * h).sum(axis=1), denom, out=np.zeros(len(h)), where=denom > 0)


RANKING_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "precision": precision,
    "recall": recall,
    "ndcg": ndcg,
    "hit": hit_rate,
    "mrr": mrr,
    "map": average_precision,
}


# ---- beyond accuracy: functions of the recommended lists themselves ----------------------------
def item_coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list (-1 slots ignored)."""
    rec = top[top >= 0]
    return float(np.unique(rec).size / n_items) if n_items else 0.0


def gini_index(top: np.ndarray, n_items: int) -> float:
    """Gini of how often each catalogue item is recommended: 0 = even, 1 = one item only."""
    rec = top[top >= 0]
    counts = np.sort(np.bincount(rec, minlength=n_items).astype(np.float64))
    total = counts.sum()
    if total == 0 or n_items < 2:
        return 0.0
    ranks = np.arange(1, n_items + 1)
    return float(((2 * ranks - n_items - 1) * counts).sum() / (n_items * total))


def novelty(top: np.ndarray, item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """Per-user mean self-information -log2(p(i)) of recommended items, p = train popularity."""
    p = np.maximum(item_popularity, 1) / max(n_users, 1)
    info = -np.log2(p)
    valid = top >= 0
    vals = np.where(valid, info[np.where(valid, top, 0)], 0.0)
    return vals.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def intra_list_diversity(top: np.ndarray, item_categories: sp.csr_matrix) -> np.ndarray:
    """Per-user mean pairwise dissimilarity (1 - cosine of category vectors) within the list."""
    feats = sp.csr_matrix(item_categories, dtype=np.float64)
    norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
    feats = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ feats
    out = np.zeros(len(top))
    step = max(1, (1 << 22) // max(1, top.shape[1] * top.shape[1] + top.shape[1] * feats.shape[1]))
    for start in range(0, len(top), step):
        block = top[start : start + step]
        valid = block >= 0
        n, k = block.shape
        flat = feats[np.where(valid, block, 0).ravel()]
        dense = flat.toarray().reshape(n, k, -1) * valid[:, :, None]
        sims = np.einsum("ukf,ujf->ukj", dense, dense)
        m = valid.sum(axis=1)
        pairs = m * (m - 1)
        off = sims.sum(axis=(1, 2)) - np.einsum("ukk->u", sims)
        out[start : start + n] = np.divide(pairs - off, pairs, out=np.zeros(n), where=pairs > 0)
    return out


# ---- rating prediction -----------------------------------------------------------------------
def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error of predicted ratings."""
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of predicted ratings."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - truth)))
