"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over a user's item sequence.

    x = drop(E[items] + P[positions])          # (B, L, D), learned positions
    h = LN(blocks(x, causal mask))             # (B, L, D), pre-norm transformer blocks
    logits = h @ E[:n_items].T                 # (B, L, I), the item embedding is the output

Trained at every position of every sequence in one pass. The default loss is the full
cross-entropy over all items (Klenitskiy & Vasilev, RecSys 2023: with it SASRec beats
BERT4Rec); `loss="bce"` is the original one-negative binary cross-entropy, for comparison.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from tuijian.models.registry import register
from tuijian.models.sequential.base import SequenceRecommender, SequentialConfig
from tuijian.nn.attention import SelfAttentionEncoder
from tuijian.nn.losses import chunked_cross_entropy


class SASRecConfig(SequentialConfig):
    """Blocks, heads and the loss: `ce` (full softmax over all items) or `bce` (one uniform
    negative per position, the paper's)."""

    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(1, ge=1)
    loss: Literal["ce", "bce"] = "ce"


@register("sasrec")
class SASRec(SequenceRecommender[SASRecConfig]):
    """SASRec: next-item prediction with causal self-attention and a shared output embedding."""

    module_: SelfAttentionEncoder
    precisions = ("fp32", "bf16")
    test_config: ClassVar[dict[str, Any]] = {
        "max_len": 8,
        "hidden_size": 16,
        "n_layers": 1,
        "epochs": 30,
        "lr": 0.01,
        "batch_size": 16,
        "dropout": 0.1,
    }

    def build_module(self) -> SelfAttentionEncoder:
        cfg = self.config
        return SelfAttentionEncoder(
            self.n_items + 1,
            self.pad,
            cfg.max_len,
            cfg.hidden_size,
            cfg.n_layers,
            cfg.n_heads,
            cfg.dropout,
            causal=True,
        )

    def autocast(self) -> torch.autocast:
        """bf16 autocast of the matrix products when the fit ran with precision bf16."""
        bf16 = self.precision_ == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def compute_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean loss over the non-padding positions of (B, L + 1) sequences."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        real = (targets != self.pad) & (inputs != self.pad)
        with self.autocast():
            h = self.module_(inputs)[real]  # (N, D) states of positions with a target
            emb = self.module_.item_emb.weight[: self.n_items]
            pos = targets[real]
            if self.config.loss == "ce":  # over all items, in chunks of positions
                return chunked_cross_entropy(h, emb, pos)
            neg = torch.randint(0, self.n_items, pos.shape, device=pos.device)
            pos_logit = (h * emb[pos]).sum(-1).float()
            neg_logit = (h * emb[neg]).sum(-1).float()
        return F.softplus(-pos_logit).mean() + F.softplus(neg_logit).mean()

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.module_(seqs)[:, -1].float()

    def output_items(self, cols: torch.Tensor | None) -> torch.Tensor:
        weight = self.module_.item_emb.weight[: self.n_items]
        return weight if cols is None else weight[cols]
