"""The one ranking path: score a batch of queries, mask, top-k with a fixed tie-break.

`recommend`, the evaluator and (later) the service all call `rank`, so what is measured is what
is served. Equal scores are ordered by item index (lower first), whatever k or cut-offs are
asked for: the top-k of a row is the first k items of the order (score descending, index
ascending), so a metric at 10 does not depend on whether 50 was also requested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from tuijian.models.query import QueryBatch

if TYPE_CHECKING:
    from tuijian.models.base import Recommender

# Scores held at once while ranking: queries-per-batch x scored items stays under this many floats.
SCORE_BUDGET = 1 << 24
# Called with (rows of the batch, masked score block (b, n_cols), scored columns or None for all)
# before the top-k: the evaluator computes AUC / log-loss from the same blocks.
BlockHook = Callable[[slice, torch.Tensor, np.ndarray | None], None]
# Score only the union of the batch's candidates when it is below this share of the catalogue.
CANDIDATE_SHARE = 0.5


@dataclass(frozen=True)
class Ranking:
    """Top-k lists of a batch of queries, in item indices; -1 where nothing was left to rank."""

    idx: np.ndarray  # (Q, k') int64, k' = min(k, n_items)
    scores: np.ndarray  # (Q, k') float32, -inf where idx is -1
    fallback: np.ndarray  # (Q,) bool: the popularity fallback produced the row


def rows_per_batch(n_items: int, budget: int = SCORE_BUDGET) -> int:
    """Rows scored at once so that a score block stays under `budget` floats."""
    return max(1, budget // max(1, n_items))


def mask_block(block: torch.Tensor, mask: sp.csr_matrix) -> None:
    """Set `block[i, j] = -inf` wherever `mask[i, j]` is stored (in place)."""
    if mask.nnz:
        # one flat index into the contiguous block, written by NumPy: cheaper than a (rows,
        # cols) index pair and about half the time of torch's index_put_
        starts = np.arange(mask.shape[0], dtype=np.int64) * block.shape[1]
        flat = np.repeat(starts, np.diff(mask.indptr)) + mask.indices
        target = block if block.is_contiguous() else block.contiguous()
        target.numpy().reshape(-1)[flat] = -np.inf
        if target is not block:
            block.copy_(target)


def topk_ordered(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k entries of each row in the order (score descending, column ascending).

    `torch.topk` picks an arbitrary subset of the entries tied at the k-th score and orders
    ties arbitrarily. One more entry than asked is drawn: where the (k+1)-th equals the k-th,
    ties straddle the cut and that row is redone exactly (the tied columns with the lowest
    indices); then the rows holding equal scores are sorted stably by score after column
    (topk's own order is kept where all k scores differ: most rows, and a third of the cost).
    """
    n_cols = block.shape[1]
    vals, idx = torch.topk(block, min(k + 1, n_cols), dim=1)  # (B, k + 1)
    if k == 0:
        return vals[:, :0], idx[:, :0]
    unordered = (vals[:, 1:k] == vals[:, : k - 1]).any(dim=1)  # ties inside the top-k
    if n_cols > k:
        straddle = vals[:, k] == vals[:, k - 1]
        unordered |= straddle
        vals, idx = vals[:, :k], idx[:, :k]
        rows = straddle.nonzero()[:, 0]
        if len(rows):
            sub, t = block[rows], vals[rows, k - 1 :]  # (R, n), (R, 1)
            n_tied = (vals[rows] == t).sum(dim=1, keepdim=True)  # tied slots inside the top-k
            tied = sub == t
            chosen = (sub > t) | (tied & (tied.cumsum(dim=1) <= n_tied))  # exactly k per row
            new_idx = chosen.nonzero()[:, 1].view(len(rows), k)  # ascending columns
            idx[rows] = new_idx
            vals[rows] = sub.gather(1, new_idx)
    rows = unordered.nonzero()[:, 0]
    if len(rows):
        v, i = vals[rows], idx[rows]
        by_col = torch.argsort(i, dim=1)
        i, v = i.gather(1, by_col), v.gather(1, by_col)
        by_score = torch.sort(v, dim=1, descending=True, stable=True).indices
        vals[rows], idx[rows] = v.gather(1, by_score), i.gather(1, by_score)
    return vals, idx


def _topk_without_nan(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`topk_ordered` with NaN scores counted as -inf. `torch.topk` ranks NaN above every
    number, so only the rows whose top-k holds a NaN are cleaned and redone (a full pass over
    the block to clean it would cost a third of the top-k itself)."""
    vals, idx = topk_ordered(block, k)
    rows = torch.isnan(vals).any(dim=1).nonzero()[:, 0]
    if len(rows):
        sub = block[rows]
        sub.masked_fill_(torch.isnan(sub), -torch.inf)
        vals[rows], idx[rows] = topk_ordered(sub, k)
    return vals, idx


def _columns(queries: QueryBatch) -> np.ndarray | None:
    """Item indices worth scoring for the batch: the union of its candidates, or None (all)."""
    if queries.candidates is None:
        return None
    union = np.unique(queries.candidates.indices)
    return union if len(union) < CANDIDATE_SHARE * queries.n_items else None


def rank(
    model: Recommender,
    queries: QueryBatch,
    k: int,
    *,
    exclude_seen: bool = True,
    batch_size: int | None = None,
    on_block: BlockHook | None = None,
) -> Ranking:
    """Top-k items of every query: score, hide the history (when `exclude_seen`), the query's
    exclusions and non-candidates, then `topk_ordered`; k is clipped to the catalogue.
    NaN scores count as -inf (such items are ranked like hidden ones, never first).
    `on_block`, when given, sees every masked block before its top-k (see `BlockHook`)."""
    n_q, n_items = len(queries), model.n_items
    k_eff = max(0, min(int(k), n_items))
    out_idx = np.full((n_q, k_eff), -1, dtype=np.int64)
    out_score = np.full((n_q, k_eff), -np.inf, dtype=np.float32)
    fallback = queries.empty.copy()
    step = batch_size or rows_per_batch(n_items)
    for start in range(0, n_q, step):
        batch = queries.rows(start, min(start + step, n_q))
        cols = _columns(batch)
        with torch.no_grad():
            block = model.score_queries(batch, cols)  # (b, n_cols)
        if on_block is not None:  # the hook sees clean scores; otherwise NaN is fixed after top-k
            block.masked_fill_(torch.isnan(block), -torch.inf)
        seen = batch.history if exclude_seen else None
        hidden = [m for m in (batch.exclude, seen) if m is not None and m.nnz]
        if hidden:
            mask = hidden[0] if len(hidden) == 1 else (hidden[0] + hidden[1]).tocsr()
            mask_block(block, mask if cols is None else mask[:, cols].tocsr())
        if batch.candidates is not None:
            allowed = batch.candidates if cols is None else batch.candidates[:, cols]
            block.masked_fill_(~torch.from_numpy(allowed.toarray() > 0), -torch.inf)
        if on_block is not None:
            on_block(slice(start, start + len(batch)), block, cols)
        kk = min(k_eff, block.shape[1])
        vals, idx = _topk_without_nan(block, kk)
        idx_np = idx.numpy() if cols is None else cols[idx.numpy()]
        vals_np = vals.numpy()
        sl = slice(start, start + len(batch))
        out_idx[sl, :kk] = np.where(np.isneginf(vals_np), -1, idx_np)
        out_score[sl, :kk] = vals_np
    return Ranking(out_idx, out_score, fallback)
