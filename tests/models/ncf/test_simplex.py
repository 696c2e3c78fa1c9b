"""SimpleX: the cosine contrastive loss by hand, cosine scores, ml-100k."""

from __future__ import annotations

import numpy as np
import torch

from tests.models import contract
from tuijian.models.ncf.simplex import SimpleX, cosine_contrastive_loss
from tuijian.models.query import QueryBatch


def test_loss_matches_its_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    u, p, n = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen), None
    n = torch.randn(3, 5, 4, generator=gen)
    got = cosine_contrastive_loss(u, p, n, margin=0.2, weight=3.0)
    want = 0.0
    for b in range(3):
        pos = torch.nn.functional.cosine_similarity(u[b], p[b], dim=0)
        negs = torch.nn.functional.cosine_similarity(u[b][None, :], n[b], dim=1)
        want += (1 - pos) + 3.0 * torch.clamp(negs - 0.2, min=0).mean()
    torch.testing.assert_close(got, want / 3)


def test_negatives_under_the_margin_give_no_gradient() -> None:
    u = torch.tensor([[1.0, 0.0]], requires_grad=True)
    p = torch.tensor([[1.0, 0.0]])
    n = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]], requires_grad=True)  # cosines 0 and -1
    cosine_contrastive_loss(u, p, n, margin=0.5, weight=10.0).backward()
    assert n.grad is not None and torch.all(n.grad == 0)


def test_scores_are_cosines() -> None:
    data = contract.contract_dataset()
    model = contract.fit_tiny("simplex", data)
    assert isinstance(model, SimpleX)
    scores = np.asarray(model.score(np.arange(data.n_users)))
    assert np.all(np.abs(scores) <= 1.0 + 1e-5)
    users = model.module_.user_emb.weight.detach()
    items = model.module_.item_emb.weight.detach()
    want = (
        torch.nn.functional.normalize(users, dim=-1)
        @ torch.nn.functional.normalize(items, dim=-1).T
    )
    np.testing.assert_allclose(scores, want.numpy(), atol=1e-6)


def test_simplex_beats_popularity_on_ml100k() -> None:
    ndcg = contract.ml100k_ndcg("simplex", epochs=3, n_negatives=20, lr=0.05)
    assert ndcg > contract.ml100k_ndcg("pop") + 0.1, ndcg  # measured 0.379 vs 0.212


def test_query_vectors_give_the_scores() -> None:
    """The vectors the service indexes (`query_vectors` @ `item_vectors`) rank as `score`."""
    data = contract.contract_dataset()
    model = contract.fit_tiny("simplex", data)
    users = np.arange(data.n_users)
    vectors = model.query_vectors(QueryBatch.for_users(model, users))
    np.testing.assert_allclose(
        vectors @ model.item_vectors().T, np.asarray(model.score(users)), atol=1e-5
    )
