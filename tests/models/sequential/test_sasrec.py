"""SASRec: learns a known next-item rule, recommends from any session, beats popularity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.sequential.cycles import cycle_dataset, next_id
from tuijian.data import Dataset, Split, leave_last_out_split
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.io import load_model
from tuijian.models.query import Query
from tuijian.models.registry import get_model
from tuijian.models.sequential import SASRec

SMALL = {"max_len": 8, "hidden_size": 16, "n_layers": 1, "lr": 1e-2, "batch_size": 16}


@pytest.fixture(scope="module")
def cycles() -> Dataset:
    return cycle_dataset()


@pytest.fixture(scope="module")
def model(cycles: Dataset) -> SASRec:
    return SASRec(epochs=40, dropout=0.0, **SMALL).fit(cycles)


def test_anonymous_session_gets_the_next_item_and_not_its_own(model: SASRec) -> None:
    for session in (["i03", "i04", "i05"], ["i08", "i09"], ["i00"]):
        top = model.recommend(Query(items=session), 3)[0].ids
        assert top[0] == next_id(session[-1])
        assert not set(top) & set(session)  # the session's items are excluded by default


def test_fresh_events_of_a_known_user_extend_its_training_walk(
    model: SASRec, cycles: Dataset
) -> None:
    # u000's training walk ends at i01; events given now follow it, oldest first
    assert model.recommend("u000", 1, exclude_seen=False)[0].ids.tolist() == ["i02"]
    walk = cycles.items.id(cycles.user_sequence(cycles.users.index("u000")[0])).tolist()
    fresh = model.recommend(Query(user_id="u000", items=["i04", "i05"]), 5, exclude_seen=False)
    same = model.recommend(Query(items=[*walk, "i04", "i05"]), 5, exclude_seen=False)
    np.testing.assert_allclose(fresh[0].scores, same[0].scores, rtol=1e-5)
    assert fresh[0].ids.tolist() == same[0].ids.tolist()
    assert fresh[0].ids[0] != "i02"
    alone = Query(user_id="u000", items=["i07"], training_history=False)
    assert model.recommend(alone, 1, exclude_seen=False)[0].ids.tolist() == ["i08"]


def test_bce_with_one_negative_learns_the_rule_too(cycles: Dataset) -> None:
    bce = SASRec(epochs=60, dropout=0.0, loss="bce", **SMALL).fit(cycles)
    hits = [bce.recommend(Query(items=[f"i{i:02d}"]), 1)[0].ids[0] for i in range(10)]
    assert sum(h == next_id(f"i{i:02d}") for i, h in enumerate(hits)) >= 8


def test_save_load_gives_the_same_scores(model: SASRec, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    users = np.arange(5)
    torch.testing.assert_close(loaded.score(users), model.score(users))
    session = Query(items=["i02", "i03"])
    assert list(loaded.recommend(session, 5)[0].ids) == list(model.recommend(session, 5)[0].ids)


@pytest.fixture(scope="module")
def shop_leave_last_out(shop_data: Dataset) -> Split:
    return leave_last_out_split(shop_data)


def _ndcg(model: object, split: Split, exclude_seen: bool) -> float:
    result = evaluate(
        model,  # type: ignore[arg-type]
        split,
        part="test",
        ks=(10,),
        metrics=("ndcg",),
        beyond_accuracy=False,
        exclude_seen=exclude_seen,
        valid_as_history=True,
    )
    return result["ndcg@10"]


def test_beats_popularity_on_the_synthetic_shop(shop_leave_last_out: Split) -> None:
    split = shop_leave_last_out
    pop = get_model("pop").fit(split.train)
    sasrec = SASRec(max_len=20, hidden_size=32, n_layers=1, epochs=30, lr=3e-3, batch_size=32).fit(
        split.train
    )
    for exclude_seen in (True, False):
        pop_ndcg = _ndcg(pop, split, exclude_seen)
        assert _ndcg(sasrec, split, exclude_seen) > 1.5 * pop_ndcg > 0.1


def test_leave_one_out_gives_the_valid_item_before_the_test_one(cycles: Dataset) -> None:
    split = leave_last_out_split(cycles)
    fitted = SASRec(epochs=40, dropout=0.0, **SMALL).fit(split.train)
    given = _ndcg(fitted, split, exclude_seen=False)
    assert given > 0.95  # the valid item is the latest event: the test item is next
    result = evaluate(fitted, split, part="test", ks=(10,), metrics=("ndcg",), exclude_seen=False)
    assert result["ndcg@10"] < 0.8 < given  # without it the model predicts the valid item
    assert result.protocol["excluded"] == []
