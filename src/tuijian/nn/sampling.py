"""Negative sampling, vectorized: uniform or popularity^alpha, each user's positives excluded."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tuijian.errors import DataError


class NegativeSampler:
    """Draws items a user never interacted with, exactly (rejected draws are redrawn).

    Args:
        positives: users x items CSR whose stored entries are each user's positives.
        alpha: 0 for uniform; otherwise items are drawn with probability ~ popularity^alpha.
    """

    def __init__(self, positives: sp.csr_matrix, alpha: float = 0.0) -> None:
        pos = sp.csr_matrix(positives, dtype=np.float32)
        pos.sum_duplicates()
        pos.sort_indices()
        self.n_users, self.n_items = pos.shape
        counts = np.diff(pos.indptr)
        if (counts >= self.n_items).any():
            user = int(np.argmax(counts >= self.n_items))
            raise DataError(f"user index {user} interacted with every item: no negative exists")
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        self._keys = rows * self.n_items + pos.indices.astype(np.int64)  # sorted
        self.alpha = alpha
        self._cdf: np.ndarray | None = None
        if alpha:
            weight = np.bincount(pos.indices, minlength=self.n_items).astype(np.float64) ** alpha
            if weight.sum() == 0:
                weight[:] = 1.0
            self._cdf = np.cumsum(weight) / weight.sum()
            self._cdf[-1] = 1.0

    def _draw(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self._cdf is None:
            return rng.integers(0, self.n_items, size=size, dtype=np.int64)
        return np.searchsorted(self._cdf, rng.random(size=size), side="right").astype(np.int64)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: is `items[...]` a positive of the matching `users[...]`."""
        if len(self._keys) == 0:
            return np.zeros(np.shape(items), dtype=bool)
        query = users * self.n_items + items
        pos = np.searchsorted(self._keys, query)
        return self._keys[np.minimum(pos, len(self._keys) - 1)] == query

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n) negatives; never a positive of that user."""
        users = np.asarray(users, dtype=np.int64)
        out = self._draw((len(users), n), rng)
        u = np.broadcast_to(users[:, None], out.shape)
        bad = np.flatnonzero(self.is_positive(u, out))
        flat, uflat = out.reshape(-1), u.reshape(-1)
        while bad.size:
            flat[bad] = self._draw(bad.size, rng)
            bad = bad[self.is_positive(uflat[bad], flat[bad])]
        return out
