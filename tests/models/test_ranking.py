"""The one ranking path: deterministic tie-break, clipped k, per-query candidates and exclusions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tests.models import contract
from tuijian.data import Dataset
from tuijian.evaluation.evaluate import evaluate_ranking
from tuijian.models.query import QueryBatch
from tuijian.models.ranking import rank, topk_ordered
from tuijian.models.registry import get_model


def reference_order(block: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of each row by (score descending, column ascending), by lexsort."""
    cols = np.arange(block.shape[1])
    return np.stack([np.lexsort((cols, -row))[:k] for row in block])


@pytest.mark.parametrize("k", [1, 3, 5, 8, 12])
def test_topk_ordered_breaks_ties_by_index(k: int) -> None:
    rng = np.random.default_rng(0)
    block = rng.integers(0, 3, size=(50, 12)).astype(np.float32)  # many ties at every cut
    vals, idx = topk_ordered(torch.from_numpy(block.copy()), k)
    expected = reference_order(block, k)
    np.testing.assert_array_equal(idx.numpy(), expected)
    np.testing.assert_array_equal(vals.numpy(), np.take_along_axis(block, expected, axis=1))


def test_topk_ordered_prefix_is_independent_of_k() -> None:
    block = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 2.0]])
    _, top2 = topk_ordered(block.clone(), 2)
    _, top5 = topk_ordered(block.clone(), 5)
    assert top2[0].tolist() == [1, 2]
    assert top5[0].tolist() == [1, 2, 3, 5, 0]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return contract.contract_dataset()


@pytest.fixture(scope="module")
def pop(data: Dataset):
    return get_model("pop").fit(data)


def test_k_larger_than_catalogue_is_clipped(pop, data: Dataset) -> None:
    ranking = rank(pop, QueryBatch.for_users(pop, np.arange(3)), 10**9)
    assert ranking.idx.shape == (3, data.n_items)
    (items,) = pop.recommend(data.users.ids[0], 10**9)
    assert len(items) == data.n_items - len(contract.seen_ids(data, data.users.ids[0]))


def test_per_query_candidates_and_exclusions(pop, data: Dataset) -> None:
    n = data.n_items
    cand = sp.csr_matrix((np.ones(4, np.float32), ([0, 0, 1, 1], [1, 2, 3, 4])), shape=(2, n))
    excl = sp.csr_matrix((np.ones(1, np.float32), ([1], [4])), shape=(2, n))
    empty = sp.csr_matrix((2, n), dtype=np.float32)
    ranking = rank(pop, QueryBatch.from_history(empty, candidates=cand, exclude=excl), 5)
    assert set(ranking.idx[0][ranking.idx[0] >= 0]) == {1, 2}
    assert ranking.idx[1][ranking.idx[1] >= 0].tolist() == [3]
    assert ranking.fallback.tolist() == [True, True]


def test_same_metric_at_10_whatever_other_cutoffs(data: Dataset) -> None:
    """Popularity ties everywhere on this data; NDCG@10 must not depend on the other ks."""
    model = get_model("pop").fit(data)
    results = [
        evaluate_ranking(model, data, ks=ks, metrics=("ndcg", "recall"), beyond_accuracy=False)
        for ks in [(10,), (10, 20), (1, 5, 10, 50)]
    ]
    for key in ("ndcg@10", "recall@10"):
        values = {r.summary[key] for r in results}
        assert len(values) == 1, (key, values)


def test_recommend_lists_are_the_evaluated_lists(data: Dataset) -> None:
    model = get_model("pop").fit(data)
    users = np.arange(data.n_users)
    evaluated = rank(model, QueryBatch.for_users(model, users), 4).idx
    served = [lst.idx.tolist() for lst in model.recommend(data.users.ids.tolist(), 4)]
    assert evaluated.tolist() == served


def test_nan_scores_never_rank_first(data: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that returns NaN for some items: those rank like hidden items, never first."""
    model = get_model("pop").fit(data)
    n = data.n_items
    nan_cols = [0, 3]

    def score_queries(queries: QueryBatch, item_idx: np.ndarray | None = None) -> torch.Tensor:
        block = torch.arange(len(queries) * n, dtype=torch.float32).view(len(queries), n) % n
        block[:, nan_cols] = torch.nan  # NaN sorts above every number in torch.topk
        return block if item_idx is None else block[:, torch.from_numpy(item_idx)]

    monkeypatch.setattr(model, "score_queries", score_queries)
    empty = sp.csr_matrix((2, n), dtype=np.float32)
    ranking = rank(model, QueryBatch.from_history(empty), n)
    assert ranking.idx[:, 0].tolist() == [n - 1, n - 1]
    assert not np.isin(ranking.idx, nan_cols).any()
    assert not np.isnan(ranking.scores).any()
    (items,) = model.recommend(data.users.ids[0], 3, exclude_seen=False)
    assert not set(items.idx.tolist()) & set(nan_cols)


def test_nan_rows_are_redone_and_others_left_alone(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only rows whose top-k holds a NaN are cleaned: one all-NaN row ranks nothing, one row
    with a NaN ranks the numbers, a clean row is as before."""
    model = get_model("pop").fit(data)
    n = data.n_items
    clean = torch.linspace(0.0, 1.0, n)

    def score_queries(queries: QueryBatch, item_idx: np.ndarray | None = None) -> torch.Tensor:
        block = torch.stack([clean, clean, clean])
        block[0] = torch.nan
        block[1, n - 1] = torch.nan
        return block

    monkeypatch.setattr(model, "score_queries", score_queries)
    ranking = rank(model, QueryBatch.from_history(sp.csr_matrix((3, n), dtype=np.float32)), 3)
    assert ranking.idx.tolist() == [[-1, -1, -1], [n - 2, n - 3, n - 4], [n - 1, n - 2, n - 3]]
    assert np.isneginf(ranking.scores[0]).all()
