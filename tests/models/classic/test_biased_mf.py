"""BiasedMF: folding a new history of ratings in (score_history)."""

from __future__ import annotations

import polars as pl

from tests.models import contract
from tuijian.data import Columns, build_dataset
from tuijian.models.query import Query, QueryBatch
from tuijian.models.registry import get_model


def test_score_history_folds_in_a_training_history() -> None:
    data = contract.contract_dataset()
    model = contract.fit_tiny("biasedmf", data, epochs=50, lr=0.02)
    assert contract.check_score_history(model, data, min_overlap=0.8) > 0.8  # measured 1.0


def test_held_out_users_beat_the_bias_baseline_on_ml100k() -> None:
    """Ratings of users unseen at fit, predicted from their train ratings: a rating model is
    judged by RMSE (its top-10 lists lose to popularity even for fitted users)."""
    rmse, baseline = contract.held_out_users_rmse("biasedmf", epochs=10, l2=0.2)
    assert rmse < baseline - 0.02  # measured 0.888 vs 0.928


def test_a_known_users_history_holds_its_ratings() -> None:
    """With ratings='rating' the history a query extends is the user's ratings, not weights."""
    frame = pl.DataFrame(
        {
            Columns.user_id: ["a", "a", "b", "b"],
            Columns.item_id: ["x", "y", "x", "z"],
            Columns.rating: [5.0, 1.0, 4.0, 2.0],
        }
    )
    data = build_dataset(frame, name="ratings")
    model = get_model("biasedmf", embedding_size=4, epochs=1).fit(data)
    batch = QueryBatch.build(model, [Query(user_id="a", items=["z"], weights=[3.0])])
    row = batch.history.toarray()[0]
    assert row[data.items.index(["x", "y", "z"])].tolist() == [5.0, 1.0, 3.0]
