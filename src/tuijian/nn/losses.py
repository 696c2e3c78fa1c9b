"""Losses in one place; each is the textbook formula, checked numerically in the tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def mse_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error; with `mask`, only observed entries count (AutoRec)."""
    err = (pred - target) ** 2
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pointwise binary cross-entropy on logits (positives 1, sampled negatives 0)."""
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalized ranking: -mean log sigmoid(s_pos - s_neg)."""
    return -F.logsigmoid(pos - neg).mean()


def softmax_ce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multinomial log-likelihood over all items: -sum_i t_i log softmax(logits)_i, per row mean.

    `targets` is a (B, I) row of counts / weights (Mult-VAE, Mult-DAE) or a (B,) class index
    (next-item sequence models).
    """
    log_probs = F.log_softmax(logits, dim=-1)
    if targets.dim() == 1:
        return F.nll_loss(log_probs, targets)
    return -(log_probs * targets).sum(dim=-1).mean()


CE_CHUNK_FLOATS = 1 << 23
"""Logits held at once by `chunked_cross_entropy` (32 MB in fp32)."""


def _ce_sum(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy((h @ weight.T).float(), targets, reduction="sum")


def chunked_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, budget: int = CE_CHUNK_FLOATS
) -> torch.Tensor:
    """Mean softmax cross-entropy of `h @ weight.T` (N, I) against `targets` (N,), computed in
    row chunks of at most `budget` logits whose logits are recomputed in backward
    (checkpointing): the (N, I) logits, their fp32 copy and gradient never exist at once."""
    rows = max(1, budget // weight.shape[0])
    if len(h) <= rows or not torch.is_grad_enabled():
        return _ce_sum(h, weight, targets) / max(1, len(h))
    total = h.new_zeros((), dtype=torch.float32)
    for start in range(0, len(h), rows):
        part = slice(start, start + rows)
        total = total + checkpoint(_ce_sum, h[part], weight, targets[part], use_reentrant=False)
    return total / len(h)


def sampled_softmax_loss(
    query: torch.Tensor,
    item_emb: torch.Tensor,
    log_q: torch.Tensor | None = None,
    temperature: float = 1.0,
    duplicates: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch sampled softmax with logQ correction (Yi et al. 2019).

    Row b of `query` (B, D) should pick column b of `item_emb` (B, D) among the batch's items;
    `log_q` (B,) is the log sampling probability of each batch item, subtracted from its logit
    so popular items are not over-penalised; `duplicates` (B, B) True where column j is the
    same item as the positive of row b (other than j == b), masked out.
    """
    logits = query @ item_emb.T / temperature  # (B, B)
    if log_q is not None:
        logits = logits - log_q[None, :]
    if duplicates is not None:
        logits = logits.masked_fill(duplicates, float("-inf"))
    labels = torch.arange(len(query), device=query.device)
    return F.cross_entropy(logits, labels)


def in_batch_duplicates(item_idx: torch.Tensor) -> torch.Tensor:
    """(B, B) mask for `sampled_softmax_loss`: True where column j repeats row b's positive.

    With in-batch negatives, an item that is the positive of several rows would otherwise be
    counted as a negative of its own row; the diagonal (the positive itself) stays False.
    """
    same = item_idx[:, None] == item_idx[None, :]
    return same & ~torch.eye(len(item_idx), dtype=torch.bool, device=item_idx.device)


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """Half the summed squares of the tensors (regularization of the batch's embeddings)."""
    return torch.stack([t.pow(2).sum() for t in tensors]).sum() / 2


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over dimensions, mean over rows (Mult-VAE)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()
