"""ADMM-SLIM: its limit without constraints is EASE, its columns solve the constrained problem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from tests.models import contract
from tuijian.errors import ConfigError
from tuijian.models.classic.admmslim import ADMMSLIM, admm_slim_weights, check_memory
from tuijian.models.classic.ease import ease_weights


@pytest.fixture(scope="module")
def matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((60, 15)) < 0.3).astype(np.float32)
    dense[:, :3] += dense[:, 3:6]  # correlated items
    return sp.csr_matrix(np.minimum(dense, 1.0))


def test_without_l1_and_sign_it_converges_to_ease(matrix: sp.csr_matrix) -> None:
    got = admm_slim_weights(matrix, 0.0, 5.0, 20.0, 300, nonnegative=False)
    np.testing.assert_allclose(got, ease_weights(matrix, 5.0), atol=2e-4)


def test_with_alpha_and_no_constraints_it_is_the_frequency_weighted_ridge(
    matrix: sp.csr_matrix,
) -> None:
    """L = l2 diag(f^alpha): B = I - P diag(1 / diag(P)), P = (X^T X + L)^-1, zero diagonal."""
    l2, alpha = 5.0, 0.5
    x = matrix.toarray().astype(np.float64)
    ridge = l2 * x.mean(axis=0) ** alpha
    p = np.linalg.inv(x.T @ x + np.diag(ridge))
    want = np.eye(x.shape[1]) - p / np.diagonal(p)[None, :]
    got = admm_slim_weights(matrix, 0.0, l2, 20.0, 300, nonnegative=False, alpha=alpha)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert not np.allclose(got, ease_weights(matrix, l2), atol=1e-2)


def test_columns_solve_the_nonnegative_elastic_net(matrix: sp.csr_matrix) -> None:
    """Column j of C minimises ||x_j - X b||^2 / 2 + l2 ||b||^2 / 2 + l1 sum(b), b >= 0, b_j = 0."""
    l1, l2 = 2.0, 5.0
    c = admm_slim_weights(matrix, l1, l2, 20.0, 500, nonnegative=True)
    x = matrix.toarray().astype(np.float64)
    n = x.shape[1]
    assert np.all(np.diagonal(c) == 0.0) and np.all(c >= 0.0)
    for j in (0, 4, 11):
        others = np.delete(np.arange(n), j)
        xo = x[:, others]

        def objective(b: np.ndarray, xo: np.ndarray = xo, j: int = j) -> tuple[float, np.ndarray]:
            resid = x[:, j] - xo @ b
            value = 0.5 * resid @ resid + 0.5 * l2 * b @ b + l1 * b.sum()
            return value, -xo.T @ resid + l2 * b + l1

        best = minimize(objective, np.zeros(n - 1), jac=True, bounds=[(0, None)] * (n - 1))
        np.testing.assert_allclose(c[others, j], best.x, atol=2e-3)


def test_l1_makes_the_matrix_sparser(matrix: sp.csr_matrix) -> None:
    dense = admm_slim_weights(matrix, 0.0, 5.0, 20.0, 100, nonnegative=True)
    sparse = admm_slim_weights(matrix, 5.0, 5.0, 20.0, 100, nonnegative=True)
    assert (sparse > 0).sum() < (dense > 0).sum()


def test_a_catalogue_over_max_items_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_items"):
        check_memory("shop: ADMM-SLIM", 5000, 4000)


def test_admmslim_beats_popularity_on_ml100k() -> None:
    """NDCG@10 measured 0.445 (l1 1, l2 250) vs EASE 0.444 (l2 500) and popularity 0.212."""
    ndcg = contract.ml100k_ndcg("admmslim", l1=1.0, l2=250.0, n_iter=20)
    assert ndcg > contract.ml100k_ndcg("pop") + 0.15


def test_history_scores_are_rows_times_the_matrix(matrix: sp.csr_matrix) -> None:
    data = contract.contract_dataset()
    model = ADMMSLIM(l2=5.0, rho=50.0, n_iter=20).fit(data)
    history = data.matrix[:3]
    np.testing.assert_allclose(
        model.score_history(history), history.toarray() @ model.item_weights_, rtol=1e-5
    )
