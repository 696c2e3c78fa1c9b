"""AUC and log-loss: computed from the score blocks, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tests.models import contract
from tuijian.data import random_split
from tuijian.evaluation import evaluate
from tuijian.evaluation import metrics as M
from tuijian.models.registry import get_model

INF = float("inf")


def csr(rows: list[list[int]], n: int) -> sp.csr_matrix:
    indptr = np.cumsum([0, *map(len, rows)])
    indices = np.array([i for r in rows for i in r], dtype=np.int32)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n))


def test_auc_by_hand() -> None:
    block = torch.tensor(
        [
            [0.9, 0.1, 0.5, 0.3],  # truth {0, 3}: pairs (0,1) (0,2) won, (3,1) won, (3,2) lost
            [0.2, -INF, 0.4, 0.1],  # item 1 excluded; truth {2}: beats 0 and 3
            [0.0, 0.5, 0.2, 0.7],  # truth {0}: lowest score, every pair lost
        ]
    )
    truth = csr([[0, 3], [2], [0]], 4)
    np.testing.assert_allclose(M.auc(block, truth), [3 / 4, 1.0, 0.0])


def test_auc_ties_count_half() -> None:
    block = torch.tensor([[0.5, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]])
    truth = csr([[0], [1, 2]], 4)
    # row 0: truth 0 vs 1 (tie), 2 (tie), 3 (won) -> (0.5 + 0.5 + 1) / 3
    # row 1: every pair tied -> 0.5
    np.testing.assert_allclose(M.auc(block, truth), [2 / 3, 0.5])


def test_auc_without_pairs_is_chance() -> None:
    block = torch.tensor([[0.3, 0.2], [0.3, -INF]])
    truth = csr([[0, 1], [0]], 2)  # row 0: no negative; row 1: the only other item excluded
    np.testing.assert_allclose(M.auc(block, truth), [0.5, 0.5])


def test_logloss_by_hand() -> None:
    block = torch.tensor([[2.0, -1.0, 0.0], [0.5, -INF, -0.5]])
    truth = csr([[0], [2]], 3)

    def bce(s: float, y: int) -> float:
        p = 1 / (1 + math.exp(-s))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = [
        (bce(2.0, 1) + bce(-1.0, 0) + bce(0.0, 0)) / 3,
        (bce(0.5, 0) + bce(-0.5, 1)) / 2,  # the excluded item counts on no side
    ]
    np.testing.assert_allclose(M.logloss(block, truth), expected, rtol=1e-6)  # float32 scores


def test_evaluator_computes_them_per_user_in_bounded_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    split = random_split(contract.contract_dataset(), (0.6, 0.2, 0.2), seed=0)
    model = get_model("ease", l2=5.0).fit(split.train)
    whole = evaluate(model, split, part="valid", ks=(5,), metrics=("auc", "logloss", "ndcg"))
    assert set(whole.summary) >= {"auc", "logloss", "ndcg@5"}
    assert "auc@5" not in whole.summary
    # the same values when the ranking scores 2 users per block
    from tuijian.models import ranking

    monkeypatch.setattr(ranking, "rows_per_batch", lambda n_items, budget=0: 2)
    small = evaluate(model, split, part="valid", ks=(5,), metrics=("auc", "logloss"))
    np.testing.assert_allclose(small.per_user["auc"], whole.per_user["auc"])
    np.testing.assert_allclose(small.per_user["logloss"], whole.per_user["logloss"])
    # and what the metric functions give on the full, masked score matrix
    users = split.valid.active_users
    block = torch.as_tensor(model.score(users)).clone()
    seen = (split.train.matrix[users] > 0).toarray()
    block[torch.from_numpy(seen)] = -INF
    truth = (split.valid.matrix[users] > 0).astype(np.float32).tocsr()
    truth.sort_indices()
    np.testing.assert_allclose(whole.per_user["auc"], M.auc(block, truth), rtol=1e-6)
    np.testing.assert_allclose(whole.per_user["logloss"], M.logloss(block, truth), rtol=1e-6)
