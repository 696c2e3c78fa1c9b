"""NegativeSampler: exact exclusion (property test), target frequencies, alias table, errors;
positive_pairs: every pair once, or uniform users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tuijian.errors import DataError
from tuijian.nn import sampling
from tuijian.nn.sampling import NegativeSampler, alias_table, positive_pairs


@st.composite
def positives(draw: st.DrawFn) -> sp.csr_matrix:
    """A random small users x items 0/1 matrix where every user misses at least one item."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(2, 8))
    flags = draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_items, max_size=n_items),
            min_size=n_users,
            max_size=n_users,
        )
    )
    dense = np.array(flags, dtype=np.float32)
    dense[:, draw(st.integers(0, n_items - 1))] = 0.0  # no user has every item
    return sp.csr_matrix(dense)


@settings(max_examples=60, deadline=None)
@given(
    matrix=positives(),
    alpha=st.sampled_from([0.0, 0.75]),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    bitmap=st.booleans(),
)
def test_never_returns_a_positive(
    matrix: sp.csr_matrix, alpha: float, n: int, seed: int, bitmap: bool
) -> None:
    if alpha and (matrix.sum(axis=0).A1 > 0).sum() == 0:
        alpha = 0.0  # nobody has any item: popularity sampling falls back to uniform
    budget = sampling.BITMAP_BUDGET_BYTES if bitmap else 0
    original = sampling.BITMAP_BUDGET_BYTES
    sampling.BITMAP_BUDGET_BYTES = budget  # exercise both lookups (bit table, sorted keys)
    try:
        drawable = (matrix.sum(axis=0).A1 > 0) if alpha else np.ones(matrix.shape[1], bool)
        dense = matrix.toarray() > 0
        if (dense[:, drawable].sum(axis=1) >= drawable.sum()).any():
            with pytest.raises(DataError):
                NegativeSampler(matrix, alpha)
            return
        sampler = NegativeSampler(matrix, alpha)
    finally:
        sampling.BITMAP_BUDGET_BYTES = original
    users = np.random.default_rng(seed).integers(0, matrix.shape[0], size=50)
    out = sampler.sample(users, n, np.random.default_rng(seed))
    assert out.shape == (50, n)
    assert out.dtype == np.int64
    assert not dense[users[:, None], out].any()
    assert drawable[out].all()


def test_uniform_is_uniform_over_the_complement() -> None:
    matrix = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    sampler = NegativeSampler(matrix)
    out = sampler.sample(np.zeros(30_000, dtype=np.int64), 1, np.random.default_rng(0))
    freq = np.bincount(out[:, 0], minlength=5) / out.size
    np.testing.assert_allclose(freq, [0, 0, 1 / 3, 1 / 3, 1 / 3], atol=0.01)


def test_popularity_frequencies_match_the_target() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items = 400, 30
    popularity = rng.zipf(1.6, size=n_items).clip(max=n_users // 2)
    rows = np.concatenate([rng.choice(n_users, size=c, replace=False) for c in popularity])
    cols = np.repeat(np.arange(n_items), popularity)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (n_users, n_items))
    alpha = 0.75
    sampler = NegativeSampler(matrix, alpha)
    target = popularity**alpha / (popularity**alpha).sum()
    np.testing.assert_allclose(sampler.probabilities, target, rtol=1e-12)
    users = rng.integers(0, n_users, size=200_000)
    out = sampler.sample(users, 2, np.random.default_rng(4))
    # expected frequency: each user's draw follows the target restricted to its complement
    dense = matrix.toarray() > 0
    restricted = np.where(dense[users], 0.0, target[None, :])
    expected = (restricted / restricted.sum(axis=1, keepdims=True)).sum(axis=0) / len(users)
    freq = np.bincount(out.ravel(), minlength=n_items) / out.size
    np.testing.assert_allclose(freq, expected, atol=0.004)


def test_items_nobody_has_are_never_drawn_with_alpha() -> None:
    matrix = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=np.float32))
    out = NegativeSampler(matrix, 1.0).sample(np.array([0, 1] * 500), 3, np.random.default_rng(0))
    assert not (out == 2).any()
    assert set(np.unique(out[::2])) == {1}


@pytest.mark.parametrize(
    "weights",
    [
        np.array([1.0]),
        np.array([3.0, 1.0]),
        np.array([0.0, 5.0, 1.0, 0.0, 2.0]),
        np.random.default_rng(0).zipf(1.5, size=1000).astype(float),
    ],
)
def test_alias_table_is_exact(weights: np.ndarray) -> None:
    keep, alias = alias_table(weights)
    implied = keep.copy()
    np.add.at(implied, alias, 1.0 - keep)
    np.testing.assert_allclose(implied / len(weights), weights / weights.sum(), atol=1e-12)
    assert ((keep >= 0) & (keep <= 1)).all()


def test_a_user_with_every_item_is_a_data_error() -> None:
    matrix = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    with pytest.raises(DataError, match="user index 0 interacted with every item"):
        NegativeSampler(matrix)


def test_a_user_with_every_popular_item_is_a_data_error() -> None:
    matrix = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32))
    NegativeSampler(matrix)  # uniform: item 2 is a negative of user 0
    with pytest.raises(DataError, match="user index 0"):
        NegativeSampler(matrix, alpha=0.5)  # item 2 has no popularity, so it is never drawn


def test_very_dense_users_are_served_from_their_complement() -> None:
    n_items = 2000
    dense = np.ones((2, n_items), dtype=np.float32)
    dense[0, 1234] = 0.0  # one negative among 2000 items: rejection alone would take long
    dense[1, :1000] = 0.0
    sampler = NegativeSampler(sp.csr_matrix(dense))
    out = sampler.sample(np.array([0, 1, 0]), 5, np.random.default_rng(0))
    assert (out[[0, 2]] == 1234).all()
    assert (out[1] < 1000).all()


def test_same_generator_state_gives_same_draws() -> None:
    matrix = sp.random(50, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    sampler = NegativeSampler(matrix, 0.75)
    users = np.arange(50).repeat(3)
    a = sampler.sample(users, 2, np.random.default_rng(9))
    b = sampler.sample(users, 2, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


def test_bit_table_matches_numpy_packbits() -> None:
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 1000, size=300))
    flags = np.zeros(1003, dtype=bool)
    flags[keys] = True
    expected = np.packbits(flags, bitorder="little")
    np.testing.assert_array_equal(sampling.bit_table(keys, 1003), expected)
    assert sampling.bit_table(np.array([], dtype=np.int64), 9).tolist() == [0, 0]


def skewed_positives() -> sp.csr_matrix:
    """User 0 has 8 items, user 1 has 1, user 2 none, user 3 has 3: 12 pairs."""
    dense = np.zeros((4, 10), dtype=np.float32)
    dense[0, :8] = 1.0
    dense[1, 9] = 1.0
    dense[3, [2, 5, 7]] = 1.0
    return sp.csr_matrix(dense)


def test_pairs_visits_every_stored_pair_once() -> None:
    matrix = skewed_positives()
    users, items = positive_pairs(matrix, "pairs", np.random.default_rng(0))
    got = sorted(zip(users.tolist(), items.tolist(), strict=True))
    coo = matrix.tocoo()
    assert got == sorted(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def test_users_draws_users_uniformly_and_only_their_positives() -> None:
    matrix = skewed_positives()
    rng = np.random.default_rng(1)
    draws = [positive_pairs(matrix, "users", rng) for _ in range(3000)]
    users = np.concatenate([u for u, _ in draws])
    items = np.concatenate([i for _, i in draws])
    assert len(draws[0][0]) == matrix.nnz  # as many pairs per epoch as "pairs" gives
    assert matrix[users, items].min() == 1.0  # every drawn item is a positive of its user
    share = np.bincount(users, minlength=4) / len(users)
    np.testing.assert_allclose(share, [1 / 3, 1 / 3, 0.0, 1 / 3], atol=0.01)
    of_user_3 = np.bincount(items[users == 3], minlength=10)[[2, 5, 7]]
    np.testing.assert_allclose(of_user_3 / of_user_3.sum(), [1 / 3] * 3, atol=0.02)


def test_unknown_positive_sampling_is_a_data_error() -> None:
    with pytest.raises(DataError, match="unknown positive sampling"):
        positive_pairs(skewed_positives(), "items", np.random.default_rng(0))
