"""The faiss vector index: recall against exact search, exclusions, and the service path that
uses it for a dot-product model (history left out, a fresh event changes the answer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tuijian.models.query import Query, QueryBatch
from tuijian.serving.ann import VectorIndex, default_nlist
from tuijian.serving.engine import Served
from tuijian.serving.events import Event


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    """20,000 clustered 16-dim item vectors and 200 query vectors."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 16)).astype(np.float32)
    items = centres[rng.integers(0, 50, 20_000)] + 0.8 * rng.standard_normal((20_000, 16))
    queries = centres[rng.integers(0, 50, 200)] + 0.3 * rng.standard_normal((200, 16))
    return items.astype(np.float32), queries.astype(np.float32)


def test_recall_at_10_against_exact_search(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = vectors
    index = VectorIndex.build(items)
    assert index.index.nlist == default_nlist(len(items))
    found, scores = index.search(queries, 10)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    recall = np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(
        scores[:, 0], (queries @ items.T)[np.arange(200), found[:, 0]], rtol=1e-4, atol=1e-4
    )
    assert np.all(np.diff(scores, axis=1) <= 1e-5)


def test_search_leaves_out_excluded_items(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = vectors
    index = VectorIndex.build(items)
    first, _ = index.search(queries[:2], 10)
    again, _ = index.search(queries[:2], 10, [first[0, :5], np.array([], np.int64)])
    assert not set(again[0]) & set(first[0, :5])
    assert again[0, :5].tolist() == first[0, 5:].tolist()
    assert again[1].tolist() == first[1].tolist()


def test_service_answers_from_the_index(shop: Path) -> None:
    exact = Served.load(shop / "models" / "als")
    served = Served.load(shop / "models" / "als", ann_min_items=1)
    assert exact.index is None and served.index is not None
    model = served.model
    overlap = []
    for user in model.users_.ids[:30].tolist():
        query = Query(user_id=user)
        got = served.recommend(query, 10)
        seen = set(model.items_.id(QueryBatch.build(model, [query]).history.indices).tolist())
        assert len(got) == 10 and not set(got.ids.tolist()) & seen
        overlap.append(len(set(got.ids) & set(exact.recommend(query, 10).ids)) / 10)
    assert np.mean(overlap) >= 0.95
    user = model.users_.ids[0]
    top = served.recommend(Query(user_id=user), 10).ids[0]
    fresh = served.query(user, [Event(user, str(top), "buy", 1e10, None)])
    assert top not in served.recommend(fresh, 10).ids
    assert served.recommend(Query(items=[]), 5).source == "popularity"
