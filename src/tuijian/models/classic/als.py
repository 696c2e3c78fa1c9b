"""ALS: implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008) via `implicit` on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field
from threadpoolctl import threadpool_limits

from tuijian.data.dataset import Dataset
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register


class ALSConfig(ModelConfig):
    """ALS settings: factors, L2, confidence scale alpha, sweeps, solver threads (0 = all)."""

    factors: int = Field(64, gt=0)
    regularization: float = Field(0.01, ge=0)
    alpha: float = Field(1.0, gt=0)
    iterations: int = Field(15, gt=0)
    num_threads: int = Field(0, ge=0)


@register("als")
class ALS(Recommender):
    """Scores are dot products of learned user and item factors (U[u] @ V.T)."""

    config_class = ALSConfig

    def _fit(self, train: Dataset, *, valid: Dataset | None, trainer: Any) -> None:
        cfg = self.config
        # implicit parallelises over rows itself; a multi-threaded BLAS underneath only thrashes,
        # and with BLAS held to one thread its start-up check has nothing to warn about.
        with threadpool_limits(limits=1, user_api="blas"):
            solver = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
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
        items = self.item_factors_ if item_idx is None else self.item_factors_[item_idx]
        return self.user_factors_[user_idx] @ items.T
