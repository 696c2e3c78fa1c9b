"""UserKNN: user-user cosine neighbourhoods with shrinkage, computed per scored batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.models.base import ModelConfig, Recommender, rows_per_batch
from tuijian.models.classic.neighbours import SIM_BUDGET, keep_topk, row_norms, shrunk_cosine
from tuijian.models.registry import register


class UserKNNConfig(ModelConfig):
    """UserKNN settings: neighbourhood size and shrinkage of the cosine."""

    k_neighbors: int = Field(50, gt=0)
    shrink: float = Field(0.0, ge=0)


@register("userknn")
class UserKNN(Recommender):
    """Scores items by the similarity-weighted interactions of the user's nearest users."""

    config_class = UserKNNConfig

    def _fit(self, train: Dataset, *, valid: Dataset | None, trainer: Any) -> None:
        self.user_items_ = train.matrix.astype(np.float32).tocsr()
        self.user_norms_ = row_norms(self.user_items_)

    def neighbours(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """Top-k shrunk-cosine neighbours of each user: a (len(user_idx), n_users) CSR."""
        users = np.asarray(user_idx, dtype=np.int64)
        dots = self.user_items_[users] @ self.user_items_.T  # (B, U), sparse
        norms = self.user_norms_
        sims = shrunk_cosine(dots, norms[users], norms, self.config.shrink, own_columns=users)
        return keep_topk(sims, self.config.k_neighbors)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Neighbour similarities @ their interactions, shape (len(user_idx), n_items or len)."""
        users = np.asarray(user_idx, dtype=np.int64)
        target = self.user_items_ if item_idx is None else self.user_items_[:, item_idx]
        out = np.empty((len(users), target.shape[1]), dtype=np.float32)
        step = rows_per_batch(self.user_items_.shape[0], SIM_BUDGET)
        for start in range(0, len(users), step):
            chunk = users[start : start + step]
            out[start : start + len(chunk)] = (self.neighbours(chunk) @ target).toarray()
        return out
