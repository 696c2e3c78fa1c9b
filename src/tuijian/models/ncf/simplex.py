"""SimpleX (Mao et al., CIKM 2021): matrix factorization with the cosine contrastive loss.

    p_u = g e_u + (1 - g) V mean_{j in H_u} q_j          # behaviour aggregation; g = 1: MF
    s(u, i) = cos(p_u, q_i)
    loss = (1 - s(u, i+)) + w / N * sum_j max(0, s(u, i-_j) - m)      # per positive pair

Each epoch visits every training pair once. The N negatives are by default drawn once per
batch, distinct and uniform, and shared by all of its positives (one (B, D) x (D, N) product;
a negative that is one of the row's own positives is dropped from that row), or drawn per
positive by the exact sampler (`negatives="per_positive"`). The margin m keeps easy negatives
out of the gradient and the weight w balances the many negatives against the one positive.
With `history_weight` g < 1 the user side mixes the user's id embedding with a linear map V of
the mean embedding of the user's training items (the paper's average-pooling aggregation). A
history given at call time is folded in: the implicit-ALS solve over the fixed unit item
vectors stands in for e_u (at the trained users' mean norm), the aggregation is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.classic.bpr_mf import FOLD_ALPHA, FOLD_L2, PAIRS_PER_DRAW, MatrixFactorization
from tuijian.models.fold_in import binary_history, implicit_contributions, implicit_users
from tuijian.models.graph.propagation import to_torch_csr
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.registry import register
from tuijian.models.vectors import FactorVectors, as_array
from tuijian.nn.losses import l2_penalty
from tuijian.nn.sampling import NegativeSampler, positive_pairs

# a batch's histories for the mean pooling: row of each entry, its item, 1 / row length
Bags = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
# users, positives, negatives, keep (shared negatives), histories (aggregation)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, Bags | None]


class SimpleXConfig(TorchConfig):
    """Embedding size, negatives, margin, negative weight, aggregation and L2 on the batch.

    The paper uses 1,000 negatives, margin 0.9 and weight 150 on Gowalla; the margin is
    data-dependent: on ml-100k margin 0.5 and weight 10 gave NDCG@10 0.403 where 0.9 and 150
    gave 0.185 (20 epochs, lr 3e-3, 1,000 shared negatives), on Gowalla 0.5 stalls at
    Recall@20 0.094 where 0.9 reaches 0.138 in 6 epochs (lr 1e-3).
    """

    embedding_size: int = Field(64, ge=1)
    n_negatives: int = Field(1000, ge=1)
    negatives: Literal["shared", "per_positive"] = "shared"
    margin: float = Field(0.5, ge=-1, le=1)
    negative_weight: float = Field(10.0, ge=0)
    history_weight: float = Field(1.0, ge=0, le=1)  # g; 1 = plain MF, no aggregation
    history_dropout: float = Field(0.1, ge=0, lt=1)  # on the pooled history (training only)
    reg: float = Field(1e-6, ge=0)
    init_std: float = Field(0.02, gt=0)
    batch_size: int = Field(1024, ge=1)


class SimpleXModule(MatrixFactorization):
    """MF tables plus, with g < 1, the map V of the pooled history into the user side."""

    def __init__(
        self, n_users: int, n_items: int, size: int, init_std: float, g: float, dropout: float
    ) -> None:
        super().__init__(n_users, n_items, size, init_std)
        self.g = g
        self.mix = nn.Linear(size, size, bias=False) if g < 1 else None
        self.dropout = nn.Dropout(dropout)

    def forward(  # type: ignore[override]
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, bags: Bags | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Users (B, D) with their pooled history when g < 1, positives (B, D), negatives.

        One `index_select` for every item row the batch needs (positives, negatives, history):
        each select's backward fills a dense items x D gradient, the costliest step on CPU.
        """
        items = [pos, neg.reshape(-1)] if bags is None else [pos, neg.reshape(-1), bags[1]]
        rows = self.item_emb.weight.index_select(0, torch.cat(items))
        parts = rows.split([len(ids) for ids in items])
        u = self.user_emb.weight.index_select(0, users)
        p, n = parts[0], parts[1].view(*neg.shape, -1)
        if self.mix is None or bags is None:
            return u, p, n
        owner, _, inverse_counts = bags
        pooled = torch.zeros_like(u).index_add_(0, owner, parts[2]) * inverse_counts
        return self.g * u + (1 - self.g) * self.mix(self.dropout(pooled)), p, n


def history_bags(history: sp.csr_matrix, device: torch.device | str = "cpu") -> Bags:
    """(row of each entry (nnz,), its item (nnz,), 1 / row length (Q, 1)) of a binarized
    history: the mean pooling of the training batches, by gather and `index_add_`."""
    binary = binary_history(history)
    counts = np.diff(binary.indptr)
    owner = np.repeat(np.arange(len(counts)), counts)
    inverse = (1.0 / np.maximum(counts, 1)).astype(np.float32)[:, None]
    return (
        torch.from_numpy(owner).to(device),
        torch.from_numpy(binary.indices.astype(np.int64)).to(device),
        torch.from_numpy(inverse).to(device),
    )


def mean_rows(history: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """(Q, n_items) torch CSR whose row q averages query q's history items (binarized): the
    pooling of whole tables without autograd, one sparse product."""
    binary = binary_history(history)
    counts = np.maximum(np.diff(binary.indptr), 1)
    binary.data /= np.repeat(counts, np.diff(binary.indptr)).astype(np.float32)
    return to_torch_csr(binary, device)


def cosine_contrastive_loss(
    u: torch.Tensor,
    p: torch.Tensor,
    n: torch.Tensor,
    margin: float,
    weight: float,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over the batch of (1 - cos(u, p)) + weight * mean_j relu(cos(u, n_j) - margin).

    u, p: (B, D); n: (B, N, D) negatives of each positive, or (N, D) shared by the batch, with
    `keep` (B, N) marking the shared ones that are not a positive of that row's user.
    """
    u, p, n = F.normalize(u, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1)
    pos = 1.0 - (u * p).sum(dim=-1)  # (B,)
    cos = u @ n.T if n.dim() == 2 else torch.einsum("bd,bnd->bn", u, n)  # (B, N)
    hinge = torch.relu(cos - margin)
    if keep is None:
        neg = hinge.mean(dim=-1)
    else:
        neg = (hinge * keep).sum(dim=-1) / keep.sum(dim=-1).clamp_min(1)
    return (pos + weight * neg).mean()


@register("simplex")
class SimpleX(FactorVectors, TorchRecommender[SimpleXConfig]):
    """MF trained with the cosine contrastive loss; scores are cosine similarities.

    A new history is folded in: the implicit-ALS ridge solve over the fixed unit item vectors.
    """

    history_mode = "fold_in"
    test_config: ClassVar[dict[str, Any]] = {
        "embedding_size": 8,
        "epochs": 20,
        "lr": 0.05,
        "n_negatives": 4,
        "negative_weight": 2.0,
        "margin": 0.0,
        "batch_size": 128,
    }

    def build_module(self) -> SimpleXModule:
        cfg = self.config
        return SimpleXModule(
            len(self.users_),
            len(self.items_),
            cfg.embedding_size,
            cfg.init_std,
            cfg.history_weight,
            cfg.history_dropout,
        )

    def _bags(self, rows: sp.csr_matrix) -> Bags | None:
        """Training history `rows` of a batch's users when the model aggregates, else None."""
        if self.config.history_weight >= 1:
            return None
        return history_bags(rows, self.device)

    def prepare_data(self, train: Dataset) -> None:
        """The exact sampler of each user's negatives."""
        self._sampler = NegativeSampler(self.seen_)

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Batch]:
        """(users (B,), positives (B,), negatives, keep): every training pair once.

        `shared`: N uniform items per batch, scored against every user of the batch by one
        matrix product, `keep` (B, N) dropping those that are a positive of the row's user;
        `per_positive`: (B, N) exact negatives per positive from the sampler, `keep` None.
        """
        cfg = self.config
        all_users, all_items = positive_pairs(self.seen_, "pairs", rng)
        if cfg.negatives == "shared":
            n_items = len(self.items_)
            slot = np.full(n_items, -1, dtype=np.int64)
            for lo in range(0, len(all_users), cfg.batch_size):
                users = all_users[lo : lo + cfg.batch_size]
                negatives = rng.choice(n_items, min(cfg.n_negatives, n_items), replace=False)
                slot[negatives] = np.arange(len(negatives))
                rows = self.seen_[users]
                hit = slot[rows.indices]
                keep = np.ones((len(users), len(negatives)), dtype=np.float32)
                owner = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
                keep[owner[hit >= 0], hit[hit >= 0]] = 0.0
                slot[negatives] = -1
                yield (
                    torch.from_numpy(users).to(self.device),
                    torch.from_numpy(all_items[lo : lo + cfg.batch_size]).to(self.device),
                    torch.from_numpy(negatives.astype(np.int64)).to(self.device),
                    torch.from_numpy(keep).to(self.device),
                    self._bags(rows),
                )
            return
        per_draw = max(cfg.batch_size, PAIRS_PER_DRAW // (cfg.n_negatives * cfg.batch_size))
        draw = per_draw // cfg.batch_size * cfg.batch_size or cfg.batch_size
        for start in range(0, len(all_users), draw):
            users = all_users[start : start + draw]
            negatives = self._sampler.sample(users, cfg.n_negatives, rng)  # (b, N)
            u = torch.from_numpy(users).to(self.device)
            p = torch.from_numpy(all_items[start : start + draw]).to(self.device)
            n = torch.from_numpy(negatives).to(self.device)
            for lo in range(0, len(users), cfg.batch_size):
                hi = lo + cfg.batch_size
                yield u[lo:hi], p[lo:hi], n[lo:hi], None, self._bags(self.seen_[users[lo:hi]])

    def compute_loss(self, batch: Batch) -> torch.Tensor:
        """The cosine contrastive loss plus L2 on the embeddings the batch touched."""
        users, pos, neg, keep, history = batch
        cfg = self.config
        u, p, n = self.module_(users, pos, neg, history)
        loss = cosine_contrastive_loss(u, p, n, cfg.margin, cfg.negative_weight, keep)
        if cfg.reg:
            loss = loss + cfg.reg * l2_penalty(u, p, n) / len(users)
        return loss

    def invalidate_cache(self) -> None:
        """Drop the cached unit tables (they change after every epoch)."""
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(unit user table (U, D), unit item table (I, D)), detached, cached per epoch; the
        user side includes the aggregation of each user's training items."""
        self._check_fitted()
        if getattr(self, "_tables", None) is None:
            module = self.module_
            with torch.no_grad():
                items = module.item_emb.weight.detach()
                users = module.user_emb.weight.detach()
                if module.mix is not None:
                    pooled = torch.sparse.mm(mean_rows(self.seen_, items.device), items)
                    users = module.g * users + (1 - module.g) * module.mix(pooled)
                self._tables = (F.normalize(users, dim=-1), F.normalize(items, dim=-1))
        assert self._tables is not None
        return self._tables

    def _items(self, item_idx: np.ndarray | None) -> torch.Tensor:
        items = self.embeddings()[1]
        if item_idx is None:
            return items
        return items[torch.as_tensor(np.asarray(item_idx, dtype=np.int64))]

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Cosine similarities (len(user_idx), n_items or len(item_idx))."""
        users = self.embeddings()[0][torch.as_tensor(np.asarray(user_idx, dtype=np.int64))]
        with torch.no_grad():
            return users @ self._items(item_idx).T

    def fold_in(self, history: sp.csr_matrix) -> torch.Tensor:
        """(Q, D) unit user vectors of histories: the implicit-ALS solve over unit items for
        e_u, mixed with the aggregation of the history's items when g < 1."""
        return F.normalize(self._folded(history)[0], dim=-1)

    def _folded(self, history: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        """(unnormalized user vectors (Q, D), (Q, 1) factor of their ALS part)."""
        unit_items = self.embeddings()[1]
        als = implicit_users(history, unit_items, FOLD_ALPHA, FOLD_L2)
        module = self.module_
        if module.mix is None:
            return als, torch.ones((len(als), 1), dtype=als.dtype)
        with torch.no_grad():
            norm = float(module.user_emb.weight.norm(dim=-1).mean())
            scale = module.g * norm / als.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            items = module.item_emb.weight.detach()
            pooled = torch.sparse.mm(mean_rows(history, items.device), items)
            return scale * als + (1 - module.g) * module.mix(pooled), scale

    def item_vectors(self) -> np.ndarray:
        return as_array(self.embeddings()[1])

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return as_array(self.embeddings()[0][np.asarray(user_idx, dtype=np.int64)])

    def history_contributions(self, history: sp.csr_matrix, item: int) -> np.ndarray:
        """(nnz,) share of each history item in the folded-in (unnormalized) score of `item`:
        its part of the ALS solve plus, when g < 1, its (1 - g) / n V q_j . q_item."""
        unit_items = self.embeddings()[1]
        shares = implicit_contributions(history, unit_items, FOLD_ALPHA, FOLD_L2, item)
        module = self.module_
        if module.mix is None:
            return shares
        _, scale = self._folded(history)
        binary = binary_history(history)
        with torch.no_grad():
            items = module.item_emb.weight.detach()
            mapped = module.mix(items[torch.as_tensor(binary.indices, dtype=torch.int64)])
            pooled = (1 - module.g) / max(binary.nnz, 1) * (mapped @ unit_items[item])
        return float(scale) * shares + as_array(pooled)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Cosines of the folded-in user vectors with the items (Q, n_items or len)."""
        with torch.no_grad():
            return self.fold_in(history) @ self._items(item_idx).T
