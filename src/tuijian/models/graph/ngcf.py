"""NGCF (Wang et al. 2019): neural graph collaborative filtering with BPR.

Each layer mixes the normalized neighbourhood sum with the node itself (L + I, Â = L) and an
affinity term, E' = LeakyReLU(((L + I) E) W1 + ((L E) ⊙ E) W2), then message dropout; node
dropout blocks a random share of nodes' outgoing messages. The final embedding concatenates
the ego embedding with every layer's output, each L2-normalized as in the authors' code; the
loss is BPR + reg_weight * ||final embeddings of the batch||^2 / 2 / batch size.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tuijian.models.graph.base import GraphBatch, GraphConfig, GraphRecommender
from tuijian.models.graph.propagation import NormalizedGraph, propagate
from tuijian.models.registry import register
from tuijian.nn.losses import bpr_loss, l2_penalty


class NGCFConfig(GraphConfig):
    """NGCF settings: the paper's model (64 dims, three 64-wide layers, dropout 0.1) trained
    with batch 8,192 and lr 4e-3 rather than its 2,048 and 1e-3: as accurate on ml-100k and
    under a third of the steps (docs/benchmarks/defaults.md)."""

    batch_size: int = Field(8192, ge=1)
    lr: float = Field(4e-3, gt=0)
    embedding_size: int = Field(64, ge=1)
    layer_sizes: tuple[int, ...] = (64, 64, 64)
    message_dropout: float = Field(0.1, ge=0, lt=1)
    node_dropout: float = Field(0.0, ge=0, lt=1)
    reg_weight: float = Field(1e-5, ge=0)
    negative_slope: float = Field(0.2, ge=0)


class NGCFModule(nn.Module):
    """Ego embeddings, per-layer W1 (sum) and W2 (affinity) transforms, and the fixed graph."""

    def __init__(self, graph: NormalizedGraph, config: NGCFConfig) -> None:
        super().__init__()
        self.graph = graph
        self.config = config
        self.ego = nn.Parameter(torch.empty(graph.n_nodes, config.embedding_size))  # (N, D)
        nn.init.xavier_uniform_(self.ego)
        sizes = [config.embedding_size, *config.layer_sizes]
        self.sum_layers = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in itertools.pairwise(sizes)
        )
        self.affinity_layers = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in itertools.pairwise(sizes)
        )
        for layer in [*self.sum_layers, *self.affinity_layers]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, dropout: bool) -> torch.Tensor:
        """Final embeddings of every node, (N, D + sum(layer_sizes)); dropout only if asked."""
        cfg = self.config
        e = self.ego
        outputs = [e]
        for w_sum, w_aff in zip(self.sum_layers, self.affinity_layers, strict=True):
            source = e
            if dropout and cfg.node_dropout > 0:
                keep = torch.rand(e.shape[0], 1, device=e.device) >= cfg.node_dropout
                source = e * keep / (1 - cfg.node_dropout)  # blocked nodes send nothing
            side = propagate(self.graph, source)  # L E, (N, d)
            e = F.leaky_relu(w_sum(side + e) + w_aff(side * e), cfg.negative_slope)
            if dropout and cfg.message_dropout > 0:
                e = F.dropout(e, cfg.message_dropout)
            outputs.append(F.normalize(e, dim=1))
        return torch.cat(outputs, dim=1)


@register("ngcf")
class NGCF(GraphRecommender[NGCFConfig]):
    """NGCF trained with BPR; the whole graph is propagated for every batch (it is non-linear)."""

    test_config: ClassVar[dict[str, Any]] = {
        "embedding_size": 8,
        "layer_sizes": (8, 8),
        "epochs": 20,
        "lr": 0.01,
        "batch_size": 2048,
    }

    def build_module(self) -> NGCFModule:
        """Embeddings and layer weights sized from the vocabularies and the config."""
        return NGCFModule(NormalizedGraph(self.seen_, self.device), self.config)

    def compute_loss(self, batch: GraphBatch) -> torch.Tensor:
        """BPR on final embeddings + L2 on those embeddings / batch size."""
        users, pos, neg, _, _ = batch
        final = self.module_(dropout=True)
        n_users = len(self.users_)
        u, p, n = final[users], final[n_users + pos], final[n_users + neg]  # (B, D') each
        loss = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        return loss + self.config.reg_weight * l2_penalty(u, p, n) / len(users)

    def final_embeddings(self) -> torch.Tensor:
        """Every node's final embedding without dropout."""
        return self.module_(dropout=False)
