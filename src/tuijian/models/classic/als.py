"""ALS: implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008) via `implicit` on CPU."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field
from threadpoolctl import threadpool_limits

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register
from tuijian.models.vectors import FactorVectors, ridge_contributions

# The default L2 per observation of a factor vector (ALS-WR, Zhou et al. 2008, scaled globally):
# `regularization` None is this times 2 * nnz / (users + items), the mean number of observations
# per user or item vector. Chosen on ml-100k, ml-1m, Retailrocket and Amazon Beauty
# (docs/benchmarks/defaults.md), where the best absolute value ranges from 1 to 30.
REG_PER_OBSERVATION = 0.17


class ALSConfig(ModelConfig):
    """ALS settings: factors, L2 (None: scaled to the data), confidence scale alpha, sweeps,
    solver threads (0 = all)."""

    factors: int = Field(128, gt=0)
    regularization: float | None = Field(None, ge=0)
    alpha: float = Field(1.0, gt=0)
    iterations: int = Field(15, gt=0)
    num_threads: int = Field(0, ge=0)


@register("als")
class ALS(FactorVectors, Recommender[ALSConfig]):
    """Scores are dot products of learned user and item factors (U[u] @ V.T).

    Fold-in: a given history's user factors are one least-squares solve against the fixed item
    factors, by implicit's own `recalculate_user` (the step ALS takes for every user in fit).
    """

    history_mode = "fold_in"

    state_fields = ("user_factors_", "item_factors_", "regularization_")
    test_config: ClassVar[dict[str, Any]] = {"factors": 8, "iterations": 15, "num_threads": 1}

    @classmethod
    def older_state(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Folders from before the data-scaled default saved an explicit `regularization`."""
        reg = config.get("regularization")
        return {} if reg is None else {"regularization_": float(reg)}

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        self.regularization_ = float(
            cfg.regularization
            if cfg.regularization is not None
            else REG_PER_OBSERVATION * 2 * train.matrix.nnz / sum(train.matrix.shape)
        )
        # implicit parallelises over rows itself; a multi-threaded BLAS underneath only thrashes,
        # and with BLAS held to one thread its start-up check has nothing to warn about.
        with threadpool_limits(limits=1, user_api="blas"):
            solver = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=self.regularization_,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                num_threads=cfg.num_threads,
                random_state=cfg.seed,
                dtype=np.float32,
            )
            solver.fit(train.matrix.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors_ = np.ascontiguousarray(solver.user_factors, dtype=np.float32)  # (U, F)
        self.item_factors_ = np.ascontiguousarray(solver.item_factors, dtype=np.float32)  # (I, F)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """U[u] @ V.T, shape (len(user_idx), n_items or len(item_idx))."""
        return self._dot(self.user_factors_[user_idx], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """Folded-in user factors @ V.T, shape (Q, n_items or len(item_idx))."""
        return self._dot(self.fold_in(history), item_idx)

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """(Q, F) user factors solved from the history weights with the item factors fixed."""
        cfg = self.config
        solver = AlternatingLeastSquares(
            factors=self.item_factors_.shape[1],
            regularization=self.regularization_,
            alpha=cfg.alpha,
            num_threads=cfg.num_threads,
            dtype=np.float32,
        )
        solver.item_factors = self.item_factors_
        rows = sp.csr_matrix(history, dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            factors = solver.recalculate_user(np.arange(rows.shape[0]), rows)
        return np.ascontiguousarray(factors, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[np.asarray(user_idx, dtype=np.int64)]

    def history_contributions(self, history: sp.csr_matrix, item: int) -> np.ndarray:
        """(nnz,) exact share of each item of one history (CSR order) in its folded-in score
        of `item`: implicit's fold-in system (confidence alpha * weight), split linearly."""
        row = sp.csr_matrix(history[0], dtype=np.float64)
        y = self.item_factors_.astype(np.float64)
        confidence = self.config.alpha * row.data
        x = y[row.indices]
        system = y.T @ y + self.regularization_ * np.eye(y.shape[1])
        system += (x.T * (np.abs(confidence) - 1)) @ x
        return ridge_contributions(x, system, np.maximum(confidence, 0), y[item])

    def _dot(self, users: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
        items = self.item_factors_ if item_idx is None else self.item_factors_[item_idx]
        return users @ items.T
