"""The evaluator on a hand-made split and a model whose scores are fixed."""

from typing import Any

import numpy as np
import polars as pl
import pytest

from tuijian.data import Columns, Split, build_dataset
from tuijian.evaluation import evaluate, evaluate_ratings, evaluate_sampled
from tuijian.evaluation.evaluate import hit_matrix
from tuijian.models.base import Recommender

C = Columns


class FixedScores(Recommender):
    """Scores item j as n_items - j for every user: item 0 is always best."""

    name = "fixed-test"

    def _fit(self, train: Any, *, valid: Any, trainer: Any) -> None:
        self.order_ = np.arange(train.n_items, 0, -1, dtype=np.float32)

    def score(self, user_idx, item_idx=None):
        row = self.order_ if item_idx is None else self.order_[item_idx]
        return np.tile(row, (len(user_idx), 1))


@pytest.fixture
def split() -> Split:
    frame = pl.DataFrame(
        {
            C.user_id: ["a", "a", "a", "b", "b", "a", "b", "b", "a"],
            C.item_id: ["0", "1", "2", "0", "3", "4", "1", "2", "3"],
            C.rating: [5.0, 3.0, 4.0, 1.0, 2.0, 4.0, 5.0, 3.0, 2.0],
        }
    )
    extra = pl.DataFrame({C.item_id: ["5", "6", "7"]})
    ds = build_dataset(frame, item_features=extra)
    inter = ds.interactions
    # a: train {0,1}, valid {3}, test {2,4}; b: train {0,3}, test {1,2}
    train = inter[[0, 1, 3, 4]]
    valid = inter[[8]]
    test = inter[[2, 5, 6, 7]]
    return Split(
        train=ds.with_interactions(train, "train"),
        valid=ds.with_interactions(valid, "valid"),
        test=ds.with_interactions(test, "test"),
        protocol={"name": "hand"},
    )


def test_full_ranking_excludes_train_and_valid(split):
    model = FixedScores().fit(split.train)
    res = evaluate(model, split, ks=(1, 2), beyond_accuracy=True)
    # a ranks [2, 4] after excluding 0, 1 (train) and 3 (valid): both hits
    # b ranks [1, 2] after excluding 0, 3: both hits
    assert res["precision@2"] == 1.0
    assert res["recall@1"] == 0.5
    assert res["ndcg@2"] == pytest.approx(1.0)
    assert res.protocol["name"] == "full-ranking"
    assert res.protocol["excluded"] == ["train", "valid"]
    assert res.per_user.height == 2
    assert res["coverage@2"] == pytest.approx(3 / 8)  # items {1, 2, 4} of 8


def test_valid_part_excludes_train_only(split):
    model = FixedScores().fit(split.train)
    res = evaluate(model, split, part="valid", ks=(1, 3), beyond_accuracy=False)
    # a's valid item 3 ranks second among {2, 3, 4, ...}
    assert res["hit@1"] == 0.0
    assert res["mrr@3"] == pytest.approx(0.5)


def test_hit_matrix_lookup():
    import scipy.sparse as sp

    truth = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    top = np.array([[2, 1, -1], [1, 0, 2]])
    hits = hit_matrix(top, np.array([0, 1]), truth)
    assert hits.tolist() == [[1, 0, 0], [1, 0, 0]]


def test_sampled_is_labelled(split):
    model = FixedScores().fit(split.train)
    res = evaluate_sampled(model, split, n_negatives=1, ks=(1,), seed=3)
    assert res.protocol["name"] == "sampled"
    assert all(key.startswith("sampled_") for key in res.summary)


def test_rating_metrics(split):
    model = FixedScores().fit(split.train)
    res = evaluate_ratings(model, split)
    pred = np.array([6.0, 4.0, 7.0, 6.0])  # fixed scores of items 2, 4, 1, 2 (n_items - j)
    actual = np.array([4.0, 4.0, 5.0, 3.0])
    assert res["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - actual) ** 2))))
