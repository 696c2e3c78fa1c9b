"""Tests of the synthetic shop: shape, reproducibility, funnels, drift and learnable structure."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from tuijian.data import Columns
from tuijian.data.prepare import PrepareConfig, prepare
from tuijian.data.sources.base import RawData
from tuijian.data.split import random_split
from tuijian.data.synthetic import (
    CATEGORIES,
    PRESETS,
    SEGMENT,
    SyntheticConfig,
    generate,
    shop_dataset,
)
from tuijian.errors import ConfigError

C = Columns
TINY = PRESETS["tiny"]
CATEGORY = "cat"


@pytest.fixture(scope="module")
def tiny() -> RawData:
    return shop_dataset("tiny")


def test_tiny_shape_and_speed() -> None:
    start = time.perf_counter()
    raw = shop_dataset("tiny")
    assert time.perf_counter() - start < 1.0
    inter = raw.interactions
    assert isinstance(raw, RawData)
    assert inter.schema == pl.Schema(
        {C.user_id: pl.Utf8, C.item_id: pl.Utf8, C.timestamp: pl.Int64, C.event: pl.Utf8}
    )
    assert abs(inter.height - TINY.n_interactions) < 0.1 * TINY.n_interactions
    assert set(inter[C.event].unique()) == {"view", "cart", "buy"}
    span = TINY.days * 86_400
    assert inter[C.timestamp].min() >= TINY.start_time
    assert inter[C.timestamp].max() < TINY.start_time + span
    assert inter[C.timestamp].is_sorted()
    assert raw.item_features.height == TINY.n_items
    assert raw.user_features.height == TINY.n_users
    assert raw.user_features[SEGMENT].is_in(list(CATEGORIES[: TINY.n_categories])).all()


def test_same_seed_same_world_other_seed_other_world(tiny: RawData) -> None:
    again = shop_dataset("tiny")
    assert again.interactions.equals(tiny.interactions)
    assert again.item_features.equals(tiny.item_features)
    assert again.user_features.equals(tiny.user_features)
    assert not shop_dataset("tiny", seed=1).interactions.equals(tiny.interactions)


def test_funnel_cart_after_view_buy_after_cart(tiny: RawData) -> None:
    inter = tiny.interactions.with_row_index("event_row")
    keys = [C.user_id, C.item_id]
    for later, earlier in (("cart", "view"), ("buy", "cart")):
        follow = inter.filter(pl.col(C.event) == later)
        lead = inter.filter(pl.col(C.event) == earlier).select(
            *keys, pl.col(C.timestamp).alias("lead_time")
        )
        # every cart has a view of the same item by the same user at most 45 s before it
        matched = (
            follow.join(lead, on=keys)
            .filter(
                (pl.col("lead_time") < pl.col(C.timestamp))
                & (pl.col(C.timestamp) - pl.col("lead_time") <= 45)
            )
            .select("event_row")
            .unique()
        )
        assert matched.height == follow.height > 0
    counts = dict(inter[C.event].value_counts().iter_rows())
    assert counts["view"] > counts["cart"] > counts["buy"]


def test_long_tail_popularity(tiny: RawData) -> None:
    views = tiny.interactions[C.item_id].value_counts()["count"].sort(descending=True).to_numpy()
    top_share = views[: len(views) // 10].sum() / views.sum()
    assert top_share > 0.3  # a tenth of the items takes far more than a tenth of the events


def test_item_texts_use_category_words(tiny: RawData) -> None:
    items = tiny.item_features
    assert items.schema[C.categories] == pl.List(pl.Utf8)
    assert items[C.item_id].n_unique() == TINY.n_items
    row = items.row(0, named=True)
    (category,) = row[C.categories]
    assert category in CATEGORIES
    assert row[C.title].istitle()
    assert row[C.text].startswith(("A ", "An ")) and row[C.text].endswith(".")
    # the title's noun is also in the description
    assert row[C.title].split()[-1].lower() in row[C.text]
    # different categories have (almost) disjoint vocabularies
    words = items.select(
        pl.col(C.categories).list.first().alias(CATEGORY),
        pl.col(C.text).str.to_lowercase().str.extract_all(r"[a-z]+").alias("w"),
    ).explode("w")
    per_cat = words.group_by("w").agg(pl.col(CATEGORY).n_unique().alias("n"))
    common = {"a", "an", "in", "with", "and", "made", "for"}
    specific = per_cat.filter(~pl.col("w").is_in(list(common)))
    assert (specific["n"] == 1).mean() > 0.8


def _category_drift(drift: float) -> float:
    """Mean total variation between each user's category mix in the first and last third."""
    raw = generate(TINY.model_copy(update={"drift": drift}))
    cats = raw.item_features.select(C.item_id, pl.col(C.categories).list.first().alias(CATEGORY))
    views = raw.interactions.join(cats, on=C.item_id)
    t = views[C.timestamp]
    frac = (t - t.min()) / (t.max() - t.min())

    def mix(mask: pl.Series) -> pl.DataFrame:
        part = views.filter(mask).group_by(C.user_id, CATEGORY).len()
        return part.with_columns((pl.col("len") / pl.col("len").sum().over(C.user_id)).alias("p"))

    early, late = mix(frac < 1 / 3), mix(frac > 2 / 3)
    both = set(early[C.user_id]) & set(late[C.user_id])
    joined = (
        early.join(late, on=[C.user_id, CATEGORY], how="full", coalesce=True)
        .fill_null(0)
        .filter(pl.col(C.user_id).is_in(list(both)))
    )
    per_user = joined.group_by(C.user_id).agg((pl.col("p") - pl.col("p_right")).abs().sum() / 2)
    return float(per_user["p"].mean())


def test_tastes_drift_over_time() -> None:
    assert _category_drift(1.0) > _category_drift(0.0) + 0.1


def _recall_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    scores = np.where(train > 0, -np.inf, scores)
    top = np.argsort(-scores, axis=1)[:, :10]
    truth = test > 0
    n_truth = truth.sum(axis=1)
    users = n_truth > 0
    hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    return float((hits[users] / np.minimum(n_truth[users], 10)).mean())


def test_structure_is_learnable_item_knn_beats_popularity() -> None:
    config = TINY.model_copy(
        update={"n_users": 2_000, "n_items": 1_000, "n_interactions": 80_000, "n_categories": 10}
    )
    raw = generate(config)
    weights = {"view": 1.0, "cart": 3.0, "buy": 5.0}
    frame, _ = prepare(raw.interactions, PrepareConfig(event_weights=weights))
    split = random_split(frame, seed=0)
    train = (split.train.matrix > 0).astype(np.float64)
    test = split.test.matrix.toarray()
    norms = np.sqrt(np.asarray(train.sum(axis=0)).ravel()) + 1e-9
    cosine = (train.T @ train).toarray() / norms[:, None] / norms[None, :]
    np.fill_diagonal(cosine, 0.0)
    knn = _recall_at_10(np.asarray(train @ cosine), train.toarray(), test)
    popularity = np.broadcast_to(np.asarray(train.sum(axis=0)), test.shape)
    pop = _recall_at_10(popularity, train.toarray(), test)
    assert pop > 0.05
    assert knn > 1.5 * pop


def test_ratings_option() -> None:
    raw = generate(TINY.model_copy(update={"with_ratings": True}))
    ratings = raw.interactions[C.rating]
    assert ratings.dtype == pl.Float64
    assert set(ratings.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    mean = raw.interactions.group_by(C.event).agg(pl.col(C.rating).mean())
    by_event = dict(mean.iter_rows())
    assert by_event["buy"] > by_event["view"]  # liked items convert more often


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown synthetic scale 'huge'; valid: tiny, small, 1m"):
        shop_dataset("huge")
    with pytest.raises(ValidationError):
        SyntheticConfig(n_categories=len(CATEGORIES) + 1)
    with pytest.raises(ValidationError, match="n_items=3 < n_categories=5"):
        SyntheticConfig(n_items=3, n_categories=5)
    with pytest.raises(ValidationError):
        SyntheticConfig(n_user=3)  # type: ignore[call-arg]
