"""Models whose score is a dot product of a query vector with an item vector.

Such a model can hand its item vectors to a vector index (faiss, in the service) and compute
one vector per query (a known user's learned vector, or a history folded in), so the top-k of a
large catalogue is a nearest-neighbour search instead of a full scoring pass. Fold-in models
that solve a ridge system also split a score into exact per-history-item contributions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp
import torch

from tuijian.models.query import QueryBatch


def as_array(vectors: np.ndarray | torch.Tensor) -> np.ndarray:
    """C-contiguous float32 NumPy of a CPU or device tensor (or an array)."""
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)


class DotProduct(ABC):
    """Mixin of a `Recommender` scoring `query_vector @ item_vector` (an ABC, so a model that
    lacks one of its methods fails at construction, not with a None at serving time)."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """(n_items, D) float32 item vectors."""

    @abstractmethod
    def query_vectors(self, queries: QueryBatch) -> np.ndarray:
        """(Q, D) float32 vector of each query; rows of empty queries are not used (their
        list is the popularity fallback)."""


class FactorVectors(DotProduct):
    """A `DotProduct` with learned user vectors and a fold-in for any other history (ALS,
    BPR-MF, the graph models)."""

    @abstractmethod
    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """(len(user_idx), D) float32 vectors of known users with their training history."""

    @abstractmethod
    def fold_in(self, history: sp.csr_matrix) -> np.ndarray | torch.Tensor:
        """(Q, D) vectors of histories given at call time (item side fixed)."""

    def query_vectors(self, queries: QueryBatch) -> np.ndarray:
        """(Q, D) float32 vector of each query: its user's learned vector when the history is
        exactly the training one, the folded-in history otherwise; zeros for empty queries
        (their list is the popularity fallback)."""
        empty = queries.empty
        own = queries.own_history & ~empty
        given = ~own & ~empty
        out = np.zeros((len(queries), self.item_vectors().shape[1]), dtype=np.float32)
        if own.any():
            out[own] = self.user_vectors(queries.user_idx[own])
        if given.any():
            out[given] = as_array(self.fold_in(queries.history[given]))
        return out


def ridge_contributions(
    features: np.ndarray, system: np.ndarray, rhs_weights: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Exact split of `target @ p` with `system @ p = sum_j rhs_weights[j] * features[j]`.

    For a fixed system matrix the folded-in vector is linear in the history's right-hand side,
    so history item j contributes `rhs_weights[j] * features[j] @ solve(system, target)`; the
    contributions sum to the score.
    """
    z = np.linalg.solve(system.astype(np.float64), target.astype(np.float64))
    return (rhs_weights * (features.astype(np.float64) @ z)).astype(np.float32)
