"""The blend: standardized scores by hand, its weights, its config errors, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models import contract
from tuijian.errors import ConfigError
from tuijian.models.pipeline import Blend
from tuijian.models.pipeline.blend import standardized
from tuijian.models.query import QueryBatch
from tuijian.models.registry import get_model


def test_standardized_by_hand() -> None:
    block = torch.tensor([[1.0, 2.0, 3.0, -torch.inf], [5.0, 5.0, 5.0, 5.0]])
    filled = np.array([1.0, 2.0, 3.0, 1.0])  # -inf takes the row's lowest finite score
    want = (filled - filled.mean()) / filled.std()
    got = standardized(block).numpy()
    np.testing.assert_allclose(got[0], want, rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.zeros(4))  # a constant row carries no ranking


def fitted_blend(weights: tuple[float, float]) -> Blend:
    data = contract.contract_dataset()
    model = contract.fit_tiny("blend", data, weights=weights)
    assert isinstance(model, Blend)
    return model


def test_scores_are_the_weighted_standardized_components() -> None:
    model = fitted_blend((0.7, 0.3))
    users = np.arange(len(model.users_))
    queries = QueryBatch.for_users(model, users)
    knn, content = (c.score_queries(queries).numpy() for c in model.components)

    def z(block: np.ndarray) -> np.ndarray:
        return (block - block.mean(axis=1, keepdims=True)) / block.std(axis=1, keepdims=True)

    want = 0.7 * z(knn) + 0.3 * z(content)
    np.testing.assert_allclose(np.asarray(model.score(users)), want, rtol=1e-4, atol=1e-5)
    cols = np.array([3, 0, 7])
    np.testing.assert_allclose(np.asarray(model.score(users, cols)), want[:, cols], atol=1e-5)


def test_a_zero_weight_leaves_the_other_components_ranking() -> None:
    model = fitted_blend((1.0, 0.0))
    only = model.reweighted((0.0, 1.0))
    users = np.arange(len(model.users_))
    knn, content = model.components
    for blend, alone in ((model, knn), (only, content)):
        got = np.argsort(-np.asarray(blend.score(users)), axis=1, kind="stable")
        want = np.argsort(-contract.as_numpy(alone.score(users)), axis=1, kind="stable")
        np.testing.assert_array_equal(got[:, :3], want[:, :3])


def test_reweighted_shares_the_fitted_components(tmp_path: Path) -> None:
    model = fitted_blend((0.7, 0.3))
    other = model.reweighted((0.2, 0.8))
    assert other.components is model.components and other.config.weights == (0.2, 0.8)
    assert model.config.weights == (0.7, 0.3)
    data = contract.contract_dataset()
    contract.check_save_load(other, data, tmp_path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"models": ("itemknn", "content"), "weights": (1.0,)}, "1 weights for 2 models"),
        ({"models": ("itemknn",), "params": ({}, {})}, "2 params for 1 models"),
        ({"models": ("blend",)}, "cannot be a component of itself"),
    ],
)
def test_bad_configs_name_the_problem(settings: dict, message: str) -> None:
    data = contract.contract_dataset()
    with pytest.raises(ConfigError, match=message):
        get_model("blend", **settings).fit(data)
