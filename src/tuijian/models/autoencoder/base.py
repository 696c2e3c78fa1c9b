"""Row autoencoders: models that read one row of an interaction matrix and reconstruct it.

Mult-DAE / Mult-VAE and CDAE read a user's row of items; I-AutoRec reads an item's row of user
ratings. What they share lives here:

- batches are rows: a permutation of the non-empty rows, `batch_size` rows per batch, each batch
  one CSR slice turned into tensors (`RowBatch`): the stored entries feed the encoder and the
  dense (B, n_cols) copy is the reconstruction target;
- the first layer reads only the stored entries of a row (`SparseInput`: a sum of weight rows,
  as `x @ W` would give, at a cost of nnz x width instead of B x n_cols x width);
- the last layer can decode onto a subset of columns (`OutputLayer`), so candidate scoring
  costs only the candidates;
- `score` reconstructs each user's training row in one batched forward pass.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.neural import TorchConfig, TorchRecommender


@dataclass(frozen=True)
class RowBatch:
    """Rows of a sparse matrix as tensors: stored entries for the encoder, dense for the loss."""

    rows: torch.Tensor  # (B,) row indices in the source matrix (users, or items for I-AutoRec)
    offsets: torch.Tensor  # (B,) start of each row's entries in `cols` / `values`
    row_of: torch.Tensor  # (nnz,) batch position of each stored entry
    cols: torch.Tensor  # (nnz,) column of each stored entry
    values: torch.Tensor  # (nnz,) value of each stored entry
    dense: torch.Tensor | None  # (B, n_cols) the same rows, dense; None when only scoring

    def __len__(self) -> int:
        return len(self.rows)

    def observed(self) -> torch.Tensor:
        """(B, n_cols) 0/1 mask of the stored entries (the observed ratings of AutoRec)."""
        assert self.dense is not None
        mask = torch.zeros_like(self.dense)
        mask[self.row_of, self.cols] = 1.0
        return mask


def index_tensor(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """An int64 tensor on `device` holding a copy of `values` (safe for read-only arrays)."""
    return torch.from_numpy(np.array(values, dtype=np.int64)).to(device)


def row_batch(
    matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device, *, dense: bool = True
) -> RowBatch:
    """Slice `rows` out of a CSR matrix into a `RowBatch` (one vectorized slice, no row loop)."""
    sub = matrix[rows]
    counts = np.diff(sub.indptr)
    return RowBatch(
        rows=index_tensor(rows, device),
        offsets=index_tensor(sub.indptr[:-1], device),
        row_of=index_tensor(np.repeat(np.arange(len(rows)), counts), device),
        cols=index_tensor(sub.indices, device),
        values=torch.from_numpy(sub.data.astype(np.float32)).to(device),
        dense=torch.from_numpy(sub.toarray().astype(np.float32)).to(device) if dense else None,
    )


def l2_normalize(batch: RowBatch, values: torch.Tensor | None = None) -> torch.Tensor:
    """The stored values of each row divided by that row's Euclidean norm (Mult-VAE input)."""
    values = batch.values if values is None else values
    squares = torch.zeros(len(batch), dtype=values.dtype, device=values.device)
    squares.index_add_(0, batch.row_of, values * values)
    return values / squares.sqrt().clamp_min(1e-12)[batch.row_of]


class SparseInput(nn.Module):
    """`x @ W + b` for sparse rows x: the weight rows of the stored entries, scaled and summed."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))  # (n_cols, H)
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, batch: RowBatch, values: torch.Tensor) -> torch.Tensor:
        """(B, H) for the batch's rows, with `values` (nnz,) in place of the stored values."""
        out = F.embedding_bag(
            batch.cols, self.weight, batch.offsets, mode="sum", per_sample_weights=values
        )
        return out + self.bias


class OutputLayer(nn.Linear):
    """The decoder's last linear layer, optionally restricted to a subset of output columns."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_out) logits, or (B, len(cols)) for only those columns."""
        if cols is None:
            return F.linear(h, self.weight, self.bias)
        return F.linear(h, self.weight[cols], self.bias[cols])


class RowModule(nn.Module):
    """An autoencoder over rows: `encode` a RowBatch to (B, H), `decode` to (B, n_cols)."""

    @abstractmethod
    def encode(self, batch: RowBatch) -> torch.Tensor:
        """(B, H) code of the rows; deterministic in eval mode (no dropout, the mean for VAEs)."""

    @abstractmethod
    def decode(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_cols) reconstruction logits, or only the columns `cols`."""

    def forward(self, batch: RowBatch, cols: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction logits of the batch's rows: decode(encode(batch))."""
        return self.decode(self.encode(batch), cols)


class RowAutoencoderConfig(TorchConfig):
    """Training settings of row autoencoders: `batch_size` counts rows (users), not pairs."""

    batch_size: int = Field(500, ge=1)


RowConfigT = TypeVar("RowConfigT", bound=RowAutoencoderConfig)


class RowAutoencoder(TorchRecommender[RowConfigT]):
    """A TorchRecommender that learns to reconstruct rows of the user x item matrix.

    Subclasses build a `RowModule` and define `compute_loss`; the rows default to the binary
    users x items matrix of training (`seen_`), and `score` is the reconstruction of each
    user's training row. Rows with no stored entry are never drawn for training.

    The run's precision `"bf16"` (`Trainer(precision="bf16")`) runs the matrix products in
    bfloat16 (autocast; weights, losses and the returned scores stay float32), in training and
    in scoring after it (the precision is saved with the model): about twice as fast on CPUs
    with native bfloat16 (AVX-512 BF16, AMX) and on GPUs, much slower on CPUs without it.
    """

    module_: RowModule
    precisions = ("fp32", "bf16")

    def autocast(self) -> torch.autocast:
        """The mixed-precision context of forward passes (a no-op with precision fp32)."""
        bf16 = self.precision_ == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def train_rows(self) -> sp.csr_matrix:
        """The matrix whose rows are the training examples (users x items of training)."""
        return self.seen_

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[RowBatch]:
        """One epoch: a permutation of the non-empty rows, `batch_size` rows per batch."""
        matrix = self.train_rows()
        order = rng.permutation(np.flatnonzero(np.diff(matrix.indptr) > 0))
        size = self.config.batch_size
        for start in range(0, len(order), size):
            yield self.make_batch(matrix, order[start : start + size], rng)

    def make_batch(
        self, matrix: sp.csr_matrix, rows: np.ndarray, rng: np.random.Generator
    ) -> RowBatch:
        """Hook: the training batch of `rows` (subclasses may add sampled negatives)."""
        return row_batch(matrix, rows, self.device)

    def n_batch_samples(self, batch: RowBatch) -> int:
        """Rows in the batch (users, or items for I-AutoRec)."""
        return len(batch)

    @abstractmethod
    def compute_loss(self, batch: RowBatch) -> torch.Tensor:
        """Scalar reconstruction loss of the batch (plus any regularizer)."""

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Reconstruction logits of the users' training rows: (len(user_idx), n_items or items)."""
        batch = row_batch(self.seen_, np.asarray(user_idx), self.device, dense=False)
        cols = None if item_idx is None else index_tensor(item_idx, self.device)
        with torch.no_grad(), self.autocast():
            return self.module_(batch, cols).float()
