"""EASE: the closed-form shallow autoencoder of Steck (2019), B = I - P / diag(P).

    G = X^T X + l2 I          # (I, I), built in place from the sparse (U, I) matrix X
    P = G^-1                  # Cholesky (potrf) then potri, in the same array
    B = -P / diag(P)          # column j divided by P_jj, diag(B) = 0

float32 by default (float64 on request): one items x items matrix plus a bounded workspace
(see `dense`), so the catalogue that fits is set by memory, which `max_items` follows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.classic.dense import (
    Dtype,
    ItemWeightsScorer,
    check_fits,
    dense_bytes,
    inverse_gram,
)
from tuijian.models.registry import register

# Default L2 as a multiple of the mean diagonal of X^T X (an item's summed squared weights), so
# the penalty scales with the data. Chosen on ml-100k, ml-1m and Retailrocket
# (docs/benchmarks/defaults.md), whose best absolute values, 250, 1,000 and 100, are 5x theirs.
L2_PER_MEAN_DIAGONAL = 5.0
# Floats of the sparse Gram matrix densified at once by the neighbourhood variant (128 MB).
WORKSPACE_ROWS = 1 << 25


class EASEConfig(ModelConfig):
    """EASE settings: L2 strength, the catalogue limit and the precision of the inverse.

    `l2` None: `L2_PER_MEAN_DIAGONAL` x the mean diagonal of X^T X. `max_items` None: as many
    items as fit in `dense.MEMORY_FRACTION` of the available memory.
    """

    l2: float | None = Field(None, gt=0)
    max_items: int | None = Field(None, gt=0)
    dtype: Dtype = "float32"


def default_l2(matrix: sp.csr_matrix) -> float:
    """`L2_PER_MEAN_DIAGONAL` x mean_j (X^T X)_jj, the data-scaled default penalty."""
    data = np.asarray(matrix.data, dtype=np.float64)
    return L2_PER_MEAN_DIAGONAL * float(data @ data) / max(matrix.shape[1], 1)


def ease_weights(matrix: sp.csr_matrix, l2: float, dtype: Dtype = "float32") -> np.ndarray:
    """Item-item weights B = -P / diag(P) with zero diagonal, P = (X^T X + l2 I)^-1, float32."""
    weights = inverse_gram(matrix, l2, dtype)  # P, (I, I), overwritten into B below
    diagonal = np.diagonal(weights).copy()
    np.divide(weights, -diagonal[None, :], out=weights)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights if weights.dtype == np.float32 else weights.astype(np.float32)


@register("ease")
class EASE(ItemWeightsScorer, Recommender[EASEConfig]):
    """Scores items as the user's row times a dense item-item weight matrix with zero diagonal.

    History-native: a history given at call time is scored exactly as a training row.
    """

    history_mode = "native"

    state_fields = ("item_weights_", "l2_")
    test_config: ClassVar[dict[str, Any]] = {"l2": 5.0}

    @classmethod
    def fit_memory(cls, n_items: int) -> int | None:
        return dense_bytes(n_items, EASEConfig().dtype)

    @classmethod
    def older_state(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Folders from before the data-scaled default saved an explicit `l2`."""
        l2 = config.get("l2")
        return {} if l2 is None else {"l2_": float(l2)}

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        check_fits(f"{train.name}: EASE", train.n_items, cfg.dtype, cfg.max_items)
        self.l2_ = float(cfg.l2 if cfg.l2 is not None else default_l2(train.matrix))
        self.item_weights_ = ease_weights(train.matrix, self.l2_, cfg.dtype)  # (I, I)


class NeighborhoodEASEConfig(ModelConfig):
    """L2 strength (None: as EASE's default) and the neighbours each item's column may use."""

    l2: float | None = Field(None, gt=0)
    n_neighbors: int = Field(200, gt=0)
    batch_items: int = Field(256, gt=0)


def _neighborhood_grams(gram: sp.csr_matrix, neighbors: np.ndarray) -> np.ndarray:
    """gram[N_b, N_b] of each row b of `neighbors` (B, k) as a dense (B, k, k) array, read
    from the dense block of gram over the union of the neighbourhoods."""
    union = np.unique(neighbors)
    block = gram[union][:, union].toarray()  # (|U|, |U|), |U| <= B * k
    pos = np.searchsorted(union, neighbors)  # (B, k)
    return block[pos[:, :, None], pos[:, None, :]]


def neighborhood_ease_weights(
    matrix: sp.csr_matrix, l2: float, n_neighbors: int, batch_items: int = 256
) -> sp.csr_matrix:
    """EASE with each column's support restricted to the item's `n_neighbors` most co-occurring
    items N_j: B[N_j, j] = (G[N_j, N_j] + l2 I)^-1 G[N_j, j], G = X^T X kept sparse. The same
    per-column problem as EASE (B_jj = 0 since j is not in N_j), so with all other items as
    neighbours it is EASE exactly; memory is the sparse G plus a (batch, N, N) workspace."""
    x = matrix.astype(np.float32).tocsr()
    n = x.shape[1]
    gram = (x.T.tocsr() @ x).tocsr()  # (I, I) sparse
    gram.sort_indices()
    k = min(n_neighbors, n - 1)
    if k <= 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    rows_out, cols_out, vals_out = [], [], []
    # (b * k)^2 floats of the union block and b rows of the dense Gram fit the workspace
    step = max(1, min(batch_items, int(WORKSPACE_ROWS**0.5) // k, WORKSPACE_ROWS // max(n, 1)))
    for lo in range(0, n, step):
        items = np.arange(lo, min(lo + step, n))
        dense = gram[items].toarray()  # (b, I) co-occurrence counts
        dense[np.arange(len(items)), items] = -np.inf  # an item is not its own neighbour
        neighbors = np.sort(np.argpartition(-dense, k - 1, axis=1)[:, :k], axis=1)  # (b, k)
        a = torch.from_numpy(_neighborhood_grams(gram, neighbors))  # (b, k, k)
        a.diagonal(dim1=1, dim2=2).add_(l2)
        rhs = torch.from_numpy(np.take_along_axis(dense, neighbors, axis=1)[..., None])  # G[N, j]
        solved = torch.cholesky_solve(rhs, torch.linalg.cholesky(a))[..., 0]  # (b, k)
        rows_out.append(neighbors.ravel())
        cols_out.append(np.repeat(items, k))
        vals_out.append(solved.numpy().ravel())
    weights = sp.csr_matrix(
        (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(n, n),
        dtype=np.float32,
    )
    weights.eliminate_zeros()
    return weights


@register("ease_neighbors")
class NeighborhoodEASE(ItemWeightsScorer, Recommender[NeighborhoodEASEConfig]):
    """EASE for catalogues past the dense limit: each item's column of B over its top-N
    co-occurring items only, a sparse items x items matrix of N entries per column.

    History-native, like EASE: a given history is scored as a training row.
    """

    history_mode = "native"

    state_fields = ("item_weights_", "l2_")
    test_config: ClassVar[dict[str, Any]] = {"l2": 5.0, "n_neighbors": 4}

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        self.l2_ = float(cfg.l2 if cfg.l2 is not None else default_l2(train.matrix))
        self.item_weights_ = neighborhood_ease_weights(
            train.matrix, self.l2_, cfg.n_neighbors, cfg.batch_items
        )
