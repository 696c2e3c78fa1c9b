"""Queries: ids to a CSR of histories, fresh events, per-query candidates, the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import contract
from tuijian.data import Dataset
from tuijian.errors import DataError, UnknownIdError
from tuijian.models.base import Recommender
from tuijian.models.query import Query, QueryBatch
from tuijian.models.registry import get_model


@pytest.fixture(scope="module")
def data() -> Dataset:
    return contract.contract_dataset()


@pytest.fixture(scope="module")
def model(data: Dataset) -> Recommender:
    return get_model("itemknn", k_neighbors=5).fit(data)


def test_known_user_history_is_training_row_plus_fresh_items(model, data: Dataset) -> None:
    batch = QueryBatch.build(
        model,
        [
            Query(user_id="u00"),
            Query(user_id="u00", items=["i11", "i11", "nope"], weights=[1.0, 2.0, 5.0]),
            Query(user_id="u00", items=["i11"], training_history=False),
        ],
    )
    train_row = data.matrix[data.users.index("u00")].toarray()[0]
    i11 = data.items.index("i11")[0]
    expected = train_row.copy()
    expected[i11] += 3.0  # duplicates summed, the unknown item ignored
    np.testing.assert_allclose(batch.history[0].toarray()[0], train_row)
    np.testing.assert_allclose(batch.history[1].toarray()[0], expected)
    assert batch.history[2].indices.tolist() == [i11]
    assert batch.own_history.tolist() == [True, False, False]
    assert batch.user_idx.tolist() == [data.users.index("u00")[0]] * 3
    assert batch.given.items.tolist() == [i11, i11, i11]  # the order given, unknown id dropped
    assert batch.training.tolist() == [True, True, False]  # what sequence models start from
    assert batch.rows(1, 3).training.tolist() == [True, False]
    assert QueryBatch.for_users(model, np.array([0, 1])).training.tolist() == [True, True]


def test_anonymous_and_empty_queries(model) -> None:
    batch = QueryBatch.build(model, [Query(items=["i01", "i02"]), Query()])
    assert batch.user_idx.tolist() == [-1, -1]
    assert batch.empty.tolist() == [False, True]


def test_unknown_ids_raise_where_they_matter(model) -> None:
    with pytest.raises(UnknownIdError, match="ghost"):
        QueryBatch.build(model, [Query(user_id="ghost")])
    with pytest.raises(UnknownIdError, match="i-none"):
        QueryBatch.build(model, [Query(items=["i01"], candidates=["i-none"])])
    with pytest.raises(DataError, match="2 weights for 1 items"):
        Query(items=["i01"], weights=[1.0, 2.0])


def test_fresh_item_is_excluded_and_changes_the_list(model) -> None:
    (before,) = model.recommend("u00", 5)
    fresh = before.ids[0]
    (after,) = model.recommend(Query(user_id="u00", items=[fresh]), 5)
    assert fresh not in after.ids.tolist()
    assert after.ids.tolist() != before.ids.tolist()
    assert after.source == "itemknn"


def test_nobody_gets_the_flagged_popularity_fallback(model, data: Dataset) -> None:
    (items,) = model.recommend(Query(), 3)
    assert items.source == "popularity"
    popular = np.argsort(-data.item_popularity, kind="stable")[:3]
    assert items.idx.tolist() == popular.tolist()


def test_candidates_per_query(model) -> None:
    lists = model.recommend(
        [Query(user_id="u00", candidates=["i10", "i11"]), Query(user_id="u01")],
        5,
        candidates=["i06", "i07", "i08"],
    )
    assert set(lists[0].ids.tolist()) <= {"i10", "i11"}
    assert set(lists[1].ids.tolist()) <= {"i06", "i07", "i08"}
