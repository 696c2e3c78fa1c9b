"""Shared pieces of the neighbourhood models: shrunk cosine on dense blocks, top-k sparsify."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Floats held in one dense similarity block (rows x columns) while building neighbourhoods.
SIM_BUDGET = 1 << 22


def row_norms(matrix: sp.csr_matrix) -> np.ndarray:
    """Euclidean norm of every row of a sparse matrix, float32."""
    squared = matrix.multiply(matrix).sum(axis=1)
    return np.sqrt(np.asarray(squared, dtype=np.float64).ravel()).astype(np.float32)


def shrunk_cosine(
    dots: np.ndarray, left_norms: np.ndarray, right_norms: np.ndarray, shrink: float
) -> np.ndarray:
    """Turn a block of dot products into dot / (|a| |b| + shrink), in place; 0 where undefined."""
    denom = np.outer(left_norms, right_norms)  # (R, C)
    denom += np.float32(shrink)
    np.divide(dots, denom, out=dots, where=denom > 0)
    return dots


def keep_topk(block: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse copy of a dense block keeping the k largest positive entries of each row."""
    n_rows, n_cols = block.shape
    k = min(k, n_cols)
    if k < n_cols:
        cols = np.argpartition(block, n_cols - k, axis=1)[:, n_cols - k :]  # (R, k)
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    vals = np.take_along_axis(block, cols, axis=1).ravel()
    rows = np.repeat(np.arange(n_rows), k)
    keep = vals > 0
    return sp.csr_matrix(
        (vals[keep].astype(np.float32), (rows[keep], cols.ravel()[keep])),
        shape=block.shape,
        dtype=np.float32,
    )
