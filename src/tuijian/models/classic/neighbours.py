"""Shared pieces of the neighbourhood models: shrunk cosine and top-k pruning on sparse blocks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Entries one block of similarities may hold (rows x columns) while neighbourhoods are built.
SIM_BUDGET = 1 << 22


def row_norms(matrix: sp.csr_matrix) -> np.ndarray:
    """Euclidean norm of every row of a sparse matrix, float32."""
    squared = matrix.multiply(matrix).sum(axis=1)
    return np.sqrt(np.asarray(squared, dtype=np.float64).ravel()).astype(np.float32)


def _row_of_entries(block: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))


def shrunk_cosine(
    dots: sp.csr_matrix,
    left_norms: np.ndarray,
    right_norms: np.ndarray,
    shrink: float,
    own_columns: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Block of dot products -> dot / (|a| |b| + shrink) on its stored entries.

    With `own_columns`, entry (r, own_columns[r]) is dropped: nothing is its own neighbour.
    """
    out = sp.csr_matrix(dots, dtype=np.float32, copy=True)
    rows = _row_of_entries(out)
    denom = left_norms[rows] * right_norms[out.indices] + np.float32(shrink)
    out.data = np.divide(out.data, denom, out=np.zeros_like(out.data), where=denom > 0)
    if own_columns is not None:
        out.data[out.indices == own_columns[rows]] = 0.0
    out.eliminate_zeros()
    return out


def keep_topk(block: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Copy of a sparse block keeping the k largest positive entries of each row.

    Only rows holding more than k entries are ranked: they are packed into a dense
    (rows, longest row) array and cut with one vectorized `argpartition`.
    """
    out = sp.csr_matrix(block, dtype=np.float32, copy=True)
    out.data[out.data < 0] = 0.0
    out.eliminate_zeros()
    lengths = np.diff(out.indptr)
    is_long = lengths > k
    if not is_long.any():
        return out
    entry_rows = _row_of_entries(out)
    long_entries = np.flatnonzero(is_long[entry_rows])
    long_starts = out.indptr[:-1][is_long]
    packed_row = (np.cumsum(is_long) - 1)[entry_rows[long_entries]]
    packed_col = long_entries - out.indptr[entry_rows[long_entries]]
    packed = np.full((len(long_starts), lengths.max()), -np.inf, dtype=np.float32)  # (L, W)
    packed[packed_row, packed_col] = out.data[long_entries]
    best = np.argpartition(-packed, k - 1, axis=1)[:, :k]  # (L, k) positions within the row
    keep = ~is_long[entry_rows]
    keep[(long_starts[:, None] + best).ravel()] = True
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, k), out=indptr[1:])
    return sp.csr_matrix((out.data[keep], out.indices[keep], indptr), shape=out.shape)
