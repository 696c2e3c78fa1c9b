"""Dense items x items closed forms at the LAPACK bound: one matrix, built and inverted in place.

EASE (and any later model that holds an items x items matrix) needs the Gram matrix X^T X and
the inverse of X^T X + l2 I. Both are done here in one preallocated array: the Gram matrix is
filled block by block from sparse products, factorised by Cholesky (`potrf`) and inverted from
the factor (`potri`) in place, so the peak is one n x n matrix plus a bounded workspace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from tuijian.errors import ConfigError

Dtype = Literal["float32", "float64"]
# Share of the available memory one dense model may take by default: the rest stays for the
# data, the evaluation's score blocks and whatever else runs on the machine.
MEMORY_FRACTION = 0.5
# Bytes of sparse and transposed blocks alive at once while filling or symmetrising the matrix:
# at most an eighth of the matrix itself, and never more than 128 MiB.
WORKSPACE_BYTES = 128 * 2**20


class ItemWeightsScorer:
    """Mixin of a linear item-item model: a history's scores are its row times the learned
    (I, I) `item_weights_`, dense (EASE, ADMM-SLIM) or sparse (EASE on neighbourhoods); a
    training user is scored from their row."""

    item_weights_: np.ndarray | sp.csr_matrix
    user_items_: sp.csr_matrix

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """User rows @ weights, shape (len(user_idx), n_items or len(item_idx))."""
        return self.score_history(self.user_items_[user_idx], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """History rows @ weights, shape (Q, n_items or len(item_idx))."""
        weights = self.item_weights_ if item_idx is None else self.item_weights_[:, item_idx]
        scores = history @ weights
        return np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None if unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def dense_bytes(n_items: int, dtype: Dtype) -> int:
    """Peak bytes of a dense fit: the n x n matrix, a float32 copy when computing in float64,
    and the workspace."""
    n2 = n_items * n_items
    matrix = n2 * np.dtype(dtype).itemsize
    stored = n2 * 4 if dtype == "float64" else 0
    return matrix + stored + _workspace(n_items, dtype)


def check_fits(name: str, n_items: int, dtype: Dtype, max_items: int | None) -> None:
    """Refuse, before allocating, a dense model over `max_items` (default: what fits in
    MEMORY_FRACTION of the available memory) or over the memory available at all."""
    needed = dense_bytes(n_items, dtype)
    available = available_memory()
    if max_items is not None and n_items > max_items:
        raise ConfigError(
            f"{name} needs a dense {n_items} x {n_items} matrix, over max_items={max_items}; "
            "use itemknn or als, or raise max_items"
        )
    limit = available if max_items is not None else _share(available)
    if limit is not None and needed > limit:
        what = (
            "the available memory"
            if max_items is not None
            else f"{MEMORY_FRACTION:.0%} of the available memory; set max_items to allow all"
        )
        raise ConfigError(
            f"{name} on {n_items:,} items needs {needed:,} bytes ({dtype}), {limit:,} bytes "
            f"are allowed ({what}); use dtype float32, itemknn or als"
        )


def inverse_gram(matrix: sp.csr_matrix, l2: float | np.ndarray, dtype: Dtype) -> np.ndarray:
    """P = (X^T X + diag(l2))^-1 of a users x items CSR matrix X (l2 a scalar or one value per
    item), as one C-ordered (I, I) array."""
    n = matrix.shape[1]
    gram = gram_matrix(matrix, dtype)  # (I, I)
    gram[np.diag_indices(n)] += l2
    # gram is C-ordered and symmetric: its transpose is the same memory in Fortran order,
    # which LAPACK overwrites in place. Upper of gram.T is the lower triangle of gram.
    potrf, potri = (
        (lapack.spotrf, lapack.spotri)
        if dtype == "float32"
        else (
            lapack.dpotrf,
            lapack.dpotri,
        )
    )
    factor, info = potrf(gram.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise ConfigError(f"X^T X + l2 I is not positive definite (potrf info={info}); raise l2")
    inverse, info = potri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ConfigError(f"X^T X + l2 I is singular (potri info={info}); raise l2")
    if not np.shares_memory(inverse, gram):  # a LAPACK wrapper that copied: keep its result
        gram = np.ascontiguousarray(inverse.T)
    _fill_upper_from_lower(gram)
    return gram


def gram_matrix(matrix: sp.csr_matrix, dtype: Dtype) -> np.ndarray:
    """X^T X as a dense C-ordered (I, I) array, filled by row blocks of sparse products."""
    n = matrix.shape[1]
    x = matrix.astype(dtype, copy=False)  # (U, I), no copy of a float32 X for float32
    xt = x.T.tocsr()  # (I, U)
    gram = np.zeros((n, n), dtype=dtype)  # pages are touched only where written
    step = _block_rows(n, dtype)
    for lo in range(0, n, step):
        block = xt[lo : lo + step] @ x  # (b, I), sparse
        block.toarray(out=gram[lo : lo + step])
    return gram


def _fill_upper_from_lower(square: np.ndarray) -> None:
    """Copy the lower triangle of a C-ordered square array onto its upper one, block by block."""
    n = square.shape[0]
    step = _block_rows(n, square.dtype)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        square[lo:hi, hi:] = square[hi:, lo:hi].T
        diag = square[lo:hi, lo:hi]
        upper = np.triu_indices(hi - lo, 1)
        diag[upper] = diag.T[upper]


def _block_rows(n: int, dtype: np.dtype | str) -> int:
    """Rows per block so that one block (dense, or sparse at 12 bytes per entry) fits the
    workspace."""
    return max(1, _workspace(n, dtype) // (12 * max(n, 1)))


def _workspace(n: int, dtype: np.dtype | str) -> int:
    return min(WORKSPACE_BYTES, n * n * np.dtype(dtype).itemsize // 8)


def _share(available: int | None) -> int | None:
    return None if available is None else int(available * MEMORY_FRACTION)
