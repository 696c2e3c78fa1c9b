"""BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention trained as a cloze task.

    masked = items, each replaced by [mask] with probability `mask_prob`, the newest always
    h = LN(blocks(drop(E[masked] + P), padding mask))     # (B, L, D), attends both ways
    loss = CE(h[masked positions] @ E[:n_items].T, the hidden items)

Every masked position of every sequence is trained in one pass. To recommend, [mask] is
appended to the last `max_len - 1` items and the state at that position scores the items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field

from tuijian.models.registry import register
from tuijian.models.sequential.base import SequenceRecommender, SequentialConfig
from tuijian.nn.attention import SelfAttentionEncoder
from tuijian.nn.losses import chunked_cross_entropy


class BERT4RecConfig(SequentialConfig):
    """Blocks, heads and the share of items hidden in training."""

    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    mask_prob: float = Field(0.2, gt=0, lt=1)


@register("bert4rec")
class BERT4Rec(SequenceRecommender[BERT4RecConfig]):
    """BERT4Rec: masked-item prediction with a bidirectional transformer."""

    module_: SelfAttentionEncoder
    precisions = ("fp32", "bf16")
    test_config: ClassVar[dict[str, Any]] = {
        "max_len": 8,
        "hidden_size": 16,
        "n_layers": 1,
        "epochs": 40,
        "lr": 0.01,
        "batch_size": 16,
        "dropout": 0.1,
        "mask_prob": 0.3,
    }

    @property
    def mask_token(self) -> int:
        return self.n_items + 1

    def build_module(self) -> SelfAttentionEncoder:
        cfg = self.config
        return SelfAttentionEncoder(
            self.n_items + 2,
            self.pad,
            cfg.max_len,
            cfg.hidden_size,
            cfg.n_layers,
            cfg.n_heads,
            cfg.dropout,
            causal=False,
        )

    def autocast(self) -> torch.autocast:
        """bf16 autocast of the matrix products when the fit ran with precision bf16."""
        bf16 = self.precision_ == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def compute_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over all items at the masked positions of the last `max_len` items;
        the newest item of every row is masked too, as when recommending."""
        seqs = batch[:, -self.config.max_len :]
        real = seqs != self.pad
        draw = torch.rand(seqs.shape, device=seqs.device) < self.config.mask_prob
        draw[:, -1] = True  # the next-item case: the newest position hidden
        hidden = draw & real
        masked = torch.where(hidden, torch.full_like(seqs, self.mask_token), seqs)
        with self.autocast():
            h = self.module_(masked)[hidden]  # (N, D)
            weight = self.module_.item_emb.weight[: self.n_items]
            return chunked_cross_entropy(h, weight, seqs[hidden])

    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        """State of a [mask] appended after the newest item (the oldest one drops out)."""
        mask = torch.full_like(seqs[:, :1], self.mask_token)
        with self.autocast():
            return self.module_(torch.cat([seqs[:, 1:], mask], dim=1))[:, -1].float()

    def output_items(self, cols: torch.Tensor | None) -> torch.Tensor:
        weight = self.module_.item_emb.weight[: self.n_items]
        return weight if cols is None else weight[cols]

    def min_length(self) -> int:
        return 1
