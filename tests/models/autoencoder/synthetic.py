"""NDCG@10 on the test part of a split: what the autoencoder tests compare with popularity.

The split itself is the shared `shop_split` fixture (tests/conftest.py).
"""

from __future__ import annotations

from tuijian.data import Split
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.base import Recommender


def ndcg_at_10(model: Recommender, split: Split) -> float:
    """Test NDCG@10, full ranking with train and valid items excluded."""
    result = evaluate(model, split, ks=(10,), metrics=("ndcg",), beyond_accuracy=False)
    return result["ndcg@10"]
