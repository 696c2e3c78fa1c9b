"""EASE: the closed-form shallow autoencoder of Steck (2019), B = I - P / diag(P)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import DataError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register


class EASEConfig(ModelConfig):
    """EASE settings: L2 strength, and the catalogue size above which the dense inverse refuses."""

    l2: float = Field(500.0, gt=0)
    max_items: int = Field(30_000, gt=0)


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """Item-item weights from a float64 Gram matrix X^T X: B = I - P / diag(P), diag(B) = 0."""
    gram = gram.copy()
    gram[np.diag_indices_from(gram)] += l2
    precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)  # P, (I, I)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


@register("ease")
class EASE(Recommender[EASEConfig]):
    """Scores items as the user's row times a dense item-item weight matrix with zero diagonal.

    History-native: a history given at call time is scored exactly as a training row.
    """

    history_mode = "native"

    state_fields = ("item_weights_",)
    test_config: ClassVar[dict[str, Any]] = {"l2": 5.0}

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        n_items = train.n_items
        if n_items > self.config.max_items:
            raise DataError(
                f"{train.name}: EASE needs a dense {n_items} x {n_items} inverse, over "
                f"max_items={self.config.max_items}; use itemknn or als, or raise max_items"
            )
        matrix = train.matrix.astype(np.float64)
        gram = (matrix.T @ matrix).toarray()  # (I, I)
        self.item_weights_ = ease_weights(gram, self.config.l2).astype(np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """User rows @ B, shape (len(user_idx), n_items or len(item_idx))."""
        return self.score_history(self.user_items_[user_idx], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """History rows @ B, shape (Q, n_items or len(item_idx))."""
        weights = self.item_weights_ if item_idx is None else self.item_weights_[:, item_idx]
        return np.asarray(history @ weights, dtype=np.float32)
