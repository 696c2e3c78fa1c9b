"""Biased matrix factorisation for explicit ratings (Koren, Bell, Volinsky 2009).

    r(u, i) = mu + b_u + b_i + p_u . q_i

fitted by minibatch Adam on the squared error of the observed ratings, with L2 on the batch's
factors and biases. Also home of the helpers every rating model shares: which values it fits
(`explicit_ratings`) and the damped baseline used to fill users or items without ratings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal, overload

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.errors import DataError
from tuijian.models.fold_in import ridge_users
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

    @overload
    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...

    @overload
    def forward(
        self, users: torch.Tensor, items: torch.Tensor, *, with_rows: Literal[True]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]: ...

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, *, with_rows: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """(N,) predicted ratings of the (user, item) pairs; `with_rows` (training) also
        returns the pairs' factor and bias rows, (N, D), (N, D), (N, 1), (N, 1), for the L2
        penalty (looked up again, as separate terms of the gradient)."""
        dot = (self.user(users) * self.item(items)).sum(-1)  # (N,)
        pred = self.mean + self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0] + dot
        if not with_rows:
            return pred
        rows = (self.user(users), self.item(items), self.user_bias(users), self.item_bias(items))
        return pred, rows


@register("biasedmf")
class BiasedMF(TorchRecommender[BiasedMFConfig]):
    """Rating predictor mu + b_u + b_i + p_u . q_i; top-k lists rank the predicted ratings.

    A new history (its values read as ratings) is folded in: [p_u, b_u] is the ridge regression
    of r_ui - mu - b_i onto [q_i, 1] with the item side fixed and the training L2 per rating.
    """

    history_mode = "fold_in"

    state_fields = ("rating_mean_", "rating_min_", "rating_max_")
    test_config: ClassVar[dict[str, Any]] = {"embedding_size": 8, "epochs": 2, "ratings": "weight"}
    module_: BiasedMFNet
    predicts_ratings = True

    def prepare_data(self, train: Dataset) -> None:
        """The (user, item, rating) triples of training; histories hold ratings here."""
        self.user_items_ = explicit_ratings(train, self.config.ratings, self.name)
        ratings = self.user_items_.tocoo()
        self._pairs = (
            torch.from_numpy(ratings.row.astype(np.int64)),
            torch.from_numpy(ratings.col.astype(np.int64)),
            torch.from_numpy(ratings.data.astype(np.float32)),
        )
        self.rating_mean_ = float(np.float32(ratings.data.mean()))
        self.rating_min_ = float(ratings.data.min())
        self.rating_max_ = float(ratings.data.max())

    def build_module(self) -> BiasedMFNet:
        cfg = self.config
        return BiasedMFNet(
            len(self.users_), len(self.items_), cfg.embedding_size, cfg.init_std, self.rating_mean_
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
        pred, rows = self.module_(users, items, with_rows=True)
        loss = mse_loss(pred, ratings)
        return loss + self.config.l2 * l2_penalty(*rows) / len(users)

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

    def fold_in(self, history: sp.csr_matrix) -> torch.Tensor:
        """(Q, D + 1) rows [p_u, b_u] of histories of ratings, item factors and biases fixed.

        The ridge regression of r_ui - mu - b_i onto [q_i, 1] with the training loss's
        penalty: l2 / 2 per rating on ||p_u||^2 + b_u^2.
        """
        m = self.module_
        hist = sp.csr_matrix(history, dtype=np.float32)
        hist.sort_indices()
        with torch.no_grad():
            item_bias = m.item_bias.weight[:, 0]  # (I,)
            features = torch.cat([m.item.weight, torch.ones_like(item_bias)[:, None]], dim=1)
            cols = torch.from_numpy(hist.indices.astype(np.int64)).to(self.device)
            targets = torch.from_numpy(hist.data).to(self.device) - m.mean - item_bias[cols]
            dim = features.shape[1]
            base = torch.zeros((dim, dim), device=self.device)
            ones = np.ones(hist.nnz, dtype=np.float32)
            return ridge_users(
                hist, features, base, ones, targets.cpu().numpy(), self.config.l2 / 2
            )

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Predicted ratings mu + b_u + b_i + p_u . q_i of folded-in users (Q, n or len)."""
        m = self.module_
        items = torch.arange(len(self.items_), device=self.device)
        if item_idx is not None:
            items = torch.from_numpy(np.array(item_idx, dtype=np.int64)).to(self.device)
        with torch.no_grad():
            user = self.fold_in(history)  # (Q, D + 1)
            dot = user[:, :-1] @ m.item(items).T  # (Q, n)
            return dot + m.mean + user[:, -1:] + m.item_bias(items)[:, 0][None, :]

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range."""
        users = torch.from_numpy(np.array(user_idx, dtype=np.int64)).to(self.device)
        items = torch.from_numpy(np.array(item_idx, dtype=np.int64)).to(self.device)
        with torch.no_grad():
            pred = self.module_(users, items)
        return pred.clamp(self.rating_min_, self.rating_max_).cpu().numpy().astype(np.float32)
