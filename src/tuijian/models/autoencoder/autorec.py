"""I-AutoRec (Sedhain et al. 2015): an item's ratings by all users, encoded and reconstructed.

    r_i                                     # (U,) ratings of item i, 0 where unobserved
    h = sigmoid(r_i V + mu)                 # (500,)
    r^_i = h W + b                          # (U,) predicted rating of item i by every user
    loss = sum over observed (r_ui - r^_ui)^2 + l2 / 2 (||V||^2 + ||W||^2)

The batch loss is the mean over the batch's observed ratings and the penalty is divided by the
number of training ratings, so `l2` is the paper's lambda. The rows are items here, so scoring
reconstructs every item once (cached until the weights change) and reads each user's column;
users or items without training ratings get the damped baseline mu + b_u + b_i.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.models.autoencoder.base import (
    OutputLayer,
    RowAutoencoder,
    RowAutoencoderConfig,
    RowBatch,
    RowModule,
    SparseInput,
    index_tensor,
    row_batch,
)
from tuijian.models.base import rows_per_batch
from tuijian.models.classic.biased_mf import RatingSource, damped_biases, explicit_ratings
from tuijian.models.registry import register
from tuijian.nn.losses import l2_penalty, mse_loss


class AutoRecConfig(RowAutoencoderConfig):
    """Hidden size, the paper's lambda, baseline damping and which column holds the ratings;
    `batch_size` counts items."""

    hidden_size: int = Field(500, ge=1)
    l2: float = Field(300.0, ge=0)
    damping: float = Field(5.0, ge=0)
    ratings: RatingSource = "rating"
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(100, ge=1)


class AutoRecNet(RowModule):
    """users -> sigmoid hidden layer -> users, identity output."""

    def __init__(self, n_users: int, size: int) -> None:
        super().__init__()
        self.input = SparseInput(n_users, size)
        self.output = OutputLayer(size, n_users)

    def encode(self, batch: RowBatch) -> torch.Tensor:
        return torch.sigmoid(self.input(batch, batch.values))  # (B, H)

    def decode(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(h, cols)  # (B, U) predicted ratings


@register("autorec")
class AutoRec(RowAutoencoder):
    """Item-based AutoRec for explicit ratings; top-k lists rank the reconstructed ratings."""

    config_class = AutoRecConfig
    config: AutoRecConfig
    module_: AutoRecNet
    predicts_ratings = True
    _cache: torch.Tensor | None = None

    def prepare_data(self, train: Dataset) -> None:
        ratings = explicit_ratings(train, self.config.ratings, self.name)  # (U, I)
        self.item_rows_ = sp.csr_matrix(ratings.T)  # (I, U)
        self.item_rows_.sort_indices()
        mean, self.user_bias_, self.item_bias_ = damped_biases(ratings, self.config.damping)
        self.rating_stats_ = np.array(
            [mean, ratings.data.min(), ratings.data.max()], dtype=np.float32
        )
        self._n_observed = ratings.nnz

    def train_rows(self) -> sp.csr_matrix:
        """Items x users ratings: I-AutoRec's examples are items."""
        return self.item_rows_

    def build_module(self) -> AutoRecNet:
        return AutoRecNet(len(self.users_), self.config.hidden_size)

    def compute_loss(self, batch: RowBatch) -> torch.Tensor:
        """Squared error on the observed ratings plus the scaled L2 penalty of both weights."""
        m = self.module_
        with self.autocast():
            pred = m(batch).float()  # (B, U)
        loss = mse_loss(pred, batch.dense, batch.observed())
        return (
            loss + self.config.l2 * l2_penalty(m.input.weight, m.output.weight) / self._n_observed
        )

    def invalidate_cache(self) -> None:
        """Drop the cached reconstruction (the weights changed)."""
        self._cache = None

    def reconstruction(self) -> torch.Tensor:
        """(I, U) predicted ratings of every item by every user (unclipped), computed once."""
        if self._cache is not None:
            return self._cache
        rows = self.item_rows_
        n_items, n_users = rows.shape
        chunks = np.array_split(np.arange(n_items), -(-n_items // rows_per_batch(n_users)))
        with torch.no_grad(), self.autocast():
            full = torch.cat(
                [self.module_(row_batch(rows, c, self.device, dense=False)) for c in chunks]
            ).float()
            rated_item = torch.from_numpy(np.diff(rows.indptr) > 0)  # (I,)
            rated_user = torch.from_numpy(np.bincount(rows.indices, minlength=n_users) > 0)  # (U,)
            known = (rated_item[:, None] & rated_user[None, :]).to(self.device)
            user_bias = torch.from_numpy(self.user_bias_).to(self.device)
            item_bias = torch.from_numpy(self.item_bias_).to(self.device)
            baseline = float(self.rating_stats_[0]) + item_bias[:, None] + user_bias[None, :]
            self._cache = torch.where(known, full, baseline)
        return self._cache

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Predicted ratings, (len(user_idx), n_items or len(item_idx)); a fresh tensor."""
        full = self.reconstruction()  # (I, U)
        block = full.T[index_tensor(user_idx, full.device)]  # (B, I), a new tensor
        return block if item_idx is None else block[:, index_tensor(item_idx, full.device)]

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range."""
        full = self.reconstruction()
        users = index_tensor(user_idx, full.device)
        items = index_tensor(item_idx, full.device)
        _, low, high = self.rating_stats_.tolist()
        pred = full[items, users].clamp(low, high)
        return pred.cpu().numpy().astype(np.float32)
