"""ALS via implicit: factors, block structure, no BLAS warning; ml-100k quality."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import implicit.utils
import numpy as np
import pytest

from tests.models import contract
from tuijian.models.classic import ALS
from tuijian.models.classic.als import REG_PER_OBSERVATION


def test_factors_and_scores() -> None:
    data = contract.contract_dataset()
    model = ALS(factors=6, iterations=5, num_threads=1).fit(data)
    assert model.user_factors_.shape == (data.n_users, 6)
    assert model.item_factors_.shape == (data.n_items, 6)
    assert model.user_factors_.dtype == np.float32
    users = np.array([0, 7])
    expected = model.user_factors_[users] @ model.item_factors_.T
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-6)


def test_learns_the_taste_groups() -> None:
    data = contract.contract_dataset()
    model = ALS(factors=4, iterations=10, regularization=0.1, num_threads=1).fit(data)
    scores = model.score(np.arange(data.n_users))
    n = contract.N_GROUP_ITEMS
    group = np.arange(data.n_users) // contract.N_GROUP_USERS  # users sorted u00..u11
    own = np.where(group[:, None] == 0, scores[:, :n], scores[:, n : 2 * n]).mean(axis=1)
    other = np.where(group[:, None] == 0, scores[:, n : 2 * n], scores[:, :n]).mean(axis=1)
    assert np.all(own > other)


def test_fit_does_not_warn_about_blas_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ALS(factors=4, iterations=2, num_threads=1).fit(contract.contract_dataset())


def test_als_beats_popularity_on_ml100k() -> None:
    ndcg = contract.ml100k_ndcg("als", num_threads=1)
    assert ndcg > contract.ml100k_ndcg("pop") + 0.08  # measured 0.357 vs 0.212


def test_default_regularization_scales_with_observations_per_vector() -> None:
    data = contract.contract_dataset()
    model = ALS(factors=4, iterations=2, num_threads=1).fit(data)
    per_vector = 2 * data.matrix.nnz / (data.n_users + data.n_items)
    assert model.regularization_ == pytest.approx(REG_PER_OBSERVATION * per_vector)
    fixed = ALS(factors=4, iterations=2, regularization=0.5, num_threads=1).fit(data)
    assert fixed.regularization_ == 0.5


def test_a_folder_without_the_resolved_regularization_still_loads(tmp_path: Path) -> None:
    data = contract.contract_dataset()
    model = ALS(factors=4, iterations=2, regularization=0.5, num_threads=1).fit(data)
    folder = model.save(tmp_path / "als")
    manifest = json.loads((folder / "state.json").read_text())
    del manifest["scalars"]["regularization_"]  # as an older version wrote it
    (folder / "state.json").write_text(json.dumps(manifest))
    loaded = ALS.load(folder)
    assert loaded.regularization_ == 0.5
    np.testing.assert_allclose(loaded.score(np.arange(3)), model.score(np.arange(3)), rtol=1e-6)
