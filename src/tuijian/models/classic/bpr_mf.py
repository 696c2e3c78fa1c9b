"""BPR-MF (Rendle et al. 2009): matrix factorization that ranks each positive above negatives.

score(u, i) = <p_u, q_i>. Each epoch visits every training (user, item) pair once in a random
order, pairs it with `n_negatives` items the user never interacted with (uniform, or
popularity^`neg_alpha`), and minimises -log sigmoid(s_pos - s_neg) (or the pointwise BCE) plus
an L2 penalty on the embeddings the batch touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.fold_in import implicit_contributions, implicit_users
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.registry import register
from tuijian.models.vectors import FactorVectors, as_array
from tuijian.nn.losses import bce_loss, bpr_loss, l2_penalty
from tuijian.nn.sampling import NegativeSampler, positive_pairs

# Positives whose negatives are drawn at once: bounds the memory of one epoch's draws.
PAIRS_PER_DRAW = 1 << 20
# Fold-in of a new history (implicit-ALS user step, items fixed): confidence 1 + FOLD_ALPHA on
# the history's items, 1 on all others, ridge FOLD_L2 x trace(Q^T Q) / D. On ml-100k (15
# epochs) these gave top-10 overlap 0.76 with the learned users and NDCG@10 0.380 vs their
# 0.374; alpha 5 / l2 10 gave 0.73 / 0.367, l2 1 0.53 / 0.30, the plain sum of q_i 0.66 / 0.372.
FOLD_ALPHA = 20.0
FOLD_L2 = 30.0

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class BPRConfig(TorchConfig):
    """BPR-MF settings; the training loop's own settings come from `TorchConfig`.

    `reg` multiplies half the squared norms of the batch's user, positive and negative
    embeddings, summed and divided by the batch size (a per-positive L2 penalty). It is 0 by
    default, as in RecBole's BPR: on ml-1m 1e-4 changed nothing and larger values only slowed
    learning (see docs/benchmarks/bpr.md). `init_std` 0.02 (about RecBole's Xavier scale) let
    the first epochs learn faster than 0.1 at both lr 1e-3 and 5e-3.
    """

    embedding_size: int = Field(64, ge=1)
    loss: Literal["bpr", "bce"] = "bpr"
    n_negatives: int = Field(1, ge=1)
    neg_alpha: float = Field(0.0, ge=0)
    reg: float = Field(0.0, ge=0)
    init_std: float = Field(0.02, gt=0)


class MatrixFactorization(nn.Module):
    """User and item embedding tables; a score is their dot product."""

    def __init__(self, n_users: int, n_items: int, size: int, init_std: float) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, size)
        self.item_emb = nn.Embedding(n_items, size)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)

    def forward(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings of a batch: users (B, D), positives (B, D), negatives (B, N, D).

        `index_select` rather than the embedding op: its backward is one `index_add_`, several
        times cheaper on CPU than the embedding's dense backward.
        """
        u = self.user_emb.weight.index_select(0, users)  # (B, D)
        p = self.item_emb.weight.index_select(0, pos)  # (B, D)
        n = self.item_emb.weight.index_select(0, neg.reshape(-1)).view(*neg.shape, -1)  # (B, N, D)
        return u, p, n


@register("bpr")
class BPRMF(FactorVectors, TorchRecommender[BPRConfig]):
    """Bayesian personalized ranking matrix factorization, trained by the `Trainer`.

    A new history is folded in: its user vector is the implicit-ALS ridge solve over the fixed
    item embeddings (history items confidence 1 + FOLD_ALPHA, the rest 1), scores <p, q_i>.
    """

    history_mode = "fold_in"
    test_config: ClassVar[dict[str, Any]] = {"embedding_size": 8, "epochs": 20, "lr": 0.01}
    pretrained_rows: ClassVar[dict[str, str] | None] = {
        "user_emb.weight": "users",
        "item_emb.weight": "items",
    }

    def build_module(self) -> MatrixFactorization:
        """Tables sized from the fitted vocabularies."""
        cfg = self.config
        return MatrixFactorization(
            len(self.users_), len(self.items_), cfg.embedding_size, cfg.init_std
        )

    def prepare_data(self, train: Dataset) -> None:
        """The sampler of each user's negatives."""
        self._sampler = NegativeSampler(self.seen_, self.config.neg_alpha)

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Batch]:
        """(users (B,), positives (B,), negatives (B, N)): every training pair once."""
        cfg = self.config
        all_users, all_items = positive_pairs(self.seen_, "pairs", rng)
        draw = max(cfg.batch_size, PAIRS_PER_DRAW // cfg.batch_size * cfg.batch_size)
        for start in range(0, len(all_users), draw):
            users = all_users[start : start + draw]
            negatives = self._sampler.sample(users, cfg.n_negatives, rng)
            u = torch.from_numpy(users).to(self.device)
            p = torch.from_numpy(all_items[start : start + draw]).to(self.device)
            n = torch.from_numpy(negatives).to(self.device)
            for lo in range(0, len(users), cfg.batch_size):
                hi = lo + cfg.batch_size
                yield u[lo:hi], p[lo:hi], n[lo:hi]

    def compute_loss(self, batch: Batch) -> torch.Tensor:
        """BPR (or BCE) over the batch's positive/negative pairs plus the L2 penalty."""
        users, pos, neg = batch
        u, p, n = self.module_(users, pos, neg)
        if self.config.loss == "bpr":
            # s_pos - s_neg = <u, p - n>: one product instead of two (a third less work).
            margin = (u[:, None, :] * (p[:, None, :] - n)).sum(dim=-1)  # (B, N)
            loss = bpr_loss(margin, margin.new_zeros(()))
        else:
            pos_scores = (u * p).sum(dim=-1, keepdim=True)  # (B, 1)
            neg_scores = (u[:, None, :] * n).sum(dim=-1)  # (B, N)
            logits = torch.cat([pos_scores, neg_scores], dim=1)  # (B, 1 + N)
            labels = torch.zeros_like(logits)
            labels[:, 0] = 1.0
            loss = bce_loss(logits, labels)
        if self.config.reg:
            loss = loss + self.config.reg * l2_penalty(u, p, n) / len(users)
        return loss

    def invalidate_cache(self) -> None:
        """Drop the cached embedding tables (they change after every epoch)."""
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user table (U, D), item table (I, D)), detached, cached until the next epoch."""
        self._check_fitted()
        if getattr(self, "_tables", None) is None:
            module = self.module_
            self._tables = (module.user_emb.weight.detach(), module.item_emb.weight.detach())
        assert self._tables is not None
        return self._tables

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Dot products (len(user_idx), n_items or len(item_idx)): one matrix product."""
        user_table, item_table = self.embeddings()
        users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=user_table.device)
        items = item_table
        if item_idx is not None:
            items = item_table[torch.as_tensor(np.asarray(item_idx, dtype=np.int64))]
        with torch.no_grad():
            return user_table[users] @ items.T

    def fold_in(self, history: sp.csr_matrix) -> torch.Tensor:
        """(Q, D) user vectors of histories: (Q^T Q + a Q_h^T Q_h + l I) p = (1 + a) Q_h^T 1."""
        _, item_table = self.embeddings()
        return implicit_users(history, item_table, FOLD_ALPHA, FOLD_L2)

    def item_vectors(self) -> np.ndarray:
        return as_array(self.embeddings()[1])

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        return as_array(self.embeddings()[0][np.asarray(user_idx, dtype=np.int64)])

    def history_contributions(self, history: sp.csr_matrix, item: int) -> np.ndarray:
        """(nnz,) exact share of each history item in the folded-in score of `item`."""
        return implicit_contributions(history, self.embeddings()[1], FOLD_ALPHA, FOLD_L2, item)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Dot products of the folded-in user vectors with the items (Q, n_items or len)."""
        _, item_table = self.embeddings()
        items = item_table
        if item_idx is not None:
            items = item_table[torch.as_tensor(np.asarray(item_idx, dtype=np.int64))]
        with torch.no_grad():
            return self.fold_in(history) @ items.T
