"""EASE: the closed form by hand and by its optimality condition; guard; ml-100k quality."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.models import contract
from tuijian.data import Columns, Dataset, build_dataset
from tuijian.errors import DataError
from tuijian.models.classic import EASE

C = Columns
L2 = 3.0


def _data(matrix: np.ndarray) -> Dataset:
    coo = sp.coo_matrix(matrix)
    frame = pl.DataFrame(
        {
            C.user_id: [f"u{u:02d}" for u in coo.row],
            C.item_id: [f"i{i:02d}" for i in coo.col],
            C.weight: coo.data.astype(np.float32),
        }
    )
    return build_dataset(frame)


@pytest.fixture
def matrix() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = (rng.random((30, 8)) < 0.4).astype(np.float64)
    out[np.arange(8), np.arange(8)] = 1.0  # every item and user present
    out[np.arange(8, 30), 0] = 1.0
    return out


def test_weights_match_numpy_closed_form(matrix: np.ndarray) -> None:
    model = EASE(l2=L2).fit(_data(matrix))
    precision = np.linalg.inv(matrix.T @ matrix + L2 * np.eye(8))
    expected = np.eye(8) - precision / np.diag(precision)[None, :]
    np.testing.assert_allclose(model.item_weights_, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(model.item_weights_) == 0.0)
    assert model.item_weights_.dtype == np.float32


def test_weights_solve_the_constrained_ridge_problem(matrix: np.ndarray) -> None:
    # min ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0: the gradient vanishes off the diagonal.
    weights = EASE(l2=L2).fit(_data(matrix)).item_weights_.astype(np.float64)
    gram = matrix.T @ matrix
    gradient = (gram + L2 * np.eye(8)) @ weights - gram
    off_diagonal = gradient[~np.eye(8, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, 0.0, atol=1e-4)


def test_scores_are_user_rows_times_weights(matrix: np.ndarray) -> None:
    model = EASE(l2=L2).fit(_data(matrix))
    expected = matrix[[2, 5]] @ model.item_weights_
    np.testing.assert_allclose(model.score(np.array([2, 5])), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        model.score(np.array([2]), np.array([7, 1])), expected[:1, [7, 1]], rtol=1e-5, atol=1e-6
    )


def test_too_many_items_is_a_clear_error(matrix: np.ndarray) -> None:
    with pytest.raises(DataError, match="dense 8 x 8 inverse, over max_items=5"):
        EASE(max_items=5).fit(_data(matrix))


def test_ease_beats_popularity_on_ml100k() -> None:
    assert contract.ml100k_ndcg("ease") > contract.ml100k_ndcg("pop") + 0.15  # 0.444 vs 0.212
