"""Mult-DAE and Mult-VAE (Liang et al. 2018): click-row autoencoders with a multinomial likelihood.

Both share one network; the VAE's encoder outputs a mean and a log-variance instead of a code:

    x = dropout(x / ||x||)                  # (B, I) user rows, dropout only in training
    h = tanh(x W1 + b1)                     # (B, 600)   (one layer per `hidden_sizes` entry)
    DAE: z = tanh(h W2 + b2)                # (B, 200)
    VAE: mu, logvar = h W2 + b2             # (B, 200) each; z = mu + eps * exp(logvar / 2)
    logits = tanh(z W3 + b3) W4 + b4        # (B, I)
    loss = -sum_i x_i log softmax(logits)_i   (+ beta * KL(N(mu, sigma^2) || N(0, I)) for the VAE)

The VAE's beta grows by 1 / `total_anneal_steps` per batch up to `anneal_cap` (the paper's and
RecBole's 0.2 and 200,000). Scoring uses no dropout and, for the VAE, z = mu.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, overload

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.autoencoder.base import (
    OutputLayer,
    RowAutoencoder,
    RowAutoencoderConfig,
    RowBatch,
    RowModule,
    SparseInput,
    index_tensor,
    l2_normalize,
    row_batch,
)
from tuijian.models.fold_in import binary_history
from tuijian.models.registry import register
from tuijian.nn.losses import kl_normal, softmax_ce_loss


class MultDAEConfig(RowAutoencoderConfig):
    """Encoder layer sizes (mirrored by the decoder), code size and input dropout."""

    hidden_sizes: tuple[int, ...] = Field((600,), min_length=1)
    latent_size: int = Field(200, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class MultVAEConfig(MultDAEConfig):
    """Mult-DAE's settings, the KL weight schedule beta = min(cap, updates / total), and the
    scale of the sampling noise in z = mu + noise_std * eps * sigma, eps ~ N(0, I): 1 is the
    paper; the default 0.01 (RecBole's) ranked better on ml-100k and ml-1m
    (docs/benchmarks/defaults.md)."""

    anneal_cap: float = Field(0.2, ge=0)
    total_anneal_steps: int = Field(200_000, ge=0)
    noise_std: float = Field(0.01, ge=0)


def anneal_beta(step: int, cap: float, total_steps: int) -> float:
    """KL weight after `step` updates: min(cap, step / total_steps); `cap` when total is 0."""
    if total_steps == 0:
        return cap
    return min(cap, step / total_steps)


def _linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MultNet(RowModule):
    """The encoder/decoder of Mult-DAE (`variational=False`) and Mult-VAE (`variational=True`)."""

    def __init__(
        self,
        n_items: int,
        hidden_sizes: tuple[int, ...],
        latent_size: int,
        dropout: float,
        variational: bool,
    ) -> None:
        super().__init__()
        self.variational = variational
        self.latent_size = latent_size
        self.dropout = nn.Dropout(dropout)
        self.input = SparseInput(n_items, hidden_sizes[0])
        self.encoder = nn.ModuleList(_linear(a, b) for a, b in itertools.pairwise(hidden_sizes))
        self.to_latent = _linear(hidden_sizes[-1], latent_size * (2 if variational else 1))
        back = (latent_size, *reversed(hidden_sizes))
        self.decoder = nn.ModuleList(_linear(a, b) for a, b in itertools.pairwise(back))
        self.output = OutputLayer(hidden_sizes[0], n_items)

    def _top(self, batch: RowBatch) -> torch.Tensor:
        values = self.dropout(l2_normalize(batch))  # (nnz,)
        h = torch.tanh(self.input(batch, values))  # (B, H1)
        for layer in self.encoder:
            h = torch.tanh(layer(h))
        return self.to_latent(h)  # (B, Z) or (B, 2Z)

    def posterior(self, batch: RowBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (B, Z) (VAE only)."""
        out = self._top(batch)
        return out[:, : self.latent_size], out[:, self.latent_size :]

    def encode(self, batch: RowBatch) -> torch.Tensor:
        if self.variational:
            return self.posterior(batch)[0]
        return torch.tanh(self._top(batch))

    def decode(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.decoder:
            h = torch.tanh(layer(h))
        return self.output(h, cols)

    @overload
    def forward(self, batch: RowBatch, cols: torch.Tensor | None = None) -> torch.Tensor: ...

    @overload
    def forward(
        self, batch: RowBatch, cols: torch.Tensor | None = None, *, noise_std: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def forward(
        self, batch: RowBatch, cols: torch.Tensor | None = None, *, noise_std: float | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (B, I) of decode(encode(batch)); with `noise_std` (the VAE's training pass)
        the logits of a sampled z = mu + noise_std * eps * sigma, and mu and logvar (B, Z)."""
        if noise_std is None:
            return self.decode(self.encode(batch), cols)
        mu, logvar = self.posterior(batch)  # (B, Z) each
        eps = torch.randn_like(mu) * noise_std
        return self.decode(mu + eps * torch.exp(0.5 * logvar), cols), mu, logvar


MultConfigT = TypeVar("MultConfigT", bound=MultDAEConfig)


class _MultAutoencoder(RowAutoencoder[MultConfigT]):
    """What Mult-DAE and Mult-VAE share: the network, built from the config.

    History-native: a new history is encoded like a training row (its items as a 0/1 row).
    """

    history_mode = "native"

    module_: MultNet
    test_config: ClassVar[dict[str, Any]] = {
        "hidden_sizes": (16,),
        "latent_size": 8,
        "epochs": 20,
        "lr": 0.02,
    }
    variational: ClassVar[bool] = False

    def build_module(self) -> MultNet:
        cfg = self.config
        return MultNet(
            len(self.items_), cfg.hidden_sizes, cfg.latent_size, cfg.dropout, self.variational
        )

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Reconstruction logits of the histories' 0/1 rows (binarized as `seen_` is), so a
        training row scores exactly as `score` scores its user: (Q, n_items or len(item_idx))."""
        rows = binary_history(history)
        batch = row_batch(rows, np.arange(rows.shape[0]), self.device, dense=False)
        cols = None if item_idx is None else index_tensor(item_idx, self.device)
        with torch.no_grad(), self.autocast():
            return self.module_(batch, cols).float()


@register("multdae")
class MultDAE(_MultAutoencoder[MultDAEConfig]):
    """Mult-DAE: a denoising autoencoder of click rows trained with the multinomial likelihood."""

    def compute_loss(self, batch: RowBatch) -> torch.Tensor:
        """-sum_i x_i log softmax(f(dropout(x)))_i, averaged over the batch's users."""
        with self.autocast():
            logits = self.module_(batch)  # (B, I)
        return softmax_ce_loss(logits.float(), batch.dense)


@register("multvae")
class MultVAE(_MultAutoencoder[MultVAEConfig]):
    """Mult-VAE: the variational sibling, with a KL term whose weight is annealed per batch."""

    variational = True
    n_updates: int = 0  # optimizer steps taken in the current fit: drives the KL annealing

    def prepare_data(self, train: Dataset) -> None:
        self.n_updates = 0

    @property
    def beta(self) -> float:
        """The KL weight of the next batch."""
        return anneal_beta(self.n_updates, self.config.anneal_cap, self.config.total_anneal_steps)

    def compute_loss(self, batch: RowBatch) -> torch.Tensor:
        """Multinomial negative log-likelihood of a sampled z plus beta * KL, per-user mean."""
        with self.autocast():
            logits, mu, logvar = self.module_(batch, noise_std=self.config.noise_std)  # (B, I)
        loss = softmax_ce_loss(logits.float(), batch.dense)
        loss = loss + self.beta * kl_normal(mu.float(), logvar.float())
        self.n_updates += 1
        return loss

    def training_state(self) -> dict[str, Any]:
        """The KL-annealing step counter: a resumed run continues beta where it stopped."""
        return {"n_updates": self.n_updates}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Restore `n_updates` from a checkpoint."""
        self.n_updates = int(state["n_updates"])
