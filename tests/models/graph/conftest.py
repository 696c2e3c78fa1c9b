"""Shared fixtures of the graph-model tests: the synthetic shop split and a dense Â."""

from __future__ import annotations

import numpy as np
import pytest

from tuijian.data import PrepareConfig, Split, prepare, random_split
from tuijian.data.synthetic import shop_dataset

WEIGHTS = {"view": 1.0, "cart": 3.0, "buy": 5.0}


def dense_adjacency(seen: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 of the (users + items) bipartite graph, written out densely."""
    n_users, n_items = seen.shape
    adj = np.zeros((n_users + n_items, n_users + n_items))
    adj[:n_users, n_users:] = seen > 0
    adj[n_users:, :n_users] = (seen > 0).T
    degree = adj.sum(axis=1)
    inv = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    return inv[:, None] * adj * inv[None, :]


@pytest.fixture(scope="session")
def shop() -> Split:
    """The tiny synthetic shop, event-weighted, split 8:1:1 at random."""
    frame, _ = prepare(shop_dataset("tiny").interactions, PrepareConfig(event_weights=WEIGHTS))
    return random_split(frame, seed=0)
