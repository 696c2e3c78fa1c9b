"""Ranking and rating metrics: pure vectorized functions of a users x k hit matrix.

`hits[u, r]` is 1 when the item ranked r+1 for user u is relevant; `n_truth[u]` counts the
user's relevant items. Every function returns per-user values (mean them for the summary).
`SCORE_METRICS` (AUC, log-loss) read the users x items score block itself instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def _discount(n: int) -> np.ndarray:
    """The DCG discounts 1 / log2(rank + 1) of ranks 1..n (any n: k is not bounded)."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _at_most(n_truth: np.ndarray, k: int) -> np.ndarray:
    """min(n_truth, k) elementwise, for a k of any size (no overflow of n_truth's dtype)."""
    return np.minimum(n_truth, min(k, int(n_truth.max(initial=0))))


def _hit_count(hits: np.ndarray, k: int) -> np.ndarray:
    """Hits in each row's first k columns: a matrix-vector product (numpy's row sums over a
    few columns cost several times more)."""
    top = hits[:, :k]
    return top @ np.ones(top.shape[1], dtype=np.result_type(top.dtype, np.float32))


def precision(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Share of the top-k that is relevant (denominator k, as in the usual definition)."""
    return _hit_count(hits, k) / k


def recall(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Share of the user's relevant items found in the top-k."""
    return _hit_count(hits, k) / np.maximum(n_truth, 1)


def recall_capped(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Recall with denominator min(k, n_truth), so a perfect list scores 1 even when the user
    has more than k relevant items: Recall@R of Liang et al. 2018 (Mult-VAE), section 4.2."""
    return _hit_count(hits, k) / np.maximum(_at_most(n_truth, k), 1)


def hit_rate(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top-k."""
    return (_hit_count(hits, k) > 0).astype(np.float64)


def ndcg(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG; the ideal DCG places min(n_truth, k) hits first."""
    top = hits[:, :k]
    dcg = top @ _discount(top.shape[1])
    n_ideal = _at_most(n_truth, k)
    ideal = np.concatenate([[0.0], np.cumsum(_discount(int(n_ideal.max(initial=0))))])[n_ideal]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def mrr(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item in the top-k (0 when none)."""
    first = np.argmax(hits[:, :k] > 0, axis=1)
    return np.where(_hit_count(hits, k) > 0, 1.0 / (first + 1), 0.0)


def average_precision(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """AP@k: mean of precision@i at each hit i, over min(n_truth, k)."""
    h = hits[:, :k].astype(np.float64)
    width = h.shape[1]
    prec_at = (h @ np.triu(np.ones((width, width)))) / np.arange(1, width + 1)  # running sums
    denom = _at_most(n_truth, k).astype(np.float64)
    return np.divide((prec_at * h) @ np.ones(width), denom, out=np.zeros(len(h)), where=denom > 0)


RANKING_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "precision": precision,
    "recall": recall,
    "recall_capped": recall_capped,
    "ndcg": ndcg,
    "hit": hit_rate,
    "mrr": mrr,
    "map": average_precision,
}


# ---- metrics of the score block: every rankable item, not only the top-k ---------------------
def _truth_scores(block: torch.Tensor, truth: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores of each row's truth items, padded (B, m); mask of the real entries (B, m))."""
    counts = np.diff(truth.indptr)
    m = max(1, int(counts.max(initial=0)))
    rows = np.repeat(np.arange(truth.shape[0]), counts)
    slot = np.arange(truth.nnz) - np.repeat(truth.indptr[:-1], counts)
    cols = np.zeros((truth.shape[0], m), dtype=np.int64)
    cols[rows, slot] = truth.indices
    real = np.zeros((truth.shape[0], m), dtype=bool)
    real[rows, slot] = True
    return block.gather(1, torch.from_numpy(cols)), torch.from_numpy(real)


def auc(block: torch.Tensor, truth: sp.csr_matrix) -> np.ndarray:
    """Per-row AUC: the share of (truth, non-truth) item pairs ordered correctly, ties half.

    `block` is a (B, n) float score block where -inf marks items that are not ranked
    (excluded: the user's training items...); those count on neither side. `truth` is the
    (B, n) 0/1 CSR of the rows' relevant items. A row without a rankable truth item or
    without a rankable other item has no pair: its AUC is 0.5, as for random scores. Cost:
    one sort of the block and a batched binary search per truth item.
    """
    ranked = block > -torch.inf  # (B, n)
    truth_scores, real = _truth_scores(block, truth)  # (B, m)
    real &= truth_scores > -torch.inf
    is_truth = torch.zeros_like(ranked)
    rows = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr))
    is_truth[torch.from_numpy(rows), torch.from_numpy(truth.indices.astype(np.int64))] = True
    negative = ranked & ~is_truth
    n_neg = negative.sum(dim=1, keepdim=True)  # (B, 1)
    others = torch.sort(block.masked_fill(~negative, torch.inf), dim=1).values  # negatives first
    query = truth_scores.contiguous()
    below = torch.searchsorted(others, query, right=False)  # (B, m) negatives scored lower
    at_or_below = torch.minimum(torch.searchsorted(others, query, right=True), n_neg)
    credit = (below + at_or_below).double() / 2  # pairs won + half the ties
    won = credit.masked_fill(~real, 0.0).sum(dim=1)
    pairs = real.sum(dim=1).double() * n_neg[:, 0].double()
    out = torch.where(pairs > 0, won / pairs.clamp_min(1), 0.5)
    return out.numpy()


def logloss(block: torch.Tensor, truth: sp.csr_matrix) -> np.ndarray:
    """Per-row log-loss: mean binary cross-entropy of sigmoid(score) over the row's rankable
    items (-inf entries are excluded), truth items labelled 1 and all others 0.

    Each rankable item counts once, so on a large catalogue the mean is dominated by the
    negatives; it suits pointwise (CTR-style) models whose scores are logits. A row with no
    rankable item has log-loss 0.
    """
    ranked = block > -torch.inf
    truth_scores, real = _truth_scores(block, truth)
    real &= truth_scores > -torch.inf
    # BCE(s, y) = softplus(s) - y * s; softplus(-inf) = 0 drops the excluded entries.
    total = F.softplus(block).sum(dim=1, dtype=torch.float64)
    total -= truth_scores.double().masked_fill(~real, 0.0).sum(dim=1)
    n = ranked.sum(dim=1)
    return torch.where(n > 0, total / n.clamp_min(1), 0.0).numpy()


ScoreMetric = Callable[[torch.Tensor, sp.csr_matrix], np.ndarray]
SCORE_METRICS: dict[str, ScoreMetric] = {"auc": auc, "logloss": logloss}
LOWER_IS_BETTER: frozenset[str] = frozenset({"logloss"})
"""Metrics where a smaller value is better (early stopping reads it)."""


# ---- beyond accuracy: functions of the recommended lists themselves ----------------------------
def item_coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list (-1 slots ignored)."""
    if not n_items:
        return 0.0
    shown = np.zeros(n_items + 1, dtype=bool)  # a flag per item (slot n_items takes the -1s)
    shown[np.where(top >= 0, top, n_items)] = True
    return float(np.count_nonzero(shown[:n_items]) / n_items)


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
