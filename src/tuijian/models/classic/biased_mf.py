"""Biased matrix factorisation for explicit ratings (Koren, Bell, Volinsky 2009).

    r(u, i) = mu + b_u + b_i + p_u . q_i

fitted by minibatch Adam on the squared error of the observed ratings, with L2 on the batch's
factors and biases. Also home of the helpers every rating model shares: which values it fits
(`explicit_ratings`) and the damped baseline used to fill users or items without ratings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.errors import DataError
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.registry import register
from tuijian.nn.losses import l2_penalty, mse_loss

RatingSource = Literal["rating", "weight"]


def explicit_ratings(train: Dataset, source: RatingSource, model: str) -> sp.csr_matrix:
    """Users x items CSR of the values a rating model fits: the `rating` column or the weights."""
    if source == "weight":
        matrix = train.matrix
    elif not train.has_ratings:
        raise DataError(
            f"{train.name}: {model} needs a {Columns.rating!r} column (explicit ratings); "
            "keep it when preparing the data, or set ratings='weight' to fit the weights"
        )
    else:
        matrix = train.rating_matrix
    out = sp.csr_matrix(matrix, dtype=np.float32)
    out.sort_indices()
    return out


def damped_biases(ratings: sp.csr_matrix, damping: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean and user / item offsets, each shrunk toward 0 by `damping` pseudo-ratings.

    b_i = sum_u (r_ui - mu) / (n_i + damping), then b_u = sum_i (r_ui - mu - b_i) / (n_u + damping).
    """
    coo = ratings.tocoo()
    mu = float(coo.data.mean())
    n_users, n_items = ratings.shape
    item_n = np.bincount(coo.col, minlength=n_items)
    item_bias = np.bincount(coo.col, coo.data - mu, minlength=n_items) / (item_n + damping)
    resid = coo.data - mu - item_bias[coo.col]
    user_n = np.bincount(coo.row, minlength=n_users)
    user_bias = np.bincount(coo.row, resid, minlength=n_users) / (user_n + damping)
    return mu, user_bias.astype(np.float32), item_bias.astype(np.float32)


class BiasedMFConfig(TorchConfig):
    """Factor size, L2 weight per rating, which column holds the ratings; `batch_size` counts
    ratings."""

    embedding_size: int = Field(64, ge=1)
    l2: float = Field(0.2, ge=0)
    init_std: float = Field(0.01, gt=0)
    ratings: RatingSource = "rating"
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(5e-3, gt=0)


class BiasedMFNet(nn.Module):
    """Global mean (a buffer), user / item biases and factors."""

    def __init__(self, n_users: int, n_items: int, size: int, init_std: float, mean: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.user = nn.Embedding(n_users, size)
        self.item = nn.Embedding(n_items, size)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=init_std)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(N,) predicted ratings of the (user, item) pairs."""
        dot = (self.user(users) * self.item(items)).sum(-1)  # (N,)
        return self.mean + self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0] + dot


@register("biasedmf")
class BiasedMF(TorchRecommender):
    """Rating predictor mu + b_u + b_i + p_u . q_i; top-k lists rank the predicted ratings."""

    config_class = BiasedMFConfig
    config: BiasedMFConfig
    module_: BiasedMFNet
    predicts_ratings = True

    def prepare_data(self, train: Dataset) -> None:
        ratings = explicit_ratings(train, self.config.ratings, self.name).tocoo()
        self._pairs = (
            torch.from_numpy(ratings.row.astype(np.int64)),
            torch.from_numpy(ratings.col.astype(np.int64)),
            torch.from_numpy(ratings.data.astype(np.float32)),
        )
        self.rating_stats_ = np.array(
            [ratings.data.mean(), ratings.data.min(), ratings.data.max()], dtype=np.float32
        )

    def build_module(self) -> BiasedMFNet:
        cfg = self.config
        mean = float(self.rating_stats_[0])
        return BiasedMFNet(
            len(self.users_), len(self.items_), cfg.embedding_size, cfg.init_std, mean
        )

    def batches(
        self, train: Dataset, rng: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """Shuffled (users, items, ratings) batches of `batch_size` ratings."""
        order = torch.from_numpy(rng.permutation(len(self._pairs[0])))
        for start in range(0, len(order), self.config.batch_size):
            take = order[start : start + self.config.batch_size]
            yield tuple(t[take].to(self.device) for t in self._pairs)

    def compute_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Mean squared error plus l2 x half the squared norm of the batch's rows, per rating."""
        users, items, ratings = batch
        m = self.module_
        loss = mse_loss(m(users, items), ratings)
        params = (m.user(users), m.item(items), m.user_bias(users), m.item_bias(items))
        return loss + self.config.l2 * l2_penalty(*params) / len(users)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Predicted ratings (unclipped), (len(user_idx), n_items or len(item_idx))."""
        m = self.module_
        users = torch.from_numpy(np.array(user_idx, dtype=np.int64)).to(self.device)
        items = torch.arange(len(self.items_), device=self.device)
        if item_idx is not None:
            items = torch.from_numpy(np.array(item_idx, dtype=np.int64)).to(self.device)
        with torch.no_grad():
            dot = m.user(users) @ m.item(items).T  # (B, n)
            return dot + m.mean + m.user_bias(users) + m.item_bias(items)[:, 0][None, :]

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range."""
        users = torch.from_numpy(np.array(user_idx, dtype=np.int64)).to(self.device)
        items = torch.from_numpy(np.array(item_idx, dtype=np.int64)).to(self.device)
        with torch.no_grad():
            pred = self.module_(users, items)
        _, low, high = self.rating_stats_.tolist()
        return pred.clamp(low, high).cpu().numpy().astype(np.float32)
