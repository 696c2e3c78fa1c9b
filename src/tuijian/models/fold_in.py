"""Helpers of fold-in models: a user vector computed from a history with the item side fixed.

`ridge_users` solves one small weighted least-squares problem per history, vectorized over a
batch of histories (the implicit-ALS user step of Hu, Koren, Volinsky 2008, and the ridge
regressions of BiasedMF and I-AutoRec); `binary_history` is the 0/1 view of a history that
models trained on `seen_` read.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from tuijian.models.vectors import ridge_contributions

# Floats of the (nnz, D, D) outer products and (Q, D, D) systems held at once while solving.
SOLVE_BUDGET = 1 << 24


def binary_history(history: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 float32 pattern of a history's positive entries, indices sorted (as `seen_`)."""
    out = (sp.csr_matrix(history) > 0).astype(np.float32).tocsr()
    out.sort_indices()
    return out


def history_rows(history: sp.csr_matrix) -> np.ndarray:
    """(nnz,) the query (row) of each stored entry of a CSR history."""
    return np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))


def ridge_users(
    history: sp.csr_matrix,
    features: torch.Tensor,
    base: torch.Tensor,
    confidence: np.ndarray,
    targets: np.ndarray,
    ridge_per_entry: float = 0.0,
    budget: int = SOLVE_BUDGET,
) -> torch.Tensor:
    """Per history q, the solution w_q of the weighted ridge normal equations

        (base + |h_q| r I + sum_{i in h_q} c_qi x_i x_i^T) w_q = sum_{i in h_q} c_qi y_qi x_i

    Args:
        history: (Q, I) CSR; its stored entries are the items i of each history.
        features: (I, D) item features x_i (item embeddings, item codes...).
        base: (D, D) the part of the system every history shares (e.g. X^T X + lam I).
        confidence: (nnz,) c_qi of each stored entry, in CSR order.
        targets: (nnz,) y_qi of each stored entry, in CSR order.
        ridge_per_entry: r, an L2 weight counted once per history entry (a penalty paid per
            rating, as in BiasedMF's batch loss).
        budget: floats of outer products / systems held at once (queries are chunked).

    Returns:
        (Q, D) float32 solutions, on the device of `features`.
    """
    n_q, dim = history.shape[0], features.shape[1]
    device = features.device
    out = torch.empty((n_q, dim), dtype=torch.float32, device=device)
    entries = max(1, budget // (dim * dim))
    indptr = history.indptr
    start = 0
    while start < n_q:
        # The longest run of queries whose entries' outer products and systems fit the budget.
        stop = int(np.searchsorted(indptr, indptr[start] + entries, side="right")) - 1
        stop = max(start + 1, min(stop, start + entries, n_q))
        lo, hi = indptr[start], indptr[stop]
        cols = torch.from_numpy(history.indices[lo:hi].astype(np.int64)).to(device)
        rows = torch.from_numpy(history_rows(history[start:stop])).to(device)
        c = torch.from_numpy(np.asarray(confidence[lo:hi], dtype=np.float32)).to(device)
        y = torch.from_numpy(np.asarray(targets[lo:hi], dtype=np.float32)).to(device)
        x = features[cols]  # (n, D)
        systems = base.to(torch.float32).expand(stop - start, dim, dim).clone()  # (q, D, D)
        systems.index_add_(0, rows, (c[:, None, None] * x[:, :, None]) * x[:, None, :])
        if ridge_per_entry:
            counts = torch.from_numpy(np.diff(indptr[start : stop + 1]).astype(np.float32))
            eye = torch.eye(dim, device=device)
            systems += (ridge_per_entry * counts.to(device))[:, None, None] * eye
        rhs = torch.zeros((stop - start, dim), dtype=torch.float32, device=device)
        rhs.index_add_(0, rows, (c * y)[:, None] * x)
        out[start:stop] = torch.linalg.solve(systems, rhs)
        start = stop
    return out


def implicit_users(
    history: sp.csr_matrix, item_table: torch.Tensor, alpha: float, l2: float
) -> torch.Tensor:
    """(Q, D) implicit-ALS user vectors of histories with the item vectors Y fixed:

        (Y^T Y + alpha Y_h^T Y_h + lam I) p = (1 + alpha) Y_h^T 1,  lam = l2 trace(Y^T Y) / D

    i.e. preference 1 with confidence 1 + alpha on the history's items (binarized), 0 with
    confidence 1 elsewhere; the ridge is scaled to the embeddings' size, so one `l2` suits
    tables of any scale.
    """
    binary = binary_history(history)
    with torch.no_grad():
        gram = item_table.T @ item_table  # (D, D)
        dim = gram.shape[0]
        lam = l2 * float(gram.trace()) / dim
        base = gram + lam * torch.eye(dim, device=gram.device)
        ones = np.ones(binary.nnz, dtype=np.float32)
        return ridge_users(binary, item_table, base, alpha * ones, (1 + 1 / alpha) * ones)


def implicit_contributions(
    history: sp.csr_matrix, item_table: torch.Tensor, alpha: float, l2: float, item: int
) -> np.ndarray:
    """(nnz,) exact share of each item of one history (CSR order) in `implicit_users`' score of
    `item`: the same system, split by `ridge_contributions`."""
    binary = binary_history(history[0])
    table = item_table.detach().to("cpu", torch.float64).numpy()
    gram = table.T @ table
    dim = gram.shape[0]
    x = table[binary.indices]
    system = gram + l2 * np.trace(gram) / dim * np.eye(dim) + alpha * x.T @ x
    weights = np.full(len(x), 1 + alpha)
    return ridge_contributions(x, system, weights, table[item])


def complement_items(history: sp.csr_matrix, rows: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The item of rank `ranks[n]` (0-based, ascending index) among the items that history row
    `rows[n]` does not hold: the rank plus the row's items at or below it, by binary search."""
    n_items = history.shape[1]
    starts = history.indptr[:-1]
    position = np.arange(history.nnz) - np.repeat(starts, np.diff(history.indptr))
    # Per row, item - position counts the free items below each history item (non-decreasing).
    keys = history_rows(history) * (n_items + 1) + (history.indices - position)
    below = np.searchsorted(keys, rows * (n_items + 1) + ranks, side="right") - starts[rows]
    return (ranks + below).astype(np.int64)


def stratified_negatives(
    history: sp.csr_matrix, per_row: np.ndarray, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """`per_row[q]` items of each row's complement, spread evenly over it (rank
    floor((j + offset) C_q / n_q) of its C_q free items), repeating when n_q > C_q.

    A deterministic stand-in for uniform negative sampling: a row's draws depend only on the
    row and `offset` in [0, 1), not on the other rows of the batch. Rows must have a free item.
    Returns (rows, items), row-major.
    """
    free = history.shape[1] - np.diff(history.indptr)
    per_row = np.asarray(per_row, dtype=np.int64)
    rows = np.repeat(np.arange(history.shape[0]), per_row)
    j = np.arange(len(rows)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    ranks = np.floor((j + offset) * free[rows] / per_row[rows]).astype(np.int64)
    return rows, complement_items(history, rows, ranks)
