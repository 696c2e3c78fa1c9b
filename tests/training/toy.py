"""A tiny torch recommender (not registered) that exercises every part of the Trainer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from tuijian.data import Dataset
from tuijian.models.neural import TorchConfig, TorchRecommender

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ToyConfig(TorchConfig):
    """Toy settings: embedding size, a loss multiplier and a batch that turns the loss NaN."""

    embedding_size: int = 4
    loss_scale: float = 1.0
    nan_at_batch: int | None = None


class ToyNet(nn.Module):
    """User and item tables; `forward` gives the logits of positive and negative pairs."""

    def __init__(self, n_users: int, n_items: int, size: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, size)
        self.item = nn.Embedding(n_items, size)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=0.1)

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        u = self.user(users)
        return torch.cat([(u * self.item(pos)).sum(-1), (u * self.item(neg)).sum(-1)])


class ToyMF(TorchRecommender[ToyConfig]):
    """Dot-product MF trained with BCE on each positive and one uniform random item."""

    def build_module(self) -> ToyNet:
        return ToyNet(len(self.users_), len(self.items_), self.config.embedding_size)

    def prepare_data(self, train: Dataset) -> None:
        pairs = self.seen_.tocoo()
        self._users, self._items = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
        self._n_batches = 0

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Batch]:
        order = rng.permutation(len(self._users))
        negatives = rng.integers(0, len(self.items_), size=len(order))
        for lo in range(0, len(order), self.config.batch_size):
            rows = order[lo : lo + self.config.batch_size]
            yield (
                torch.from_numpy(self._users[rows]),
                torch.from_numpy(self._items[rows]),
                torch.from_numpy(negatives[lo : lo + len(rows)]),
            )

    def compute_loss(self, batch: Batch) -> torch.Tensor:
        users, pos, neg = batch
        logits = self.module_(users, pos, neg)
        labels = torch.cat([torch.ones(len(users)), torch.zeros(len(users))])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self._n_batches += 1
        if self.config.nan_at_batch is not None and self._n_batches > self.config.nan_at_batch:
            loss = loss * float("nan")
        return loss * self.config.loss_scale

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        with torch.no_grad():
            items = self.module_.item.weight
            if item_idx is not None:
                items = items[torch.as_tensor(item_idx)]
            return self.module_.user.weight[torch.as_tensor(user_idx)] @ items.T
