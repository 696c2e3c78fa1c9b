"""The two-stage pipeline: it beats its retrieval stage on bought items, and its rules hold."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.models import contract
from tuijian.data import Columns, Dataset, PrepareConfig, Split, build_dataset, prepare
from tuijian.data.split import temporal_split
from tuijian.data.synthetic import shop_dataset
from tuijian.errors import ConfigError
from tuijian.models.base import Recommender
from tuijian.models.pipeline import TwoStagePipeline
from tuijian.models.registry import get_model

C = Columns
RETRIEVAL = {"epochs": 15, "lr": 0.01, "batch_size": 256, "dim": 32}
RANKER = {"epochs": 10, "lr": 0.01, "batch_size": 256}


@functools.cache
def shop() -> tuple[Split, sp.csr_matrix]:
    """The tiny shop with its events, cut in time 8:2; the test part's bought pairs."""
    raw = shop_dataset("tiny")
    weights = {"view": 1.0, "cart": 3.0, "buy": 5.0}
    frame, _ = prepare(raw.interactions, PrepareConfig(event_weights=weights))
    data = build_dataset(frame, item_features=raw.item_features, name="shop")
    split = temporal_split(data, (0.8, 0.2))
    buys = split.test.interactions.filter(pl.col(C.event) == "buy")
    truth = sp.csr_matrix(
        (np.ones(buys.height, np.float32), (buys[C.user_idx], buys[C.item_idx])),
        shape=(data.n_users, data.n_items),
    )
    return split, truth


@functools.cache
def fitted(**rules: object) -> TwoStagePipeline:
    split, _ = shop()
    model = get_model(
        "pipeline",
        retrieval="twotower",
        retrieval_params=RETRIEVAL,
        ranker="deepfm",
        ranker_params=RANKER,
        candidates=20,
        **rules,
    ).fit(split.train)
    assert isinstance(model, TwoStagePipeline)
    return model


def test_beats_its_retrieval_stage_on_bought_items() -> None:
    split, truth = shop()
    pipeline = fitted()
    ours = contract.ndcg_at_k(pipeline, split.train, truth)
    alone = contract.ndcg_at_k(pipeline.retrieval_stage, split.train, truth)
    assert ours > alone, (ours, alone)  # measured 0.4248 vs 0.4182 (ranker alone: 0.4166)


NAMES = ("apparel", "electronics")
BLOCKED = ("i000", "i001", "i002", "i003", "i004")


def test_category_filter_cap_and_exclusions() -> None:
    split, _ = shop()
    data = split.train
    names, blocked = list(NAMES), list(BLOCKED)
    model = fitted(categories=NAMES, category_cap=2, exclude_items=BLOCKED)
    cats = data.item_features.select(C.item_id, pl.col(C.categories).list.first())
    category = dict(zip(cats[C.item_id], cats[C.categories], strict=True))
    for items in model.recommend(data.users.ids[:50].tolist(), 4):
        got = [category[i] for i in items.ids]
        assert set(got) <= set(names)
        assert max(got.count(n) for n in names) <= 2
        assert not set(items.ids) & set(blocked)


def test_saved_pipeline_ranks_the_same(tmp_path: Path) -> None:
    split, _ = shop()
    model = fitted(categories=NAMES, category_cap=2, exclude_items=BLOCKED)
    model.save(tmp_path / "pipe")
    loaded = Recommender.load(tmp_path / "pipe")
    assert isinstance(loaded, TwoStagePipeline)
    users = split.train.users.ids[:30].tolist()
    for a, b in zip(model.recommend(users, 10), loaded.recommend(users, 10), strict=True):
        assert a.ids.tolist() == b.ids.tolist()


def test_bad_rules_and_stages_are_config_errors(shop_data: Dataset) -> None:
    with pytest.raises(ConfigError, match="no-such-item"):
        contract.make_model("pipeline", exclude_items=("no-such-item",)).fit(shop_data)
    with pytest.raises(ConfigError, match="itself"):
        get_model("pipeline", ranker="pipeline").fit(shop_data)
    with pytest.raises(ConfigError, match="unknown model"):
        get_model("pipeline", retrieval="nope").fit(shop_data)
