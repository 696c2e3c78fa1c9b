"""Item and user feature columns of the CSV / Parquet loaders, inline or from a separate table."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.cli.conftest import fails, ok, run
from tuijian.data import Columns, Split
from tuijian.data.sources import from_frame, load
from tuijian.errors import ConfigError, DataError
from tuijian.evaluation.evaluate import category_matrix
from tuijian.models.classic import ContentBased

C = Columns

SHOP = """user,sku,category,name,age
u0,a,shoes|sport,Runner,31
u0,b,books,,31
u1,a,shoes|sport,,
u1,c, toys | games ,Blocks,22
u2,b,,Novel,40
u2,c,toys,,40
"""


@pytest.fixture
def shop_csv(tmp_path: Path) -> Path:
    path = tmp_path / "shop.csv"
    path.write_text(SHOP)
    return path


MAPPING = {C.user_id: "user", C.item_id: "sku"}


def test_inline_item_and_user_features(shop_csv: Path) -> None:
    raw = load(
        "csv",
        shop_csv,
        columns=MAPPING,
        item_features=["category", "title=name"],
        user_features="age",
    )
    items = raw.item_features
    assert items is not None and raw.user_features is not None
    assert items.columns == [C.item_id, C.categories, C.title]
    rows = {row[C.item_id]: row for row in items.iter_rows(named=True)}
    # each item takes the first non-empty value of each column, in file order
    assert rows["a"] == {C.item_id: "a", C.categories: ["shoes", "sport"], C.title: "Runner"}
    assert rows["b"] == {C.item_id: "b", C.categories: ["books"], C.title: "Novel"}
    assert rows["c"][C.categories] == ["toys", "games"]
    assert dict(raw.user_features.iter_rows()) == {"u0": "31", "u1": "22", "u2": "40"}


def test_separate_item_table_csv_and_parquet(shop_csv: Path, tmp_path: Path) -> None:
    table = pl.DataFrame(
        {"sku": ["a", "b", "c", "z"], "category": ["x|y", "y", None, "w"], "price": [1, 2, 3, 4]}
    )
    table.write_csv(tmp_path / "items.csv")
    table.write_parquet(tmp_path / "items.parquet")
    for name in ("items.csv", "items.parquet"):
        raw = load("csv", shop_csv, columns=MAPPING, items=tmp_path / name)
        items = raw.item_features
        assert items is not None
        assert items[C.item_id].to_list() == ["a", "b", "c", "z"]  # z: metadata only
        assert items[C.categories].to_list() == [["x", "y"], ["y"], None, ["w"]]
        assert items["price"].cast(pl.Int64).to_list() == [1, 2, 3, 4]
    shop = pl.read_csv(shop_csv, infer_schema=False)
    shop.write_parquet(tmp_path / "shop.parquet")
    raw = load(
        "parquet",
        tmp_path / "shop.parquet",
        columns=MAPPING,
        items=tmp_path / "items.parquet",
        item_features=["category"],
    )
    assert raw.item_features is not None and raw.item_features.columns == [C.item_id, C.categories]


def test_from_frame_features() -> None:
    frame = pl.read_csv(SHOP.encode(), infer_schema=False)
    raw = from_frame(frame, MAPPING, item_features=["categories=category"])
    assert raw.item_features is not None
    assert raw.item_features.filter(pl.col(C.item_id) == "b")[C.categories].item().to_list() == [
        "books"
    ]


def test_feature_errors_name_the_file_and_line(shop_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"shop\.csv: no item feature column\(s\) \['colour'\]"):
        load("csv", shop_csv, columns=MAPPING, item_features=["colour"])
    (tmp_path / "items.csv").write_text("sku,category\na,x\nb,y\na,z\n")
    with pytest.raises(DataError, match=r"items\.csv, line 4: sku 'a' repeats"):
        load("csv", shop_csv, columns=MAPPING, items=tmp_path / "items.csv")
    (tmp_path / "other.csv").write_text("id,category\na,x\n")
    with pytest.raises(
        DataError, match=r"other\.csv: no 'sku' or 'item_id' column to key the items by"
    ):
        load("csv", shop_csv, columns=MAPPING, items=tmp_path / "other.csv")
    with pytest.raises(ConfigError, match="must be a name or ours=theirs"):
        load("csv", shop_csv, columns=MAPPING, item_features=["title="])
    with pytest.raises(ConfigError, match="does not take option"):
        load("movielens", tmp_path, item_features=["category"])


def test_cli_categories_reach_content_and_diversity(shop_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    ok(
        "data", "prepare", "csv", shop_csv, "--out", out, "--option", "user_id=user",
        "--option", "item_id=sku", "--item-features", "category", "--item-features", "title=name",
        "--split", "random", "--ratios", "0.5,0.5",
    )  # fmt: skip
    train = Split.load(out).train
    assert train.item_features is not None
    assert train.item_features.columns == [C.item_id, C.categories, C.title]
    categories = category_matrix(train)
    assert categories is not None and categories.shape == (3, 5)  # books games shoes sport toys
    ContentBased().fit(train)  # reads the titles and categories
    result = run("data", "prepare", "csv", shop_csv, "--out", tmp_path / "bad",
                 "--option", "user_id=user", "--option", "item_id=sku",
                 "--item-features", "colour")  # fmt: skip
    fails(result, "colour", "shop.csv")
