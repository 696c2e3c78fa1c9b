"""UserKNN: user-user cosine neighbourhoods with shrinkage, computed per scored batch."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender, rows_per_batch
from tuijian.models.classic.neighbours import SIM_BUDGET, keep_topk, row_norms, shrunk_cosine
from tuijian.models.registry import register


class UserKNNConfig(ModelConfig):
    """UserKNN settings: neighbourhood size and shrinkage of the cosine."""

    k_neighbors: int = Field(50, gt=0)
    shrink: float = Field(0.0, ge=0)


@register("userknn")
class UserKNN(Recommender[UserKNNConfig]):
    """Scores items by the similarity-weighted interactions of the user's nearest users.

    History-native: a given history finds its nearest training users the same way; a training
    user whose row equals the history is taken to be the query itself, not its neighbour.
    """

    history_mode = "native"

    state_fields = ("user_norms_",)
    test_config: ClassVar[dict[str, Any]] = {"k_neighbors": 4}

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        self.user_norms_ = row_norms(self.user_items_)

    def neighbours(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """Top-k shrunk-cosine neighbours of each user: a (len(user_idx), n_users) CSR."""
        users = np.asarray(user_idx, dtype=np.int64)
        dots = self.user_items_[users] @ self.user_items_.T  # (B, U), sparse
        norms = self.user_norms_
        sims = shrunk_cosine(dots, norms[users], norms, self.config.shrink, own_columns=users)
        return keep_topk(sims, self.config.k_neighbors)

    def history_neighbours(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Top-k shrunk-cosine training neighbours of given histories: a (Q, n_users) CSR."""
        dots = sp.csr_matrix(history @ self.user_items_.T, dtype=np.float32)  # (Q, U)
        norms = row_norms(history)
        # A training row identical to the history (cosine 1, same norm) is the query itself.
        rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
        other = self.user_norms_[dots.indices]
        same = (dots.data >= (1 - 1e-6) * norms[rows] * other) & np.isclose(
            norms[rows], other, rtol=1e-6
        )
        dots.data[same] = 0.0
        dots.eliminate_zeros()
        sims = shrunk_cosine(dots, norms, self.user_norms_, self.config.shrink)
        return keep_topk(sims, self.config.k_neighbors)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Neighbour similarities @ their interactions, shape (len(user_idx), n_items or len)."""
        users = np.asarray(user_idx, dtype=np.int64)
        return self._score_chunks(users, self.neighbours, item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of given histories from their nearest training users, (Q, n_items or len)."""
        history = sp.csr_matrix(history, dtype=np.float32)
        return self._score_chunks(history, self.history_neighbours, item_idx)

    def _score_chunks(self, rows: Any, neighbours: Any, item_idx: np.ndarray | None) -> np.ndarray:
        """neighbours(chunk) @ interactions for chunks of `rows` (user indices or histories)."""
        target = self.user_items_ if item_idx is None else self.user_items_[:, item_idx]
        out = np.empty((rows.shape[0], target.shape[1]), dtype=np.float32)
        step = rows_per_batch(self.user_items_.shape[0], SIM_BUDGET)
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            out[start : start + chunk.shape[0]] = (neighbours(chunk) @ target).toarray()
        return out
