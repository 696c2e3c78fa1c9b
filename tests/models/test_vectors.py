"""Dot-product models (factor models and the two-tower): query vectors reproduce the scores,
and the per-history-item contributions of a ridge fold-in sum to the folded-in score."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tuijian.data.dataset import Dataset
from tuijian.models.query import Query, QueryBatch
from tuijian.models.registry import get_model
from tuijian.models.vectors import DotProduct

CONFIGS = {
    "als": {"factors": 8, "iterations": 5, "num_threads": 1},
    "bpr": {"embedding_size": 8, "epochs": 2},
    "lightgcn": {"embedding_size": 8, "epochs": 2},
    "twotower": {"dim": 8, "epochs": 2},
}


RIDGE_FOLD_INS = ("als", "bpr", "lightgcn")


@functools.cache
def fitted_on(name: str, shop_data: Dataset) -> DotProduct:
    return get_model(name, **CONFIGS[name]).fit(shop_data)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_query_vectors_reproduce_scores(name: str, shop_data: Dataset) -> None:
    fitted = fitted_on(name, shop_data)
    users = np.arange(5)
    known = QueryBatch.for_users(fitted, users)
    given = QueryBatch.build(fitted, [Query(items=shop_data.items.id([3, 7, 11]).tolist())])
    items = fitted.item_vectors()
    assert items.shape[0] == fitted.n_items and items.dtype == np.float32
    np.testing.assert_allclose(
        fitted.query_vectors(known) @ items.T,
        fitted.score_queries(known).numpy(),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        fitted.query_vectors(given) @ items.T,
        fitted.score_queries(given).numpy(),
        rtol=1e-3,
        atol=1e-4,
    )


@pytest.mark.parametrize("name", RIDGE_FOLD_INS)
def test_contributions_sum_to_the_folded_in_score(name: str, shop_data: Dataset) -> None:
    fitted = fitted_on(name, shop_data)
    history = shop_data.matrix[[4]].astype(np.float32)
    target = int(np.setdiff1d(np.arange(fitted.n_items), history.indices)[0])
    parts = fitted.history_contributions(history, target)
    assert parts.shape == (history.nnz,)
    score = float(np.asarray(fitted.score_history(history, np.array([target])))[0, 0])
    assert parts.sum() == pytest.approx(score, rel=1e-3, abs=1e-5)


def test_a_dot_product_model_must_define_its_vectors() -> None:
    class Half(DotProduct):
        def item_vectors(self) -> np.ndarray:
            return np.zeros((1, 1), np.float32)

    with pytest.raises(TypeError, match="query_vectors"):
        Half()
