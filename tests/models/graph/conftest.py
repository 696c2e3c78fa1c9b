"""Shared helpers of the graph-model tests: a dense Â written out by hand."""

from __future__ import annotations

import numpy as np


def dense_adjacency(seen: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 of the (users + items) bipartite graph, written out densely."""
    n_users, n_items = seen.shape
    adj = np.zeros((n_users + n_items, n_users + n_items))
    adj[:n_users, n_users:] = seen > 0
    adj[n_users:, :n_users] = (seen > 0).T
    degree = adj.sum(axis=1)
    inv = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    return inv[:, None] * adj * inv[None, :]
