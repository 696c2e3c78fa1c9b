"""Every loader on the real files in ../shared/data, against the counts verified in its README."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import shared_path
from tuijian.cli.data_commands import prepare_and_split
from tuijian.data import Columns, PrepareConfig, Split
from tuijian.data.sources import RawData, load

C = Columns


def test_movielens_100k() -> None:
    raw = load("movielens", shared_path("ml-100k"))
    inter = raw.interactions
    assert (inter.height, raw.n_users, raw.n_items) == (100_000, 943, 1_682)
    counts = dict(inter[C.rating].value_counts().sort(C.rating).rows())
    assert counts == {1.0: 6_110, 2.0: 11_370, 3.0: 27_145, 4.0: 34_174, 5.0: 21_201}
    assert (inter[C.timestamp].min(), inter[C.timestamp].max()) == (874724710, 893286638)
    items, users = raw.item_features, raw.user_features
    assert items is not None and users is not None
    assert (items.height, users.height) == (1_682, 943)
    assert items.filter(pl.col(C.item_id) == "267")[C.title].item() == "unknown"
    toy = items.filter(pl.col(C.item_id) == "1").row(0, named=True)
    assert toy[C.categories] == ["Animation", "Children's", "Comedy"]
    assert toy["year"] == 1995
    assert items[C.title].str.contains("Misérables").sum() >= 1
    assert (~users["zip_code"].str.contains(r"^\d+$")).sum() == 18


def test_recbole_ml_100k_matches_the_original_files() -> None:
    raw = load("recbole", shared_path("ml-100k", "recbole-atomic"))
    original = load("movielens", shared_path("ml-100k"))
    assert raw.name == "ml-100k"
    assert raw.interactions.equals(original.interactions)
    items, users = raw.item_features, raw.user_features
    assert items is not None and users is not None
    assert (items.height, users.height) == (1_682, 943)
    toy = items.filter(pl.col(C.item_id) == "1").row(0, named=True)
    assert toy[C.title] == "Toy Story"
    assert toy[C.categories] == ["Animation", "Children's", "Comedy"]


def test_movielens_1m_pairs_parquet() -> None:
    raw = load("movielens", shared_path("ml-1m"))
    inter = raw.interactions
    assert raw.notes["variant"] == "1m-pairs"
    assert inter.columns == [C.user_id, C.item_id]
    assert (inter.height, raw.n_users, raw.n_items) == (1_000_209, 6_040, 3_706)
    assert inter.unique().height == inter.height
    items, users = raw.item_features, raw.user_features
    assert items is not None and users is not None
    assert (items.height, users.height) == (3_883, 6_040)
    assert inter[C.item_id].is_in(items[C.item_id].implode()).all()
    assert items.filter(pl.col(C.item_id) == "1")[C.categories].item().to_list() == [
        "Animation",
        "Children's",
        "Comedy",
    ]


def test_movielens_1m_pairs_tsv_gives_the_same_pairs(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    tsv = "ratings_user_movie_only.tsv.gz"
    (folder / tsv).symlink_to(shared_path("ml-1m", tsv))
    raw = load("movielens", folder)
    assert raw.notes == {"variant": "1m-pairs", "file": tsv}
    assert raw.interactions.equals(load("movielens", shared_path("ml-1m")).interactions)


@pytest.fixture(scope="module")
def gowalla() -> tuple[RawData, float]:
    """The gowalla split, read once, and the seconds it took."""
    path = shared_path("lightgcn-splits", "gowalla")
    start = time.perf_counter()
    raw = load("lightgcn", path)
    return raw, time.perf_counter() - start


def test_lightgcn_gowalla(gowalla: tuple[RawData, float]) -> None:
    raw, seconds = gowalla
    assert raw.fixed_split is not None
    train, test = raw.fixed_split["train"], raw.fixed_split["test"]
    assert (train.height, test.height, raw.interactions.height) == (810_128, 217_242, 1_027_370)
    assert raw.n_users == train[C.user_id].n_unique() == 29_858
    assert (train[C.item_id].n_unique(), test[C.item_id].n_unique()) == (40_981, 38_546)
    assert train.join(test, on=[C.user_id, C.item_id]).height == 0
    assert seconds < 3.0


def test_sequence_beauty() -> None:
    raw = load("sequence", shared_path("s3rec-amazon-yelp-lastfm", "Beauty.txt"))
    inter = raw.interactions
    assert (inter.height, raw.n_users, raw.n_items) == (198_502, 22_363, 12_101)
    lengths = inter.group_by(C.user_id).len()["len"]
    assert (lengths.min(), lengths.max()) == (5, 204)
    last = inter.group_by(C.user_id).agg(pl.col(C.timestamp).max(), pl.len())
    assert (last[C.timestamp] == last["len"] - 1).all()
    items = raw.item_features
    assert items is not None
    assert items.height == 12_101
    assert items[C.categories].explode().n_unique() == 637


def test_taobao_head() -> None:
    path = shared_path("taobao-userbehavior-head", "UserBehavior_head.csv")
    everything = load("taobao", path, time_range=None)
    inter = everything.interactions
    assert (inter.height, everything.n_users, everything.n_items) == (84_287, 814, 55_233)
    events = dict(inter[C.event].value_counts().rows())
    assert events == {"pv": 75_693, "cart": 4_494, "fav": 2_351, "buy": 1_749}
    assert inter[C.timestamp].min() == 1505117799
    items = everything.item_features
    assert items is not None
    assert items[C.categories].explode().n_unique() == 2_911
    raw = load("taobao", path)
    assert raw.notes["dropped_outside_time_range"] == 35
    assert raw.interactions.height == 84_287 - 35


def test_retailrocket_caserec() -> None:
    raw = load("retailrocket", shared_path("retailrocket-caserec"))
    assert (raw.interactions.height, raw.n_users, raw.n_items) == (92_487, 3_431, 8_885)
    assert raw.notes["rows"] == {"view": 78_371, "add_to_cart": 9_028, "purchase": 5_088}
    assert C.timestamp not in raw.interactions.columns


# ---- the catalogue follows preparation: the report's counts are the dataset's ----------------
_ML_100K = {"separator": "\t", "has_header": False}
_ML_100K_NAMES = [C.user_id, C.item_id, C.rating, C.timestamp]


@pytest.mark.parametrize(
    ("fmt", "parts", "options", "config", "split", "expected"),
    [
        ("movielens", ("ml-100k",), {}, {"rating_threshold": 4}, "random", (942, 1_447)),
        (
            "recbole",
            ("ml-100k", "recbole-atomic"),
            {},
            {"rating_threshold": 4},
            "random",
            (942, 1_447),
        ),
        (
            "csv",
            ("ml-100k", "u.data"),
            {**_ML_100K, "names": _ML_100K_NAMES},
            {"rating_threshold": 4},
            "temporal",
            (942, 1_447),
        ),
        (
            "movielens",
            ("ml-1m",),
            {},
            {"min_user_interactions": 20, "min_item_interactions": 50},
            "random",
            (5_988, 2_514),
        ),
        (
            "parquet",
            ("ml-1m", "ratings_user_movie_only.parquet"),
            {"columns": {C.user_id: "userID", C.item_id: "movieID"}},
            {"min_user_interactions": 20, "min_item_interactions": 50},
            "random",
            (5_988, 2_514),
        ),
        (
            "taobao",
            ("taobao-userbehavior-head", "UserBehavior_head.csv"),
            {},
            {"min_user_interactions": 5, "min_item_interactions": 2, "default_event_weight": 1},
            "random",
            (607, 5_440),
        ),
        (
            "sequence",
            ("s3rec-amazon-yelp-lastfm", "Beauty.txt"),
            {},
            {"min_item_interactions": 10},
            "leave-last-out",
            (22_319, 5_510),
        ),
        (
            "retailrocket",
            ("retailrocket-caserec",),
            {},
            {"min_item_interactions": 5, "default_event_weight": 1},
            "random",
            (3_429, 5_730),
        ),
        (
            "lightgcn",
            ("lightgcn-splits", "gowalla"),
            {},
            {"min_item_interactions": 30},
            "fixed",
            (29_731, 7_269),
        ),
    ],
    ids=[
        "movielens",
        "recbole",
        "csv",
        "movielens-1m",
        "parquet",
        "taobao",
        "sequence",
        "retailrocket",
        "lightgcn",
    ],
)
def test_prepared_catalogue_matches_the_report(
    fmt: str,
    parts: tuple[str, ...],
    options: dict[str, Any],
    config: dict[str, Any],
    split: str,
    expected: tuple[int, int],
    tmp_path: Path,
) -> None:
    raw = load(fmt, shared_path(*parts), **options)
    cut, report = prepare_and_split(
        raw, PrepareConfig(**config), split, ratios=[0.8, 0.1, 0.1], seed=0, unseen="drop"
    )
    counts = report.to_dict()
    assert (counts["users"], counts["items"]) == expected
    loaded = Split.load(cut.save(tmp_path / "prepared"))
    for data in (cut.train, loaded.train, loaded.test):
        assert (data.n_users, data.n_items) == expected
    rows = sum(cut.protocol["rows"].values()) + sum(cut.protocol["dropped"].values())
    assert rows == counts["rows"]
    if raw.item_features is not None:  # feature rows of removed items: metadata, not ranked
        assert loaded.train.item_features is not None
        assert loaded.train.item_features.height == raw.item_features.height
        removed = set(raw.item_features[C.item_id]) - set(loaded.train.items.ids.tolist())
        assert set(loaded.train.feature_only_items) == removed
