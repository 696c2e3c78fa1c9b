"""I-AutoRec and its rating baselines: formulas by hand, fallbacks, and RMSE on ml-100k."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.conftest import shared_path
from tests.models import contract
from tuijian.data import (
    Columns,
    Dataset,
    Split,
    Vocabulary,
    build_dataset,
    load,
    prepare,
    random_split,
)
from tuijian.errors import DataError
from tuijian.evaluation.evaluate import evaluate_ratings
from tuijian.models.autoencoder.autorec import AutoRec
from tuijian.models.classic.biased_mf import BiasedMF, damped_biases

C = Columns
TINY = {"hidden_size": 4, "epochs": 3, "damping": 1.0}


@pytest.fixture
def rated() -> Dataset:
    """Users a, b rate items x, y; user c and item z are known but have no rating."""
    frame = pl.DataFrame(
        {
            C.user_id: ["a", "a", "b", "b"],
            C.item_id: ["x", "y", "x", "y"],
            C.rating: [5.0, 3.0, 4.0, 1.0],
        }
    )
    return build_dataset(
        frame, users=Vocabulary(["a", "b", "c"]), items=Vocabulary(["x", "y", "z"])
    )


def test_damped_biases_by_hand() -> None:
    ratings = sp.csr_matrix(np.array([[5.0, 3.0, 0.0], [4.0, 1.0, 0.0]], dtype=np.float32))
    mu, user_bias, item_bias = damped_biases(ratings, damping=1.0)
    assert mu == pytest.approx(3.25)
    # b_x = (1.75 + 0.75) / 3, b_y = (-0.25 - 2.25) / 3, b_z = 0
    np.testing.assert_allclose(item_bias, [2.5 / 3, -2.5 / 3, 0.0], rtol=1e-6)
    # b_a = (1.75 - 2.5/3 - 0.25 + 2.5/3) / 3 = 0.5, b_b = (0.75 - 2.5/3 - 2.25 + 2.5/3) / 3 = -0.5
    np.testing.assert_allclose(user_bias, [0.5, -0.5], rtol=1e-6)


def test_needs_a_rating_column(tiny_dataset: Dataset) -> None:
    with pytest.raises(DataError, match="autorec needs a 'rating' column"):
        AutoRec(**TINY).fit(tiny_dataset)
    assert AutoRec(ratings="weight", **TINY).fit(tiny_dataset).is_fitted


def test_reconstruction_formula_and_baseline_fallback(rated: Dataset) -> None:
    model = AutoRec(**TINY).fit(rated)
    m = model.module_
    r = np.array([[5.0, 4.0, 0.0], [3.0, 1.0, 0.0]])  # items x users
    v, b = m.input.weight.detach().numpy(), m.input.bias.detach().numpy()
    h = 1.0 / (1.0 + np.exp(-(r @ v + b)))
    recon = h @ m.output.weight.detach().numpy().T + m.output.bias.detach().numpy()  # (2, 3)
    scores = model.score(np.array([0, 1, 2])).numpy()  # users x items
    np.testing.assert_allclose(scores[:2, :2], recon[:, :2].T, rtol=1e-5)
    mu, user_bias, item_bias = damped_biases(rated.rating_matrix, 1.0)
    np.testing.assert_allclose(scores[2], mu + item_bias, rtol=1e-5)  # user c: no ratings
    np.testing.assert_allclose(scores[:2, 2], mu + user_bias[:2], rtol=1e-5)  # item z
    pred = model.predict(np.array([0, 1, 2, 0]), np.array([0, 1, 0, 2]))
    expected = np.clip([recon[0, 0], recon[1, 1], mu + item_bias[0], mu + user_bias[0]], 1, 5)
    np.testing.assert_allclose(pred, expected, rtol=1e-5)


@functools.cache
def ml100k_ratings() -> Split:
    """ml-100k with its ratings, random 90/10 per user (seeded)."""
    frame, _ = prepare(load("movielens", shared_path("ml-100k")).interactions)
    return random_split(frame, (0.9, 0.1), seed=2020)


def _rmse(pred: np.ndarray, split: Split) -> float:
    actual = split.test.interactions[C.rating].to_numpy()
    return float(np.sqrt(np.mean((pred - actual) ** 2)))


def test_autorec_and_biased_mf_beat_the_baselines_on_ml100k() -> None:
    split = ml100k_ratings()
    users = split.test.interactions[C.user_idx].to_numpy()
    items = split.test.interactions[C.item_idx].to_numpy()
    mu, user_bias, item_bias = damped_biases(split.train.rating_matrix, 5.0)
    global_mean = _rmse(np.full(len(users), mu), split)
    biases = _rmse(np.clip(mu + user_bias[users] + item_bias[items], 1, 5), split)
    assert biases < global_mean - 0.15  # ~1.13 -> ~0.95

    autorec = AutoRec(epochs=20, lr=3e-3).fit(split.train)
    pred = autorec.predict(users, items)
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    rmse = evaluate_ratings(autorec, split)["rmse"]
    assert rmse == pytest.approx(_rmse(pred, split), rel=1e-6)
    assert rmse < biases - 0.01

    mf = BiasedMF(epochs=10, l2=0.2).fit(split.train)
    pred = mf.predict(users, items)
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    assert evaluate_ratings(mf, split)["rmse"] < biases


def test_score_history_folds_in_a_training_history() -> None:
    """At l2 = 1 and 300 epochs the learned output rows are near the ridge solution; the
    tiny 2-epoch fit is still its random start (top-3 overlap 0.53)."""
    data = contract.contract_dataset()
    model = contract.fit_tiny("autorec", data, epochs=300, lr=0.01, l2=1.0)
    assert contract.check_score_history(model, data, min_overlap=0.7) > 0.7  # measured 0.78


def test_held_out_users_beat_the_bias_baseline_on_ml100k() -> None:
    rmse, baseline = contract.held_out_users_rmse("autorec", epochs=15, lr=3e-3, hidden_size=200)
    assert rmse < baseline - 0.01  # measured 0.907 vs 0.928
