"""Negative sampling, vectorized: uniform or popularity^alpha, each user's positives excluded."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tuijian.errors import DataError

# A users x items bit table is used for the positive lookup while it stays under this many bytes;
# beyond it, a binary search over the sorted (user, item) keys takes its place.
BITMAP_BUDGET_BYTES = 64 << 20
# Rejection rounds before the few draws still left are taken from each user's complement.
MAX_REJECTION_ROUNDS = 32


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (keep probability, alias) for drawing index i with p ~ weights[i].

    Built in vectorized rounds: every under-full bucket takes its alias from the over-full
    bucket whose excess interval holds the start of its deficit, so each round settles all
    current under-full buckets and only over-full ones that dropped below 1 carry over.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    scaled = w * (n / w.sum())
    keep = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = np.flatnonzero(scaled < 1.0)
    large = np.flatnonzero(scaled >= 1.0)
    while small.size and large.size:
        deficit = 1.0 - scaled[small]
        starts = np.cumsum(deficit) - deficit  # where each deficit begins on the excess line
        ends = np.cumsum(scaled[large] - 1.0)
        owner = np.minimum(np.searchsorted(ends, starts, side="right"), large.size - 1)
        keep[small] = np.maximum(scaled[small], 0.0)
        alias[small] = large[owner]
        scaled[large] -= np.bincount(owner, weights=deficit, minlength=large.size)
        drained = scaled[large] < 1.0
        small, large = large[drained], large[~drained]
    return keep, alias  # buckets left over (rounding) keep themselves with probability 1


def bit_table(keys: np.ndarray, size: int) -> np.ndarray:
    """Packed bits (little-endian within a byte) with bit `k` set for each sorted unique key."""
    table = np.zeros((size + 7) // 8, dtype=np.uint8)
    if len(keys):
        byte = keys >> 3
        starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        bits = np.left_shift(1, keys & 7).astype(np.uint8)  # distinct bits: sum == or
        table[byte[starts]] = np.add.reduceat(bits, starts)
    return table


class NegativeSampler:
    """Draws items a user never interacted with, exactly (rejected draws are redrawn).

    Args:
        positives: users x items CSR whose stored entries are each user's positives.
        alpha: 0 for uniform; otherwise items are drawn with probability ~ popularity^alpha
            (popularity = number of users with the item among `positives`; items nobody has
            are then never drawn).
    """

    def __init__(self, positives: sp.csr_matrix, alpha: float = 0.0) -> None:
        pos = sp.csr_matrix(positives, dtype=np.float32)
        pos.sum_duplicates()
        pos.sort_indices()
        self.n_users, self.n_items = pos.shape
        self.alpha = float(alpha)
        self.weights = np.ones(self.n_items, dtype=np.float64)
        if self.alpha:
            popularity = np.bincount(pos.indices, minlength=self.n_items).astype(np.float64)
            self.weights = popularity**self.alpha * (popularity > 0)
            if self.weights.sum() == 0:
                self.weights[:] = 1.0
        drawable = self.weights > 0
        counts = np.diff(pos.indptr)
        covered = np.bincount(
            np.repeat(np.arange(self.n_users), counts),
            weights=drawable[pos.indices],
            minlength=self.n_users,
        )
        if (covered >= drawable.sum()).any():
            user = int(np.argmax(covered >= drawable.sum()))
            raise DataError(
                f"user index {user} interacted with every item that can be drawn "
                f"({int(drawable.sum())} items, alpha={self.alpha:g}): no negative exists"
            )
        self._positives = pos
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        keys = rows * self.n_items + pos.indices.astype(np.int64)  # sorted (CSR order)
        self._keys: np.ndarray | None = None
        self._bits: np.ndarray | None = None
        if self.n_users * self.n_items <= 8 * BITMAP_BUDGET_BYTES:
            self._bits = bit_table(keys, self.n_users * self.n_items)
        else:
            self._keys = keys
        self._keep: np.ndarray | None = None
        self._alias: np.ndarray | None = None
        if self.alpha:
            keep, self._alias = alias_table(self.weights)
            self._keep = keep.astype(np.float32)

    @property
    def probabilities(self) -> np.ndarray:
        """Probability of each item per draw before exclusion (the target distribution)."""
        return self.weights / self.weights.sum()

    def _draw(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        bucket = rng.integers(0, self.n_items, size=size, dtype=np.int64)
        if self._keep is None or self._alias is None:
            return bucket
        coin = rng.random(size=size, dtype=np.float32)
        return np.where(coin < self._keep[bucket], bucket, self._alias[bucket])

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: is `items[...]` a positive of the matching `users[...]`."""
        query = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, np.int64)
        if self._bits is not None:
            return ((self._bits[query >> 3] >> (query & 7).astype(np.uint8)) & 1).astype(bool)
        assert self._keys is not None
        if len(self._keys) == 0:
            return np.zeros(query.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._keys, query), len(self._keys) - 1)
        return self._keys[pos] == query

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n) negatives; never a positive of that user."""
        users = np.asarray(users, dtype=np.int64)
        out = self._draw((len(users), n), rng)
        flat = out.reshape(-1)
        owner = np.repeat(users, n)
        bad = np.flatnonzero(self.is_positive(owner, flat))
        for _ in range(MAX_REJECTION_ROUNDS):
            if not bad.size:
                return out
            flat[bad] = self._draw(bad.size, rng)
            bad = bad[self.is_positive(owner[bad], flat[bad])]
        self._draw_from_complement(flat, owner, bad, rng)
        return out

    def _draw_from_complement(
        self, flat: np.ndarray, owner: np.ndarray, bad: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Fill `flat[bad]` from each user's non-positive items directly (very dense users).

        Same distribution as rejection (the weights restricted to the complement), but it
        loops over the few users still left after `MAX_REJECTION_ROUNDS` rounds.
        """
        for user in np.unique(owner[bad]):
            slots = bad[owner[bad] == user]
            start, end = self._positives.indptr[user], self._positives.indptr[user + 1]
            weights = self.weights.copy()
            weights[self._positives.indices[start:end]] = 0.0
            flat[slots] = rng.choice(self.n_items, size=slots.size, p=weights / weights.sum())


def positive_pairs(
    positives: sp.csr_matrix, how: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of (user, positive item) pairs, as many as `positives` stores.

    `how="pairs"` yields every stored pair once, shuffled; `how="users"` draws each pair's user
    uniformly among users with a positive and then one of that user's items (the sampler of the
    LightGCN and NGCF authors' code), which weighs every user equally instead of every pair.
    """
    indptr = positives.indptr
    if how == "pairs":
        order = rng.permutation(positives.nnz)
        users = np.repeat(np.arange(positives.shape[0], dtype=np.int64), np.diff(indptr))
        return users[order], positives.indices[order].astype(np.int64)
    if how != "users":
        raise DataError(f"unknown positive sampling {how!r}; use 'pairs' or 'users'")
    active = np.flatnonzero(np.diff(indptr) > 0)
    users = active[rng.integers(0, len(active), positives.nnz)]
    degree = indptr[users + 1] - indptr[users]
    slot = indptr[users] + (rng.random(positives.nnz) * degree).astype(np.int64)
    return users.astype(np.int64), positives.indices[slot].astype(np.int64)
