"""Self-attention blocks of the sequence models (SASRec, BERT4Rec): pre-norm transformer layers.

x (B, L, D) -> x + drop(attn(LN(x), mask)) -> x + drop(FFN(LN(x)))    per block
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TransformerBlock(nn.Module):
    """One pre-norm block: multi-head self-attention under a mask, then a GELU feed-forward."""

    def __init__(self, dim: int, n_heads: int, dropout: float, ffn_mult: int = 4) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not a multiple of {n_heads} heads")
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); `mask` (B, 1, L, L) bool, True where a query may attend."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, d/H)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


def attention_mask(seqs: torch.Tensor, pad: int, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) bool: keys that are not padding (and not later, when `causal`); every
    position may always attend to itself, so no row is all masked (no NaN from padding)."""
    n = seqs.shape[1]
    keys = (seqs != pad)[:, None, None, :]  # (B, 1, 1, L)
    eye = torch.eye(n, dtype=torch.bool, device=seqs.device)
    allowed = keys | eye
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=seqs.device).tril()
    return allowed


class SelfAttentionEncoder(nn.Module):
    """Item + learned position embeddings, dropout, `n_layers` blocks and a final layer norm.

    The item table has `n_tokens` rows (the items, padding, and any mask token) and doubles as
    the output layer (shared item embedding).
    """

    def __init__(
        self,
        n_tokens: int,
        pad: int,
        max_len: int,
        dim: int,
        n_layers: int,
        n_heads: int,
        dropout: float,
        causal: bool,
    ) -> None:
        super().__init__()
        self.pad, self.causal = pad, causal
        self.item_emb = nn.Embedding(n_tokens, dim, padding_idx=pad)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, n_heads, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[pad].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids, left-padded -> (B, L, D) states (positions count from the right
        end, so the last item always has the same position whatever the length)."""
        n = seqs.shape[1]
        positions = torch.arange(n - 1, -1, -1, device=seqs.device)  # L-1 .. 0, 0 = newest
        x = self.drop(self.item_emb(seqs) + self.pos_emb(positions)[None])
        mask = attention_mask(seqs, self.pad, self.causal)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)
