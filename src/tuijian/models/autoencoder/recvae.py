"""RecVAE (Shenbin et al., WSDM 2020): Mult-VAE with a dense encoder, a composite prior, a
user-dependent KL weight and alternating encoder / decoder updates.

    x = dropout(x / ||x||)                               # (B, I), dropout 0.5 in encoder passes
    h1 = LN(swish(W1 x)), h_k = LN(swish(W_k h_{k-1} + h_1 + ... + h_{k-1}))   k = 2..5, (B, 600)
    mu, logvar = W_mu h5, W_var h5                       # (B, 200) each
    logits = W_d z + b_d                                  # (B, I), one linear decoder
    prior(z | x) = 3/20 N(0, I) + 3/4 q_old(z | x) + 1/10 N(0, e^10 I)
    loss = -sum_i x_i log softmax(logits)_i + gamma |x| (log q(z | x) - log prior(z | x))

q_old is a frozen copy of the encoder taken after each block of encoder passes. One epoch here
is the paper's: `encoder_passes` passes over the users that update only the encoder, the copy,
then `decoder_passes` passes (no dropout) that update only the decoder. The Trainer's single
Adam holds separate moments per parameter and skips those without a gradient, so it acts as
the paper's two optimizers. Scoring decodes z = mu.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
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
from tuijian.nn.losses import softmax_ce_loss

Phase = Literal["encoder", "decoder"]
LAYER_NORM_EPS = 0.1  # the authors' LayerNorm eps


class RecVAEConfig(RowAutoencoderConfig):
    """The paper's settings: 600 hidden, 200 latent, gamma 0.005, lr 5e-4, 3 encoder passes
    per decoder pass; `beta` set replaces the user-dependent weight gamma |x| by a constant;
    `noise_std` scales the sampling noise, z = mu + noise_std * eps * sigma (1: the paper;
    RecBole's RecVAE draws eps with std 0.01)."""

    hidden_size: int = Field(600, ge=1)
    latent_size: int = Field(200, ge=1)
    n_layers: int = Field(5, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    gamma: float = Field(0.005, ge=0)
    beta: float | None = Field(None, ge=0)
    prior_weights: tuple[float, float, float] = (3 / 20, 3 / 4, 1 / 10)
    uniform_logvar: float = 10.0
    encoder_passes: int = Field(3, ge=1)
    decoder_passes: int = Field(1, ge=1)
    noise_std: float = Field(1.0, ge=0)
    lr: float = Field(5e-4, gt=0)
    batch_size: int = Field(500, ge=1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class RecVAEEncoder(nn.Module):
    """Densely connected swish + LayerNorm layers over the normalized sparse row."""

    def __init__(self, n_items: int, hidden: int, latent: int, n_layers: int) -> None:
        super().__init__()
        self.input = SparseInput(n_items, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_layers - 1))
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden, eps=LAYER_NORM_EPS) for _ in range(n_layers)
        )
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, batch: RowBatch, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (B, Z)."""
        values = F.dropout(l2_normalize(batch), p=dropout, training=self.training)
        h = self.norms[0](F.silu(self.input(batch, values)))  # (B, H)
        total = h
        for layer, norm in zip(self.layers, self.norms[1:], strict=True):
            h = norm(F.silu(layer(h) + total))
            total = total + h
        return self.mu(h), self.logvar(h)


class RecVAENet(RowModule):
    """Encoder, its frozen copy for the composite prior, and the linear decoder."""

    def __init__(self, n_items: int, cfg: RecVAEConfig) -> None:
        super().__init__()
        args = (n_items, cfg.hidden_size, cfg.latent_size, cfg.n_layers)
        self.encoder = RecVAEEncoder(*args)
        self.encoder_old = RecVAEEncoder(*args).requires_grad_(False)
        self.decoder = OutputLayer(cfg.latent_size, n_items)
        self.update_prior()

    def update_prior(self) -> None:
        """q_old <- the current encoder (the composite prior's learned part)."""
        self.encoder_old.load_state_dict(self.encoder.state_dict())

    def encode(self, batch: RowBatch) -> torch.Tensor:
        return self.encoder(batch, 0.0)[0]

    def decode(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(h, cols)

    def log_prior(
        self, batch: RowBatch, z: torch.Tensor, weights: tuple[float, ...], uniform_logvar: float
    ) -> torch.Tensor:
        """log of the composite prior density at z, elementwise (B, Z)."""
        with torch.no_grad():
            old_mu, old_logvar = self.encoder_old(batch, 0.0)
        zero = torch.zeros_like(z)
        parts = (
            log_normal(z, zero, zero),
            log_normal(z, old_mu, old_logvar),
            log_normal(z, zero, torch.full_like(z, uniform_logvar)),
        )
        stacked = torch.stack([p + math.log(w) for p, w in zip(parts, weights, strict=True)])
        return torch.logsumexp(stacked, dim=0)


@register("recvae")
class RecVAE(RowAutoencoder[RecVAEConfig]):
    """RecVAE: scores are the decoder's logits at the posterior mean of the history's code.

    History-native: a new history is encoded like a training row (its items as a 0/1 row).
    """

    history_mode = "native"

    module_: RecVAENet
    test_config: ClassVar[dict[str, Any]] = {
        "hidden_size": 16,
        "latent_size": 8,
        "n_layers": 2,
        "epochs": 15,
        "lr": 0.02,
        "encoder_passes": 2,
    }

    def build_module(self) -> RecVAENet:
        return RecVAENet(len(self.items_), self.config)

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[tuple[RowBatch, Phase]]:
        """One RecVAE epoch: encoder passes, the prior's copy, then decoder passes."""
        cfg = self.config
        for _ in range(cfg.encoder_passes):
            for batch in super().batches(train, rng):
                yield batch, "encoder"
        self.module_.update_prior()  # after the last encoder step (the generator is lazy)
        for _ in range(cfg.decoder_passes):
            for batch in super().batches(train, rng):
                yield batch, "decoder"

    def n_batch_samples(self, batch: tuple[RowBatch, Phase]) -> int:
        return len(batch[0])

    def compute_loss(self, batch: tuple[RowBatch, Phase]) -> torch.Tensor:
        """Negative ELBO with the composite prior; only the phase's half gets a gradient."""
        rows, phase = batch
        cfg, net = self.config, self.module_
        assert rows.dense is not None
        if phase == "encoder":
            mu, logvar = net.encoder(rows, cfg.dropout)
            z = mu + torch.randn_like(mu) * cfg.noise_std * torch.exp(0.5 * logvar)
            logits = F.linear(z, net.decoder.weight.detach(), net.decoder.bias.detach())
        else:
            with torch.no_grad():
                mu, logvar = net.encoder(rows, 0.0)
                z = mu + torch.randn_like(mu) * cfg.noise_std * torch.exp(0.5 * logvar)
            logits = net.decoder(z)
        nll = softmax_ce_loss(logits, rows.dense)
        weight = (
            torch.full((len(rows),), cfg.beta, device=z.device)
            if cfg.beta is not None
            else cfg.gamma * rows.dense.sum(dim=-1)
        )
        kl = log_normal(z, mu, logvar) - net.log_prior(
            rows, z, cfg.prior_weights, cfg.uniform_logvar
        )
        return nll + (kl.sum(dim=-1) * weight).mean()

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Decoder logits at the posterior mean of the histories' 0/1 rows (Q, n_items or idx)."""
        rows = binary_history(history)
        batch = row_batch(rows, np.arange(rows.shape[0]), self.device, dense=False)
        cols = None if item_idx is None else index_tensor(item_idx, self.device)
        with torch.no_grad():
            return self.module_(batch, cols).float()
