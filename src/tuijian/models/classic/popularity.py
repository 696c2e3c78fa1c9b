"""Non-personalised baselines: most popular items, and seeded random scores."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register

# splitmix64 constants: a cheap, well-mixed integer hash for reproducible random scores.
_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class PopularityConfig(ModelConfig):
    """MostPopular settings: count distinct users per item, or sum their interaction weights."""

    count: Literal["users", "weight"] = "users"


@register("pop")
class MostPopular(Recommender[PopularityConfig]):
    """Scores every item by its training popularity; the same list for every user and history."""

    history_mode = "none"

    state_fields = ("item_scores_",)

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        if self.config.count == "users":
            counts = train.item_popularity
        else:
            counts = np.asarray(train.matrix.sum(axis=0)).ravel()
        self.item_scores_ = counts.astype(np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """The popularity row repeated for each user: (len(user_idx), n_items or len(item_idx))."""
        row = self.item_scores_ if item_idx is None else self.item_scores_[item_idx]
        return np.tile(row, (len(user_idx), 1))

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """The popularity row for every history (what a history holds does not matter)."""
        return self.score(np.zeros(history.shape[0], dtype=np.int64), item_idx)


class RandomConfig(ModelConfig):
    """Random settings: only the seed, which fixes every user's order."""


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@register("random")
class Random(Recommender[RandomConfig]):
    """Uniform random scores, a pure function of (seed, user, item): reproducible and batch-free.

    A given history is scored as one more user (key `n_users`), whatever it holds.
    """

    history_mode = "none"

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        return None

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores in [0, 1) of shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted()
        items = np.arange(self.n_items) if item_idx is None else np.asarray(item_idx)
        seed = _splitmix64(np.array([self.config.seed & _MASK64], dtype=np.uint64))
        users = _splitmix64(np.asarray(user_idx, dtype=np.uint64) ^ seed)
        keys = _splitmix64(users[:, None] ^ items.astype(np.uint64)[None, :])  # (B, I)
        return ((keys >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)).astype(np.float32)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of the key no training user has, for every history."""
        return self.score(np.full(history.shape[0], len(self.users_), dtype=np.int64), item_idx)
