"""Every registered model passes the shared contract with its tiny config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models import contract
from tuijian.data import Dataset
from tuijian.models.base import Recommender
from tuijian.models.registry import available_models

MODELS = available_models()


@pytest.fixture(scope="module")
def data() -> Dataset:
    return contract.contract_dataset()


@pytest.fixture(scope="module", params=MODELS)
def fitted(request: pytest.FixtureRequest, data: Dataset) -> Recommender:
    return contract.fit_tiny(request.param, data)


def test_scores(fitted: Recommender, data: Dataset) -> None:
    contract.check_scores(fitted, data)


def test_recommend(fitted: Recommender, data: Dataset) -> None:
    contract.check_recommend(fitted, data)


def test_exclude_seen(fitted: Recommender, data: Dataset) -> None:
    contract.check_exclude_seen(fitted, data)


def test_candidates(fitted: Recommender, data: Dataset) -> None:
    contract.check_candidates(fitted, data)


def test_exclude(fitted: Recommender, data: Dataset) -> None:
    contract.check_exclude(fitted, data)


def test_unknown_user(fitted: Recommender) -> None:
    contract.check_unknown_user(fitted)


def test_save_load(fitted: Recommender, data: Dataset, tmp_path: Path) -> None:
    contract.check_save_load(fitted, data, tmp_path / "model")


@pytest.mark.parametrize("name", MODELS)
def test_not_fitted(name: str) -> None:
    contract.check_not_fitted(name)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_config_key(name: str) -> None:
    contract.check_unknown_config_key(name)


@pytest.mark.parametrize("name", MODELS)
def test_seed_reproducible(name: str, data: Dataset) -> None:
    contract.check_seed_reproducible(name, data)


def test_classic_models_registered() -> None:
    assert {"pop", "random", "itemknn", "userknn", "content", "ease", "als"} <= set(MODELS)
