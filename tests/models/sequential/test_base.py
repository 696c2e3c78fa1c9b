"""Sequence batching and query sequences: padding once, length-grouped batches, sessions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from tests.models import contract
from tuijian.data import Columns, Dataset, build_dataset
from tuijian.models.query import Query, QueryBatch
from tuijian.models.sequential import SequenceRecommender
from tuijian.models.sequential.base import left_pad

C = Columns
N_CYCLE = 8  # items of the cycle i0 -> i1 -> ... -> i7 -> i0


def test_left_pad_keeps_the_newest_items_right_aligned() -> None:
    indptr = np.array([0, 3, 3, 8])
    items = np.array([1, 2, 3, 10, 11, 12, 13, 14])
    out = left_pad(indptr, items, 4, pad=99)
    assert out.tolist() == [[99, 1, 2, 3], [99, 99, 99, 99], [11, 12, 13, 14]]


@pytest.fixture(scope="module")
def cycle() -> Dataset:
    """Every user walks a stretch of one cycle of items: the next item is always known."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        start, length = int(rng.integers(N_CYCLE)), int(rng.integers(3, 7))
        for t in range(length):
            rows.append((f"u{u:02d}", f"i{(start + t) % N_CYCLE}", t))
    frame = pl.DataFrame(rows, schema=[C.user_id, C.item_id, C.timestamp], orient="row")
    return build_dataset(frame, name="cycle")


@pytest.fixture(scope="module", params=["sasrec", "gru4rec", "bert4rec"])
def fitted(request: pytest.FixtureRequest, cycle: Dataset) -> SequenceRecommender:
    model = contract.fit_tiny(request.param, cycle, epochs=40, dropout=0.0)
    assert isinstance(model, SequenceRecommender)
    return model


def test_known_answer_next_item_of_a_session(fitted: SequenceRecommender) -> None:
    """An anonymous session i2, i3, i4 gets i5 first; the order matters, not the bag."""
    (forward,) = fitted.recommend(Query(items=["i2", "i3", "i4"]), 1, exclude_seen=False)
    assert forward.ids.tolist() == ["i5"]
    reversed_too = [Query(items=["i2", "i3", "i4"]), Query(items=["i4", "i3", "i2"])]
    scores = fitted.score_queries(QueryBatch.build(fitted, reversed_too))
    assert (scores[0] - scores[1]).abs().max() > 0.1  # the same bag in another order
    (after_seven,) = fitted.recommend(Query(items=["i5", "i6", "i7"]), 1, exclude_seen=False)
    assert after_seven.ids.tolist() == ["i0"]


def test_batches_are_whole_sequences_grouped_by_length(fitted: SequenceRecommender) -> None:
    rng = np.random.default_rng(1)
    batches = list(fitted.batches(None, rng))  # type: ignore[arg-type]
    rows = sorted(tuple(int(x) for x in row if x != fitted.pad) for b in batches for row in b)
    expected = sorted(tuple(int(x) for x in row if x != fitted.pad) for row in fitted.train_seqs)
    assert rows == expected  # every sequence once per epoch, whole
    for b in batches:  # no column is padding in every row
        assert (b[:, 0] != fitted.pad).any()


def test_query_sequence_is_training_history_then_session(
    fitted: SequenceRecommender, cycle: Dataset
) -> None:
    user = cycle.users.ids[0]
    train = cycle.user_sequence(0)
    queries = [
        Query(user_id=user),
        Query(user_id=user, items=["i1", "i7"]),
        Query(user_id=user, items=["i1", "i7"], training_history=False),
        Query(items=["i7", "i1"]),
    ]
    seqs = fitted.query_sequences(QueryBatch.build(fitted, queries))
    real = [row[row != fitted.pad].tolist() for row in seqs]
    i1, i7 = cycle.items.index(["i1", "i7"]).tolist()
    assert real[0] == train.tolist()
    assert real[1] == [*train.tolist(), i1, i7][-fitted.config.max_len :]
    assert real[2] == [i1, i7]
    assert real[3] == [i7, i1]


def test_session_scores_move_with_each_event(fitted: SequenceRecommender) -> None:
    batch = QueryBatch.build(fitted, [Query(items=["i1"]), Query(items=["i1", "i2"])])
    scores = fitted.score_queries(batch)
    assert scores.shape == (2, fitted.n_items)
    assert not torch.allclose(scores[0], scores[1])
