"""GF-CF: the filter against its formula written out densely, sparse and dense paths, ml-100k."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.models import contract
from tuijian.data import Columns, Dataset, build_dataset
from tuijian.models.graph.bspm import BSPM
from tuijian.models.graph.gfcf import GFCF, normalize, top_right_singular

C = Columns


def _dataset(seed: int = 0, n_users: int = 100, n_items: int = 80) -> Dataset:
    """A random 0/1 users x items dataset with every user and item present (above SMALL_SVD)."""
    rng = np.random.default_rng(seed)
    seen = rng.random((n_users, n_items)) < 0.2
    seen[np.arange(n_users), np.arange(n_users) % n_items] = True
    seen[np.arange(n_items) % n_users, np.arange(n_items)] = True
    users, items = np.nonzero(seen)
    frame = pl.DataFrame(
        {C.user_id: [f"u{u:03d}" for u in users], C.item_id: [f"i{i:03d}" for i in items]}
    )
    return build_dataset(frame, name="random")


def _dense_gfcf(x: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """GF-CF's scores of every training row, from a full dense SVD of the normalized matrix."""
    du, di = x.sum(axis=1), x.sum(axis=0)
    norm = x / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    _, _, vt = np.linalg.svd(norm, full_matrices=False)
    v = vt[:k].T  # (I, k)
    ideal = (1 / np.sqrt(di))[:, None] * (v @ v.T) * np.sqrt(di)[None, :]
    return x @ (norm.T @ norm + alpha * ideal)


def test_normalize_scales_rows_and_columns() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32))
    norm, item_scale = normalize(x)
    want = np.array([[1 / np.sqrt(2 * 2), 1 / np.sqrt(2), 0], [1 / np.sqrt(2), 0, 0]])
    np.testing.assert_allclose(norm.toarray(), want, rtol=1e-6)
    np.testing.assert_allclose(item_scale, [1 / np.sqrt(2), 1.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("dense_items", [0, 10_000])
@pytest.mark.parametrize("svd", ["arpack", "randomized"])
def test_scores_match_the_dense_formula(dense_items: int, svd: str) -> None:
    data = _dataset()
    model = GFCF(alpha=0.3, n_factors=8, svd=svd, dense_items=dense_items).fit(data)
    x = data.matrix.toarray().astype(np.float64)
    got = model.score(np.arange(data.n_users))
    np.testing.assert_allclose(got, _dense_gfcf(x, 0.3, 8), rtol=2e-3, atol=2e-4)


def test_sparse_and_dense_paths_agree_on_given_histories() -> None:
    data = _dataset(seed=1)
    history = data.matrix[:7]
    sparse = GFCF(n_factors=6, dense_items=0).fit(data)
    dense = GFCF(n_factors=6).fit(data)
    assert sparse.filters.linear_dense is None and dense.filters.linear_dense is not None
    items = np.array([3, 0, 79])
    np.testing.assert_allclose(
        sparse.score_history(history, items), dense.score_history(history, items), atol=1e-5
    )


def test_alpha_zero_is_the_linear_filter_only() -> None:
    data = _dataset(seed=2)
    x = data.matrix.toarray().astype(np.float64)
    got = GFCF(alpha=0.0, n_factors=3, dense_items=0).fit(data).score(np.arange(data.n_users))
    np.testing.assert_allclose(got, _dense_gfcf(x, 0.0, 3), rtol=1e-4, atol=1e-6)


def test_singular_vectors_are_the_top_ones() -> None:
    data = _dataset(seed=3)
    norm, _ = normalize(data.matrix)
    vt = top_right_singular(norm, 5, "arpack", seed=0)
    s = np.linalg.svd(norm.toarray(), compute_uv=False)
    np.testing.assert_allclose(np.linalg.norm(norm @ vt.T, axis=0), s[:5], rtol=1e-4)


def test_an_item_no_user_has_scores_zero() -> None:
    data = contract.contract_dataset()  # its cold item has no interactions
    model = GFCF(n_factors=4, dense_items=0).fit(data)
    cold = data.items.lookup(pl.Series([contract.COLD_ITEM])).to_numpy()
    scores = model.score(np.arange(data.n_users))
    assert np.isfinite(scores).all()
    assert np.all(scores[:, cold] == 0.0)


def test_gfcf_beats_popularity_on_ml100k() -> None:
    """NDCG@10 measured 0.426 (64 factors) vs popularity 0.212 and EASE 0.445."""
    ndcg = contract.ml100k_ndcg("gfcf", n_factors=64)
    assert ndcg > contract.ml100k_ndcg("pop") + 0.15


def test_a_single_user_is_enough() -> None:
    frame = pl.DataFrame({C.user_id: ["u0", "u0", "u0"], C.item_id: ["a", "b", "c"]})
    data = build_dataset(frame, name="one")
    for name in (GFCF, BSPM):
        scores = name(n_factors=8).fit(data).score(np.array([0]))
        assert scores.shape == (1, 3) and np.isfinite(scores).all()
