"""The rankable catalogue is what survives preparation; other feature rows stay metadata."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tuijian.cli.data_commands import prepare_and_split
from tuijian.data import Columns, PrepareConfig, Split, build_dataset
from tuijian.data.sources import RawData
from tuijian.errors import ConfigError, DataError, UnknownIdError
from tuijian.models.classic import ContentBased

C = Columns


def _raw() -> RawData:
    """u0..u2 rate i0..i2; i3 has one rating (a 2-core removes it); i9 is only a feature row."""
    rows = [
        ("u0", "i0", 5.0), ("u0", "i1", 4.0), ("u0", "i2", 2.0),
        ("u1", "i0", 4.0), ("u1", "i1", 5.0), ("u1", "i2", 4.0),
        ("u2", "i0", 3.0), ("u2", "i1", 4.0), ("u2", "i2", 5.0), ("u2", "i3", 5.0),
    ]  # fmt: skip
    inter = pl.DataFrame(rows, schema=[C.user_id, C.item_id, C.rating], orient="row")
    inter = inter.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(C.timestamp))
    ids = ["i0", "i1", "i2", "i3", "i9"]
    features = pl.DataFrame({C.item_id: ids, C.title: [f"title {i}" for i in ids]})
    return RawData(inter, item_features=features, name="toy")


def test_feature_rows_do_not_enter_the_catalogue_by_default() -> None:
    raw = _raw()
    data = build_dataset(raw.interactions, item_features=raw.item_features)
    assert data.items.ids.tolist() == ["i0", "i1", "i2", "i3"]
    assert data.item_features is not None and data.item_features.height == 5  # metadata kept
    assert data.feature_only_items == ["i9"]
    assert data.meta["catalogue"] == "interactions"


def test_catalogue_features_makes_feature_only_items_rankable() -> None:
    raw = _raw()
    data = build_dataset(raw.interactions, item_features=raw.item_features, catalogue="features")
    assert data.items.ids.tolist() == ["i0", "i1", "i2", "i3", "i9"]
    assert data.item_popularity.tolist() == [3, 3, 3, 1, 0]
    assert data.feature_only_items == []


def test_catalogue_option_is_checked() -> None:
    raw = _raw()
    with pytest.raises(ConfigError, match="catalogue must be one of interactions, features"):
        build_dataset(raw.interactions, catalogue="everything")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="lacks the 'item_id' column"):
        build_dataset(raw.interactions, item_features=pl.DataFrame({"sku": ["i0"]}))


@pytest.mark.parametrize("split", ["random", "leave-last-out", "users"])
def test_prepared_split_ranks_only_what_preparation_kept(split: str, tmp_path: Path) -> None:
    raw = _raw()
    config = PrepareConfig(min_item_interactions=2, rating_threshold=3.0)
    ratios = [0.6, 0.2, 0.2] if split == "users" else [0.8, 0.1, 0.1]
    parts, report = prepare_and_split(raw, config, split, ratios=ratios, seed=0, unseen="keep")
    counts = report.to_dict()
    assert counts["items"] == 3  # i2 loses u0's 2-star row, i3 its only row is one
    for data in (parts.train, parts.test):
        assert (data.n_users, data.n_items) == (counts["users"], counts["items"])
        assert data.items.ids.tolist() == ["i0", "i1", "i2"]
        assert data.item_features is not None and data.item_features.height == 5
    parts.save(tmp_path / "prepared")
    loaded = Split.load(tmp_path / "prepared")
    assert loaded.train.items.ids.tolist() == ["i0", "i1", "i2"]
    assert sorted(loaded.train.feature_only_items) == ["i3", "i9"]


def test_fixed_split_ranks_only_what_preparation_kept() -> None:
    raw = _raw()
    inter = raw.interactions
    fixed = {"train": inter[:7], "test": inter[7:]}
    raw = RawData(inter, item_features=raw.item_features, fixed_split=fixed, name="toy")
    config = PrepareConfig(min_item_interactions=2)
    parts, report = prepare_and_split(raw, config, "fixed", ratios=[], seed=0, unseen="keep")
    assert parts.train.n_items == report.to_dict()["items"] == 3
    assert parts.train.feature_only_items == ["i3", "i9"]


def test_a_model_never_ranks_feature_only_items() -> None:
    raw = _raw()
    data = build_dataset(raw.interactions, item_features=raw.item_features)
    model = ContentBased().fit(data)  # reads the feature table, i9's row included
    (items,) = model.recommend("u0", 10, exclude_seen=False)
    assert sorted(items.ids.tolist()) == ["i0", "i1", "i2", "i3"]
    with pytest.raises(UnknownIdError, match="i9"):
        model.recommend("u0", 2, candidates=["i0", "i9"])
