"""The evaluator on a hand-made split and a model whose scores are fixed."""

from typing import Any

import numpy as np
import polars as pl
import pytest

from tuijian.data import Columns, Split, build_dataset
from tuijian.evaluation import evaluate, evaluate_ranking, evaluate_ratings, evaluate_sampled
from tuijian.evaluation.evaluate import contains, hit_matrix
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
    ds = build_dataset(frame, item_features=extra, catalogue="features")
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
    assert contains(top, np.array([0, 1]), truth).tolist() == hits.tolist()


def test_hit_matrix_agrees_with_lookup_on_random_lists():
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    truth = sp.random(40, 30, density=0.2, format="csr", random_state=5)
    truth.data[:] = 1.0
    truth.sort_indices()
    users = rng.choice(40, size=25, replace=False)
    top = np.argsort(rng.random((25, 30)), axis=1)[:, :8]
    top[rng.random((25, 8)) < 0.1] = -1  # short lists: padding
    hits = hit_matrix(top, users, truth)
    assert hits.sum() > 0
    assert np.array_equal(hits, contains(top, users, truth))
    # repeats are allowed in the lookup, not in top-k lists
    assert contains(np.array([[2, 2]]), np.array([0]), truth).shape == (1, 2)


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


class CoCounts(Recommender):
    """Scores a history by item co-occurrence in train, +10 on the history's own items (so an
    unmasked history item would rank first); scoring a user by id is an error here."""

    name = "cocounts-test"

    def _fit(self, train: Any, *, valid: Any, trainer: Any) -> None:
        x = (train.matrix > 0).astype(np.float32).toarray()
        self.co_ = x.T @ x - np.diag(x.sum(axis=0)) + 10 * np.eye(train.n_items)

    def score(self, user_idx, item_idx=None):
        raise AssertionError("held-out users must be scored from their history, not by id")

    def score_history(self, history, item_idx=None):
        out = history.toarray() @ self.co_
        return out if item_idx is None else out[:, item_idx]


@pytest.fixture
def users_split() -> Split:
    # train users t1..t4; test users h1, h2 and valid user v1 are held out of training,
    # written as "history|truth"
    rows = {
        "t1": "01", "t2": "012", "t3": "34", "t4": "345",
        "h1": "0|1", "h2": "3|5", "v1": "4|3",
    }  # fmt: skip
    tagged = []
    for user, items in rows.items():
        history, _, truth = items.partition("|")
        held = "valid" if user == "v1" else "test"
        tag = "train" if not truth else f"{held}_history"
        tagged += [(user, i, tag) for i in history] + [(user, i, held) for i in truth]
    ds = build_dataset(pl.DataFrame(tagged, schema=[C.user_id, C.item_id, "tag"], orient="row"))

    def take(tag: str):
        return ds.with_interactions(ds.interactions.filter(pl.col("tag") == tag), tag)

    return Split(
        train=take("train"),
        test=take("test"),
        valid=take("valid"),
        protocol={"name": "users"},
        histories={"test": take("test_history"), "valid": take("valid_history")},
    )


def test_held_out_users_are_ranked_from_their_history(users_split):
    model = CoCounts().fit(users_split.train)
    res = evaluate(model, users_split, ks=(1, 2), metrics=("hit", "mrr", "ndcg"))
    # h1 history {0}: 1 co-occurs twice, 2 once -> [1, 2], truth 1 hit at rank 1;
    # h2 history {3}: 4 twice, 5 once -> [4, 5], truth 5 hit at rank 2 (3 itself is hidden)
    assert res["hit@1"] == 0.5
    assert res["mrr@2"] == pytest.approx(0.75)
    assert res["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert res.per_user[C.user_id].to_list() == ["h1", "h2"]
    assert res.protocol["queries"] == "held-out users"
    assert res.protocol["excluded"] == ["history"]
    assert res["coverage@2"] == pytest.approx(4 / 6)  # items {1, 2, 4, 5}
    valid = evaluate(model, users_split, part="valid", ks=(1,), metrics=("hit",))
    assert valid["hit@1"] == 1.0  # v1 history {4}: 3 co-occurs twice, the truth
    # the Trainer's path: a Holdout's truth and history through evaluate_ranking
    held = users_split.holdout("test")
    direct = evaluate_ranking(
        model, held.truth, exclude=[users_split.train], history=held.history, ks=(1, 2)
    )
    assert direct["mrr@2"] == res["mrr@2"] and direct.protocol["queries"] == "held-out users"


def test_trainer_validates_held_out_users_from_histories(shop_users_split):
    from tuijian.models.registry import get_model
    from tuijian.training import Trainer

    split = shop_users_split
    trainer = Trainer(threads=1, progress=False)
    config = {"epochs": 4, "batch_size": 50, "valid_metric": "ndcg@10", "patience": 10}
    model = get_model("multvae", **config).fit(
        split.train, valid=split.validation(), trainer=trainer
    )
    # the best epoch's weights are kept: its validation score is what `evaluate` gives now
    valid = evaluate(model, split, part="valid", ks=(10,), metrics=("ndcg",))
    assert trainer.history.best_score == pytest.approx(valid["ndcg@10"])
    assert valid.protocol["queries"] == "held-out users"
    # scored by id (no training rows), held-out users would all get the popularity fallback
    by_id = evaluate_ranking(model, split.valid, exclude=[split.train], ks=(10,))
    pop = evaluate_ranking(get_model("pop").fit(split.train), split.valid, ks=(10,))
    assert by_id["ndcg@10"] == pytest.approx(pop["ndcg@10"])
    assert by_id["ndcg@10"] < valid["ndcg@10"]
