"""The synthetic shop under leave-last-out, shared by the sequence models' quality tests."""

from __future__ import annotations

import functools
from typing import Any

from tests.models import contract
from tuijian.data import Split, leave_last_out_split, prepare
from tuijian.data.synthetic import shop_dataset
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.base import Recommender


@functools.cache
def shop_split() -> Split:
    frame, _ = prepare(shop_dataset("tiny").interactions)
    return leave_last_out_split(frame)


def shop_ndcg(model: Recommender, *, exclude_seen: bool = False) -> float:
    """Test NDCG@10, the valid item given after the training history (leave-one-out)."""
    result = evaluate(
        model,
        shop_split(),
        part="test",
        ks=(10,),
        metrics=("ndcg",),
        beyond_accuracy=False,
        exclude_seen=exclude_seen,
        valid_as_history=True,
    )
    return result["ndcg@10"]


@functools.cache
def popularity_ndcg(exclude_seen: bool = False) -> float:
    return shop_ndcg(contract.make_model("pop").fit(shop_split().train), exclude_seen=exclude_seen)


def fit_on_shop(name: str, **overrides: Any) -> Recommender:
    return contract.make_model(name, **overrides).fit(shop_split().train)
