"""ADMM-SLIM (Steck, Dimakopoulou, Riabov, Jebara, WSDM 2020): SLIM solved by ADMM in closed form.

    min_B ||X - X B||^2 / 2 + ||L^1/2 B||^2 / 2 + l1 |B|_1   s.t. diag(B) = 0, B >= 0

with L = l2 diag(f^alpha), f the items' training frequencies over the users (alpha 0: plain
l2 I; RecBole's `alpha`, default 0.5 there, shrinks rare items' rows less), split into B (ridge
with a zero diagonal, closed form) and C (the L1 and sign constraints, an elementwise shrink),
joined by the scaled dual Gamma:

    P = (X^T X + L + rho I)^-1                     # once (Cholesky, see `dense`)
    B~ = (I - P (L + rho I)) + P (rho C - Gamma)    # = P (X^T X + rho C - Gamma)
    B = B~ - P diag(diag(B~) / diag(P))             # the zero-diagonal projection
    C = max(shrink(B + Gamma / rho, l1 / rho), 0)
    Gamma += rho (B - C)

The learned matrix is C (zero diagonal, non-negative, sparse by the L1 term), held dense like
EASE's: one items x items float32 matrix per array, five alive during the fit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import ConfigError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.classic.dense import (
    MEMORY_FRACTION,
    ItemWeightsScorer,
    available_memory,
    inverse_gram,
)
from tuijian.models.registry import register

# Items x items float32 arrays alive at once during the fit (P, C, Gamma, B~ and two
# temporaries of the products), against EASE's one: the memory check counts this many.
FIT_MATRICES = 6


class ADMMSLIMConfig(ModelConfig):
    """L1 and L2 strengths, the ADMM penalty rho, iterations and the sign constraint."""

    l1: float = Field(1.0, ge=0)
    l2: float = Field(500.0, ge=0)
    alpha: float = Field(0.0, ge=0)
    rho: float = Field(10_000.0, gt=0)
    n_iter: int = Field(50, gt=0)
    nonnegative: bool = True
    max_items: int | None = Field(None, gt=0)


def ridge_diagonal(matrix: sp.csr_matrix, l2: float, alpha: float) -> np.ndarray | float:
    """The L2 strength of each item, l2 f^alpha (f: X's column means, the share of users with the
    item for 0/1 rows, as RecBole's ADMMSLIM); alpha 0: the scalar l2."""
    if alpha == 0.0:
        return l2
    freq = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel() / matrix.shape[0]
    return (l2 * freq**alpha).astype(np.float32)


def admm_slim_weights(
    matrix: sp.csr_matrix,
    l1: float,
    l2: float,
    rho: float,
    n_iter: int,
    nonnegative: bool,
    alpha: float = 0.0,
) -> np.ndarray:
    """The ADMM-SLIM item-item matrix C (I, I), float32, zero diagonal."""
    n = matrix.shape[1]
    ridge = np.float32(rho) + ridge_diagonal(matrix, l2, alpha)  # scalar or (I,)
    p = inverse_gram(matrix, ridge, "float32")  # (I, I)
    diag_p = np.diagonal(p).copy()
    c = np.zeros((n, n), dtype=np.float32)
    gamma = np.zeros((n, n), dtype=np.float32)
    rho32, shrink = np.float32(rho), np.float32(l1 / rho)
    for _ in range(n_iter):
        b = p @ (rho32 * c - gamma)  # (I, I)
        b -= p * ridge  # P (L + rho I): column j scaled by its ridge
        b[np.diag_indices(n)] += 1.0  # B~ = I - P (L + rho I) + P (rho C - Gamma)
        b -= p * (np.diagonal(b) / diag_p)[None, :]  # zero diagonal
        np.divide(gamma, rho32, out=c)
        c += b  # B + Gamma / rho, shrunk towards 0 by l1 / rho below
        if nonnegative:
            c -= shrink
            np.maximum(c, 0.0, out=c)
        else:
            np.copysign(np.maximum(np.abs(c) - shrink, 0.0), c, out=c)
        b -= c
        b *= rho32
        gamma += b  # Gamma += rho (B - C)
    return c


def fit_bytes(n_items: int) -> int:
    """Peak bytes of the fit's dense arrays: `FIT_MATRICES` float32 items x items matrices."""
    return FIT_MATRICES * n_items * n_items * 4


def check_memory(name: str, n_items: int, max_items: int | None) -> None:
    """Refuse, before allocating, a fit over `max_items` or over MEMORY_FRACTION of the memory."""
    if max_items is not None and n_items > max_items:
        raise ConfigError(f"{name} on {n_items:,} items is over max_items={max_items:,}")
    available = available_memory()
    limit = None if available is None else int(available * MEMORY_FRACTION)
    if max_items is None and limit is not None and fit_bytes(n_items) > limit:
        raise ConfigError(
            f"{name} on {n_items:,} items needs {fit_bytes(n_items):,} bytes, {limit:,} are "
            f"allowed ({MEMORY_FRACTION:.0%} of the available memory); use ease_neighbors or gfcf"
        )


@register("admmslim")
class ADMMSLIM(ItemWeightsScorer, Recommender[ADMMSLIMConfig]):
    """Scores items as the user's row times a sparse-by-L1, non-negative item-item matrix.

    History-native: a history given at call time is scored exactly as a training row.
    """

    history_mode = "native"

    state_fields = ("item_weights_",)
    test_config: ClassVar[dict[str, Any]] = {"l1": 0.1, "l2": 5.0, "rho": 50.0, "n_iter": 30}

    @classmethod
    def fit_memory(cls, n_items: int) -> int | None:
        return fit_bytes(n_items)

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        check_memory(f"{train.name}: ADMM-SLIM", train.n_items, cfg.max_items)
        self.item_weights_ = admm_slim_weights(
            train.matrix, cfg.l1, cfg.l2, cfg.rho, cfg.n_iter, cfg.nonnegative, cfg.alpha
        )
