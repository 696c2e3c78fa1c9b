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

from typing import Any, ClassVar, Literal, overload

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
from tuijian.models.fold_in import ridge_users
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

    @overload
    def forward(self, batch: RowBatch, cols: torch.Tensor | None = None) -> torch.Tensor: ...

    @overload
    def forward(
        self, batch: RowBatch, cols: torch.Tensor | None = None, *, with_weights: Literal[True]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]: ...

    def forward(
        self, batch: RowBatch, cols: torch.Tensor | None = None, *, with_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Predicted ratings (B, U); `with_weights` (training) also returns the encoder and
        decoder weights (U, H) and (U, H), which the L2 penalty reads."""
        pred = self.decode(self.encode(batch), cols)
        return (pred, (self.input.weight, self.output.weight)) if with_weights else pred


@register("autorec")
class AutoRec(RowAutoencoder[AutoRecConfig]):
    """Item-based AutoRec for explicit ratings; top-k lists rank the reconstructed ratings.

    A new history (its values read as ratings) is a new user column: its output row [w_u, b_u]
    is folded in by ridge regression on the fixed item codes (see `score_history`).
    """

    history_mode = "fold_in"

    state_fields = (
        "item_rows_", "user_bias_", "item_bias_", "rating_mean_", "rating_min_", "rating_max_"
    )  # fmt: skip
    test_config: ClassVar[dict[str, Any]] = {"hidden_size": 8, "epochs": 2, "ratings": "weight"}
    module_: AutoRecNet
    predicts_ratings = True
    _cache: torch.Tensor | None = None

    def prepare_data(self, train: Dataset) -> None:
        """Item rows of ratings and damped biases; histories hold ratings here."""
        ratings = explicit_ratings(train, self.config.ratings, self.name)  # (U, I)
        self.user_items_ = ratings
        self.item_rows_ = sp.csr_matrix(ratings.T)  # (I, U)
        self.item_rows_.sort_indices()
        mean, self.user_bias_, self.item_bias_ = damped_biases(ratings, self.config.damping)
        self.rating_mean_ = float(np.float32(mean))
        self.rating_min_ = float(ratings.data.min())
        self.rating_max_ = float(ratings.data.max())
        self._n_observed = ratings.nnz

    def train_rows(self) -> sp.csr_matrix:
        """Items x users ratings: I-AutoRec's examples are items."""
        return self.item_rows_

    def build_module(self) -> AutoRecNet:
        return AutoRecNet(len(self.users_), self.config.hidden_size)

    def compute_loss(self, batch: RowBatch) -> torch.Tensor:
        """Squared error on the observed ratings plus the scaled L2 penalty of both weights."""
        with self.autocast():
            pred, weights = self.module_(batch, with_weights=True)  # (B, U)
        loss = mse_loss(pred.float(), batch.dense, batch.observed())
        return loss + self.config.l2 * l2_penalty(*weights) / self._n_observed

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
            baseline = self.rating_mean_ + item_bias[:, None] + user_bias[None, :]
            self._cache = torch.where(known, full, baseline)
        return self._cache

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Predicted ratings, (len(user_idx), n_items or len(item_idx)); a fresh tensor."""
        full = self.reconstruction()  # (I, U)
        block = full.T[index_tensor(user_idx, full.device)]  # (B, I), a new tensor
        return block if item_idx is None else block[:, index_tensor(item_idx, full.device)]

    def item_codes(self) -> torch.Tensor:
        """(I, H) hidden codes h_i of every item's training ratings (what the decoder reads)."""
        rows = self.item_rows_
        n_items, n_users = rows.shape
        chunks = np.array_split(np.arange(n_items), -(-n_items // rows_per_batch(n_users)))
        with torch.no_grad(), self.autocast():
            codes = [
                self.module_.encode(row_batch(rows, c, self.device, dense=False)) for c in chunks
            ]
            return torch.cat(codes).float()

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Predicted ratings of new users (Q, n_items or len(item_idx)): a new output column.

        With the item codes h_i fixed, [w_u, b_u] is the ridge regression h_i . w_u + b_u ~=
        r_ui over the history (l2 / 2 on w_u, the paper's penalty); items nobody rated in
        training get the damped baseline mu + b_u + b_i, b_u from the history.
        """
        hist = sp.csr_matrix(history, dtype=np.float32)
        hist.sort_indices()
        codes = self.item_codes()  # (I, H)
        features = torch.cat([codes, torch.ones_like(codes[:, :1])], dim=1)  # (I, H + 1)
        size = codes.shape[1]
        ridge = torch.full((size + 1,), self.config.l2 / 2, device=codes.device)
        ridge[-1] = 1e-4  # the bias is not penalised in training; keep the system definite
        ones = np.ones(hist.nnz, dtype=np.float32)
        with torch.no_grad():
            user = ridge_users(hist, features, torch.diag(ridge), ones, hist.data)  # (Q, H + 1)
            item_bias = torch.from_numpy(self.item_bias_).to(codes.device)
            resid = hist.data - self.rating_mean_ - self.item_bias_[hist.indices]
            user_bias = np.bincount(
                np.repeat(np.arange(hist.shape[0]), np.diff(hist.indptr)),
                weights=resid,
                minlength=hist.shape[0],
            ) / (np.diff(hist.indptr) + self.config.damping)
            user_bias = torch.from_numpy(user_bias.astype(np.float32)).to(codes.device)
            rated = torch.from_numpy(np.diff(self.item_rows_.indptr) > 0).to(codes.device)
            if item_idx is not None:
                sel = index_tensor(item_idx, codes.device)
                codes, item_bias, rated = codes[sel], item_bias[sel], rated[sel]
            pred = codes @ user[:, :-1].T + user[:, -1]  # (n, Q)
            baseline = self.rating_mean_ + item_bias[:, None] + user_bias[None, :]
            return torch.where(rated[:, None], pred, baseline).T.contiguous()

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range."""
        full = self.reconstruction()
        users = index_tensor(user_idx, full.device)
        items = index_tensor(item_idx, full.device)
        pred = full[items, users].clamp(self.rating_min_, self.rating_max_)
        return pred.cpu().numpy().astype(np.float32)
