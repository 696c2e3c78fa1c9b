"""The synthetic-shop split the autoencoder tests rank on, and NDCG@10 on its test part."""

from __future__ import annotations

import functools

from tuijian.data import PrepareConfig, Split, prepare, random_split
from tuijian.data.synthetic import shop_dataset
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.base import Recommender

EVENT_WEIGHTS = {"view": 1.0, "cart": 3.0, "buy": 5.0}


@functools.cache
def shop_split() -> Split:
    """The tiny synthetic shop (300 users, 150 items), weighted events, random 8:1:1 split."""
    frame, _ = prepare(
        shop_dataset("tiny").interactions, PrepareConfig(event_weights=EVENT_WEIGHTS)
    )
    return random_split(frame, seed=0)


def ndcg_at_10(model: Recommender, split: Split) -> float:
    """Test NDCG@10, full ranking with train and valid items excluded."""
    result = evaluate(model, split, ks=(10,), metrics=("ndcg",), beyond_accuracy=False)
    return result["ndcg@10"]
