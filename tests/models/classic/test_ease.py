"""EASE: the closed form by hand and by its optimality condition; memory guards and peak;
float32 against float64; ml-100k quality."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.models import contract
from tuijian.data import Columns, Dataset, build_dataset
from tuijian.errors import ConfigError
from tuijian.models.classic import EASE, NeighborhoodEASE, dense
from tuijian.models.classic.ease import L2_PER_MEAN_DIAGONAL, ease_weights

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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_match_numpy_closed_form(matrix: np.ndarray, dtype: str) -> None:
    model = EASE(l2=L2, dtype=dtype).fit(_data(matrix))
    precision = np.linalg.inv(matrix.T @ matrix + L2 * np.eye(8))
    expected = np.eye(8) - precision / np.diag(precision)[None, :]
    np.testing.assert_allclose(model.item_weights_, expected, rtol=1e-4, atol=1e-5)
    assert np.all(np.diag(model.item_weights_) == 0.0)
    assert model.item_weights_.dtype == np.float32


def test_textbook_formula_on_a_larger_sparse_matrix() -> None:
    x = sp.random(300, 120, density=0.1, random_state=1, format="csr", dtype=np.float32)
    x.data[:] = 1.0 + (np.arange(x.nnz) % 3)  # weights 1, 2, 3: not only binary counts
    precision = np.linalg.inv((x.T @ x).toarray().astype(np.float64) + 7.0 * np.eye(120))
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    for dtype in ("float32", "float64"):
        np.testing.assert_allclose(ease_weights(x, 7.0, dtype), expected, atol=1e-4)


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
    with pytest.raises(ConfigError, match="dense 8 x 8 matrix, over max_items=5"):
        EASE(max_items=5).fit(_data(matrix))


def test_max_items_follows_the_available_memory(
    matrix: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = dense.dense_bytes(8, "float32")
    assert needed == 8 * 8 * 4 + 8 * 8 * 4 // 8  # the matrix and its bounded workspace
    monkeypatch.setattr(dense, "available_memory", lambda: 2 * needed - 2)  # half: needed - 1
    with pytest.raises(ConfigError, match=rf"needs {needed:,} bytes .* {needed - 1:,} bytes"):
        EASE().fit(_data(matrix))
    assert dense.dense_bytes(8, "float64") == 8 * 8 * 8 + 8 * 8 * 4 + 8 * 8 * 8 // 8
    monkeypatch.setattr(dense, "available_memory", lambda: 2 * needed)
    assert EASE().fit(_data(matrix)).item_weights_.shape == (8, 8)
    monkeypatch.setattr(dense, "available_memory", lambda: needed - 1)  # set max_items: all
    with pytest.raises(ConfigError, match="bytes are allowed \\(the available memory\\)"):
        EASE(max_items=100).fit(_data(matrix))


def test_peak_memory_is_one_matrix_plus_a_bounded_workspace() -> None:
    n_items = 3_000
    x = sp.random(2_000, n_items, density=0.02, random_state=0, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    tracemalloc.start()
    try:
        weights = ease_weights(x, 500.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert weights.shape == (n_items, n_items) and weights.dtype == np.float32
    assert peak < 1.5 * n_items**2 * 4, peak / (n_items**2 * 4)


def test_float32_and_float64_give_the_same_top10_on_ml100k() -> None:
    train, _ = contract.ml100k_split()
    lists = []
    for dtype in ("float32", "float64"):
        model = EASE(dtype=dtype).fit(train)
        scores = model.score(np.arange(train.n_users))  # (U, I)
        scores[train.matrix.nonzero()] = -np.inf
        lists.append(np.argsort(-scores, axis=1, kind="stable")[:, :10])
    same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(*lists, strict=True)])
    assert same > 0.999, same


def test_ease_beats_popularity_on_ml100k() -> None:
    assert contract.ml100k_ndcg("ease") > contract.ml100k_ndcg("pop") + 0.15  # 0.444 vs 0.212


def test_default_l2_scales_with_the_mean_gram_diagonal(matrix: np.ndarray) -> None:
    data = _data(matrix)
    model = EASE().fit(data)
    mean_diagonal = float(np.diagonal(matrix.T @ matrix).mean())  # weights 1: item counts
    assert model.l2_ == pytest.approx(L2_PER_MEAN_DIAGONAL * mean_diagonal)
    np.testing.assert_allclose(
        model.item_weights_, ease_weights(data.matrix, model.l2_), rtol=1e-5, atol=1e-7
    )
    assert EASE(l2=L2).fit(data).l2_ == L2


def test_a_folder_without_the_resolved_l2_still_loads(matrix: np.ndarray, tmp_path) -> None:
    model = EASE(l2=L2).fit(_data(matrix))
    folder = model.save(tmp_path / "ease")
    manifest = json.loads((folder / "state.json").read_text())
    del manifest["scalars"]["l2_"]  # as an older version wrote it
    (folder / "state.json").write_text(json.dumps(manifest))
    loaded = EASE.load(folder)
    assert loaded.l2_ == L2
    np.testing.assert_array_equal(loaded.score(np.arange(3)), model.score(np.arange(3)))


def test_neighborhood_ease_with_every_item_as_neighbour_is_ease(matrix: np.ndarray) -> None:
    data = _data(matrix)
    dense = EASE(l2=L2, dtype="float64").fit(data).item_weights_
    full = NeighborhoodEASE(l2=L2, n_neighbors=100).fit(data).item_weights_.toarray()
    np.testing.assert_allclose(full, dense, rtol=1e-3, atol=1e-5)


def test_neighborhood_ease_solves_each_column_on_its_top_neighbours(matrix: np.ndarray) -> None:
    data = _data(matrix)
    model = NeighborhoodEASE(l2=L2, n_neighbors=3).fit(data)
    weights = model.item_weights_.tocsc()
    assert np.diff(weights.indptr).max() <= 3 and weights.diagonal().sum() == 0
    gram = data.matrix.T.toarray().astype(np.float64) @ data.matrix.toarray()
    j = 5
    support = weights[:, j].nonzero()[0]  # the 3 items that co-occur most with j
    others = np.delete(gram[j], [j, *support])
    assert gram[j, support].min() >= others.max()
    expected = np.linalg.solve(gram[np.ix_(support, support)] + L2 * np.eye(3), gram[support, j])
    np.testing.assert_allclose(weights[support, j].toarray().ravel(), expected, rtol=1e-4)
