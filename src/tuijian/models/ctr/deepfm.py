"""DeepFM (Guo et al., IJCAI 2017): a factorization machine and a deep MLP sharing one set of
field embeddings, summed into one logit.

    fields v_1..v_m  = [pooled, user features..., activity x v_act | E[i], E_cat[c_i],
                        dense_ij x v_j (j: popularity, positives, conversion)
                        | affinity x v_aff]                                    # each (D,)
    fm    = b + sum of first-order weights + 1/2 sum_d ((sum_f v_f)^2 - sum_f v_f^2)
    deep  = MLP(concat(v_1..v_m))
    logit = fm + deep

Dense fields enter the FM as their value times a learned vector, as in the paper. The
pairwise term is computed per side and crossed once: (S_q + S_i + S_a)^2 - (Q_q + Q_i + Q_a)
with S the sums and Q the sums of squares of each side's field vectors, so a Q x n block
costs O(Q + n) field work plus D per pair. Fields: see `ctr/base.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from tuijian.models.ctr.base import (
    CTRConfig,
    CTRNet,
    CTRRecommender,
    DeepTower,
    ItemSide,
    QuerySide,
)
from tuijian.models.registry import register


class DeepFMConfig(CTRConfig):
    """DeepFM: the CTR fields, deep tower `layers`, and the pointwise loss settings."""


class DeepFMNet(CTRNet):
    """First-order weights, the FM over the shared field vectors, and the deep tower."""

    def __init__(self, *args: Any, layers: tuple[int, ...], dropout: float) -> None:
        super().__init__(*args)
        dim = self.item_emb.embedding_dim
        self.bias = nn.Parameter(torch.zeros(()))
        self.w_item = nn.Embedding(self.item_emb.num_embeddings, 1)
        self.w_cat = nn.Embedding(self.n_categories + 1, 1)
        self.w_feat = nn.Embedding(self.user_feat.num_embeddings, 1)
        for table in (self.w_item, self.w_cat, self.w_feat):
            nn.init.zeros_(table.weight)
        self.w_dense = nn.Parameter(torch.zeros(2))  # activity, affinity
        self.v_dense = nn.Parameter(torch.randn(2, dim) * 0.05)
        self.w_item_dense = nn.Parameter(torch.zeros(3))
        self.v_item_dense = nn.Parameter(torch.randn(3, dim) * 0.05)
        width_q = dim * (2 + self.n_features)
        self.deep = DeepTower(width_q, 5 * dim, layers, dropout)

    def logits(self, q: QuerySide, it: ItemSide, affinity: torch.Tensor) -> torch.Tensor:
        n_q = len(q.pooled)
        v_act, v_aff = self.v_dense
        query_fields = torch.cat(
            [q.pooled[:, None], q.feats, (q.activity[:, None] * v_act)[:, None]], dim=1
        )  # (Q, Fq, D)
        dense_fields = it.dense[..., None] * self.v_item_dense  # (R, n, 3, D)
        item_fields = torch.cat([it.emb[..., None, :], it.cat_emb[..., None, :], dense_fields], -2)
        s_q, sq_q = query_fields.sum(1), query_fields.pow(2).sum((1, 2))  # (Q, D), (Q,)
        s_i, sq_i = item_fields.sum(-2), item_fields.pow(2).sum((-2, -1))  # (R, n, D), (R, n)
        pair = affinity[..., None] * v_aff  # (Q, n, D)
        total = s_q[:, None, :] + s_i + pair
        fm2 = 0.5 * (total.pow(2).sum(-1) - sq_q[:, None] - sq_i - pair.pow(2).sum(-1))
        first = (
            self.bias
            + self.w_item(it.items)[..., 0]
            + self.w_cat(it.cat)[..., 0]
            + (
                self.w_feat(q.codes + self.feature_offsets).sum((1, 2))
                + self.w_dense[0] * q.activity
            )[:, None]
            + it.dense @ self.w_item_dense
            + self.w_dense[1] * affinity
        )
        deep = self.deep(query_fields.reshape(n_q, -1), item_fields.flatten(-2), affinity)
        return first + fm2 + deep


@register("deepfm")
class DeepFM(CTRRecommender[DeepFMConfig]):
    """DeepFM CTR ranking: BCE on observed pairs vs sampled negatives (or buy labels)."""

    test_config: ClassVar[dict[str, Any]] = {"epochs": 15, "lr": 0.01, "batch_size": 32}

    def build_module(self) -> DeepFMNet:
        cfg = self.config
        return DeepFMNet(
            self.n_items,
            self.item_cat_,
            int(self.n_categories_),
            self.item_dense_,
            self.feature_sizes_,
            cfg.dim,
            layers=cfg.layers,
            dropout=cfg.dropout,
        )
