"""Wide & Deep (Cheng et al., DLRS 2016): a linear model over sparse and crossed features
joined with a deep MLP over the field embeddings, trained together on one logit.

    wide  = b + w_item[i] + w_cat[c_i] + sum_f w_f[u_f] + a . [activity, affinity] + a' . dense_i
            + sum_c profile_q[c] W_cross[c, c_i]          # history category x item category
    deep  = MLP([pooled, user feature embs, activity | E[i], E_cat[c_i], dense_i | affinity])
    logit = wide + deep

The crossed feature is Cheng et al.'s cross-product transformation of the history's
categories with the candidate's category (what "installed app x impression app" is in the
paper), weighted by each category's share of the history. Fields: see `ctr/base.py`.
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


class WideDeepConfig(CTRConfig):
    """Wide & Deep: the CTR fields, deep tower `layers`, and the pointwise loss settings."""


class WideDeepNet(CTRNet):
    """The wide linear part (with the category cross) and the deep tower on shared fields."""

    def __init__(self, *args: Any, layers: tuple[int, ...], dropout: float) -> None:
        super().__init__(*args)
        dim = self.item_emb.embedding_dim
        n_items, n_cat = self.item_emb.num_embeddings, self.n_categories + 1
        self.bias = nn.Parameter(torch.zeros(()))
        self.w_item = nn.Embedding(n_items, 1)
        self.w_cat = nn.Embedding(n_cat, 1)
        self.w_feat = nn.Embedding(self.user_feat.num_embeddings, 1)
        self.w_dense = nn.Parameter(torch.zeros(2))  # activity, affinity
        self.w_item_dense = nn.Parameter(torch.zeros(3))
        self.cross = nn.Parameter(torch.zeros(n_cat, n_cat))
        for table in (self.w_item, self.w_cat, self.w_feat):
            nn.init.zeros_(table.weight)
        self.deep = DeepTower(dim * (1 + self.n_features) + 1, 2 * dim + 3, layers, dropout)

    def logits(self, q: QuerySide, it: ItemSide, affinity: torch.Tensor) -> torch.Tensor:
        n_q = len(q.pooled)
        feat_w = self.w_feat(q.codes + self.feature_offsets).sum(dim=(1, 2))  # (Q,)
        cross = q.profile @ self.cross  # (Q, C + 1): weight of each candidate category
        cross = cross[:, it.cat[0]] if it.cat.shape[0] == 1 else cross.gather(1, it.cat)
        wide = (
            self.bias
            + self.w_item(it.items)[..., 0]
            + self.w_cat(it.cat)[..., 0]
            + (feat_w + self.w_dense[0] * q.activity)[:, None]
            + it.dense @ self.w_item_dense
            + self.w_dense[1] * affinity
            + cross
        )  # (Q, n)
        query = torch.cat([q.pooled, q.feats.reshape(n_q, -1), q.activity[:, None]], dim=1)
        item = torch.cat([it.emb, it.cat_emb, it.dense], dim=-1)
        return wide + self.deep(query, item, affinity)


@register("widedeep")
class WideDeep(CTRRecommender[WideDeepConfig]):
    """Wide & Deep CTR ranking: BCE on observed pairs vs sampled negatives (or buy labels)."""

    test_config: ClassVar[dict[str, Any]] = {"epochs": 15, "lr": 0.01, "batch_size": 32}

    def build_module(self) -> WideDeepNet:
        cfg = self.config
        return WideDeepNet(
            self.n_items,
            self.item_cat_,
            int(self.n_categories_),
            self.item_dense_,
            self.feature_sizes_,
            cfg.dim,
            layers=cfg.layers,
            dropout=cfg.dropout,
        )
