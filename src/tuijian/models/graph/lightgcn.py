"""LightGCN (He et al. 2020): linear propagation over the normalized user-item graph, BPR loss.

Final embeddings are the mean of layers 0..K of E^{k+1} = Â E^k (Â = D^-1/2 A D^-1/2), scores
are dot products. The loss of a batch is BPR with one uniform negative per positive plus
reg_weight * ||ego embeddings of the batch||^2 / 2 / batch size, as in the authors' code.

Exact gradients need the propagated embeddings of the batch's nodes at every step. With
`propagation="restricted"` (the default) they are computed by `layer_mean_rows`: K - 1
products over the whole graph and one over the batch's rows, and the same in backward, with
values and gradients equal to the straightforward per-batch propagation (`"full"`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from tuijian.models.graph.base import GraphBatch, GraphConfig, GraphRecommender
from tuijian.models.graph.propagation import NormalizedGraph, layer_mean, layer_mean_rows
from tuijian.models.registry import register
from tuijian.nn.losses import bpr_loss, l2_penalty


class LightGCNConfig(GraphConfig):
    """LightGCN settings: the paper's model (64 dims, 3 layers, reg 1e-4) trained with fewer,
    larger steps than its batch 2,048 and lr 1e-3, which on ml-100k do not converge in 100
    epochs (NDCG@10 0.266 against 0.311; docs/benchmarks/defaults.md)."""

    batch_size: int = Field(8192, ge=1)
    lr: float = Field(1e-2, gt=0)
    embedding_size: int = Field(64, ge=1)
    n_layers: int = Field(3, ge=0)
    reg_weight: float = Field(1e-4, ge=0)
    init_std: float = Field(0.1, gt=0)
    propagation: Literal["restricted", "full"] = "restricted"


class LightGCNModule(nn.Module):
    """Ego embeddings of every graph node (users then items) and the fixed graph."""

    def __init__(self, graph: NormalizedGraph, embedding_size: int, init_std: float) -> None:
        super().__init__()
        self.graph = graph
        self.ego = nn.Parameter(torch.empty(graph.n_nodes, embedding_size))  # (N, D)
        nn.init.normal_(self.ego, std=init_std)

    def final_rows(self, rows: torch.Tensor, n_layers: int, restricted: bool) -> torch.Tensor:
        """Final embeddings of the unique nodes `rows`, with autograd: (R, D)."""
        if restricted:
            return layer_mean_rows(self.graph, self.ego, rows.numpy(), n_layers)
        return layer_mean(self.graph, self.ego, n_layers)[rows.to(self.ego.device)]

    def forward(
        self,
        nodes: torch.Tensor,
        triples: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        n_layers: int,
        restricted: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """A training pass: final embeddings of the unique `nodes` (R, D), and the ego
        embeddings of the (user, positive, negative) node indices `triples` ((B, D) each)."""
        final = self.final_rows(nodes, n_layers, restricted)
        return final, tuple(self.ego[rows] for rows in triples)


@register("lightgcn")
class LightGCN(GraphRecommender[LightGCNConfig]):
    """LightGCN trained with BPR; propagation restricted to each batch's rows by default."""

    test_config: ClassVar[dict[str, Any]] = {
        "embedding_size": 8,
        "epochs": 10,
        "lr": 0.01,
        "batch_size": 2048,
    }

    def build_module(self) -> LightGCNModule:
        """Ego embeddings sized from the vocabularies; the graph from the training matrix."""
        graph = NormalizedGraph(self.seen_, self.device)
        return LightGCNModule(graph, self.config.embedding_size, self.config.init_std)

    def compute_loss(self, batch: GraphBatch) -> torch.Tensor:
        """BPR on final embeddings + L2 on the batch's ego embeddings / batch size."""
        users, pos, neg, nodes, inverse = batch
        cfg = self.config
        n_users = len(self.users_)
        triples = (users, n_users + pos, n_users + neg)
        final, ego = self.module_(nodes, triples, cfg.n_layers, cfg.propagation == "restricted")
        u, p, n = final[inverse].chunk(3)  # (B, D) each
        loss = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        reg = l2_penalty(*ego) / len(users)
        return loss + cfg.reg_weight * reg

    def final_embeddings(self) -> torch.Tensor:
        """mean_k Â^k E of every node: one propagation (K sparse products)."""
        module: LightGCNModule = self.module_
        return module.graph.layer_mean(module.ego.detach(), self.config.n_layers)
