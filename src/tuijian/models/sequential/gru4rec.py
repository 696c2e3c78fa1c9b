"""GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018): a GRU over the items.

    x = drop_emb(E[items])                     # (B, L, D)
    h = drop_hidden(GRU(x)) W                  # (B, L, D), W maps the GRU state to item space
    logits = h @ E[:n_items].T                 # (B, L, I), the item embedding is the output

Trained at every position of every sequence in one pass, with the full cross-entropy over all
items (`loss="ce"`), or, for large catalogues, a softmax over the batch's target items with
logQ correction (`loss="sampled"`: each logit minus the log of its item's training share, so
popular items are not over-penalised; Yi et al. 2019). Sequences are left-padded: the GRU
reads the padding first (zero vectors), a learned start state.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.registry import register
from tuijian.models.sequential.base import (
    SequenceRecommender,
    SequentialConfig,
    item_frequencies,
)
from tuijian.nn.losses import chunked_cross_entropy, in_batch_duplicates, sampled_softmax_loss


class GRU4RecConfig(SequentialConfig):
    """GRU layers, dropout of the embeddings and of the GRU output, and the loss: `ce` (full
    softmax) or `sampled` (in-batch targets as negatives, logQ-corrected)."""

    n_layers: int = Field(1, ge=1)
    embedding_dropout: float = Field(0.25, ge=0, lt=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    loss: Literal["ce", "sampled"] = "ce"


class GRU4RecNet(nn.Module):
    """Item embedding, a GRU and a projection back to the embedding space."""

    def __init__(self, n_items: int, dim: int, n_layers: int, emb_drop: float, drop: float):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.emb_drop = nn.Dropout(emb_drop)
        self.gru = nn.GRU(dim, dim, n_layers, batch_first=True)
        self.hidden_drop = nn.Dropout(drop)
        self.out = nn.Linear(dim, dim)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids -> (B, L, D) next-item query vectors."""
        h, _ = self.gru(self.emb_drop(self.item_emb(seqs)))
        return self.out(self.hidden_drop(h))


@register("gru4rec")
class GRU4Rec(SequenceRecommender[GRU4RecConfig]):
    """GRU4Rec: next-item prediction with a recurrent network, trained on whole sequences."""

    module_: GRU4RecNet
    test_config: ClassVar[dict[str, Any]] = {
        "max_len": 8,
        "hidden_size": 16,
        "epochs": 30,
        "lr": 0.01,
        "batch_size": 16,
        "embedding_dropout": 0.1,
    }
    log_q: torch.Tensor  # (I,) log training share of each item (loss="sampled")

    def prepare_data(self, train: Dataset) -> None:
        super().prepare_data(train)
        freq = item_frequencies(train)
        self.log_q = torch.from_numpy(np.log(np.maximum(freq, 1.0) / freq.sum())).float()

    def build_module(self) -> GRU4RecNet:
        cfg = self.config
        return GRU4RecNet(
            self.n_items, cfg.hidden_size, cfg.n_layers, cfg.embedding_dropout, cfg.dropout
        )

    def compute_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean loss over the non-padding positions of (B, L + 1) sequences."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        real = (targets != self.pad) & (inputs != self.pad)
        h = self.module_(inputs)[real]  # (N, D)
        pos = targets[real]
        emb = self.module_.item_emb.weight
        if self.config.loss == "ce":
            return chunked_cross_entropy(h, emb[: self.n_items], pos)
        log_q = self.log_q.to(h.device)[pos]
        return sampled_softmax_loss(h, emb[pos], log_q, duplicates=in_batch_duplicates(pos))

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.module_(seqs)[:, -1]

    def output_items(self, cols: torch.Tensor | None) -> torch.Tensor:
        weight = self.module_.item_emb.weight[: self.n_items]
        return weight if cols is None else weight[cols]
