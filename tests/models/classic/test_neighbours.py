"""Sparse shrunk cosine and top-k pruning shared by the neighbourhood models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tuijian.models.classic.neighbours import keep_topk, row_norms, shrunk_cosine


def test_row_norms() -> None:
    matrix = sp.csr_matrix(np.array([[3, 4, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(row_norms(matrix), [5, 0, 1])


def test_shrunk_cosine_drops_own_columns_and_zero_norms() -> None:
    dots = sp.csr_matrix(np.array([[4.0, 2.0, 0.0], [2.0, 6.0, 1.0]], dtype=np.float32))
    out = shrunk_cosine(
        dots, np.array([2.0, 3.0]), np.array([2.0, 3.0, 0.0]), 1.0, np.array([0, 1])
    )
    expected = [[0.0, 2 / (6 + 1), 0.0], [2 / (6 + 1), 0.0, 1 / (0 + 1)]]
    np.testing.assert_allclose(out.toarray(), expected, rtol=1e-6)
    assert out.nnz == 3  # the dropped own columns are not stored


def test_keep_topk_per_row_with_ties_and_non_positive_values() -> None:
    block = sp.csr_matrix(
        np.array(
            [
                [0.5, 0.9, 0.7, 0.1],
                [0.0, -1.0, 0.3, 0.0],  # one positive entry only
                [0.0, 0.0, 0.0, 0.0],
            ],
            dtype=np.float32,
        )
    )
    top = keep_topk(block, 2)
    np.testing.assert_allclose(
        top.toarray(), [[0.0, 0.9, 0.7, 0.0], [0.0, 0.0, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]]
    )
    assert top.dtype == np.float32
    np.testing.assert_allclose(keep_topk(block, 10).toarray(), np.maximum(block.toarray(), 0))


def test_keep_topk_matches_a_sort_on_random_blocks() -> None:
    rng = np.random.default_rng(0)
    block = sp.random(50, 300, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    block.data -= 0.2  # some negative entries, which are never kept
    block = sp.diags((np.arange(50) != 7).astype(np.float32)) @ block  # row 7 left empty
    top = keep_topk(block, 20)
    dense = block.toarray()
    for row in range(50):
        values = np.sort(dense[row][dense[row] > 0])[::-1][:20]
        np.testing.assert_allclose(np.sort(top[row].data)[::-1], values)
        assert set(top[row].indices) <= set(np.flatnonzero(dense[row] > 0))
    assert top.nnz == sum(min(20, int((r > 0).sum())) for r in dense)
