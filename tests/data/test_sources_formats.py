"""Every named format on tiny files written here, so each loader is tested without shared data."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from tuijian.data import Columns
from tuijian.data.sources import load
from tuijian.data.sources.movielens import GENRES_100K
from tuijian.errors import ConfigError, DataError

C = Columns


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write a text fixture (creating its folder) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def flags(*on: int) -> str:
    """The 19 `|`-separated 100K genre flags with the given positions set."""
    return "|".join("1" if g in on else "0" for g in range(19))


# ---- MovieLens --------------------------------------------------------------------------------
@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    """A tiny ml-100k folder: 3 ratings, 2 movies (latin-1), 2 users."""
    folder = tmp_path / "ml-100k"
    write(folder / "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n2\t267\t1\t881250951\n")
    write(folder / "u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    write(
        folder / "u.item",
        f"10|Misérables, Les (1995)|01-Jan-1995||http://x|{flags(8, 17)}\n"
        f"267|unknown||||{flags(0)}\n",
        encoding="latin-1",
    )
    write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|T8H1N\n")
    return folder


def test_movielens_100k(ml100k: Path) -> None:
    raw = load("movielens", ml100k)
    assert raw.name == "ml-100k" and raw.notes == {"variant": "100k"}
    assert raw.interactions.rows() == [
        ("1", "10", 881250949, 5.0),
        ("2", "10", 881250950, 3.0),
        ("2", "267", 881250951, 1.0),
    ]
    assert raw.item_features is not None and raw.user_features is not None
    assert raw.item_features.rows() == [
        (
            "10",
            "Misérables, Les (1995)",
            1995,
            ["Drama", "War"],
            "Misérables, Les (1995). Drama, War",
        ),
        ("267", "unknown", None, ["unknown"], "unknown. unknown"),
    ]
    assert raw.user_features.rows() == [
        ("1", 24, "M", "technician", "85711"),
        ("2", 53, "F", "other", "T8H1N"),
    ]


def test_movielens_100k_bad_rating_names_line(ml100k: Path) -> None:
    write(ml100k / "u.data", "1\t10\t5\t881250949\n2\t10\tfive\t881250950\n")
    with pytest.raises(DataError, match=r"u\.data, line 2: column 'rating': cannot parse 'five'"):
        load("movielens", ml100k)


def test_movielens_100k_bad_user_age_names_line(ml100k: Path) -> None:
    write(ml100k / "u.user", "1|24|M|technician|85711\n2|old|F|other|T8H1N\n")
    with pytest.raises(DataError, match=r"u\.user, line 2: column 'age': cannot parse 'old'"):
        load("movielens", ml100k)


def test_movielens_1m_ratings_dat(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    write(folder / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    write(
        folder / "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3::Café: Paris (2000)::Comedy\n",
        encoding="latin-1",
    )
    write(folder / "users.dat", "1::F::1::10::48067\n")
    raw = load("movielens", folder)
    assert raw.notes == {"variant": "1m"}
    assert raw.interactions.rows() == [("1", "1193", 978300760, 5.0), ("1", "661", 978302109, 3.0)]
    assert raw.item_features is not None and raw.user_features is not None
    items = raw.item_features
    assert items[C.item_id].to_list() == ["1193", "661", "3"]
    assert items.row(1) == (
        "661",
        "James and the Giant Peach (1996)",
        1996,
        ["Animation", "Children's", "Musical"],
        "James and the Giant Peach (1996). Animation, Children's, Musical",
    )
    assert items[C.title][2] == "Café: Paris (2000)"
    assert raw.user_features.rows() == [("1", "F", 1, "10", "48067")]


def test_movielens_1m_pairs_tsv_and_parquet(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    tsv = folder / "ratings_user_movie_only.tsv.gz"
    folder.mkdir()
    tsv.write_bytes(gzip.compress(b"user_id\tmovie_id\n1\t1193\n2\t661\n"))
    raw = load("movielens", folder)
    assert raw.notes == {"variant": "1m-pairs", "file": tsv.name}
    assert raw.interactions.rows() == [("1", "1193"), ("2", "661")]
    assert raw.item_features is None
    pl.DataFrame({"userID": ["3"], "movieID": ["7"]}).write_parquet(
        folder / "ratings_user_movie_only.parquet"
    )
    assert load("movielens", folder).interactions.rows() == [("3", "7")]


def test_movielens_latest_joins_tags_into_text(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    write(
        folder / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n",
    )
    write(
        folder / "movies.csv",
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "2,Nobody (2021),(no genres listed)\n",
    )
    write(
        folder / "tags.csv",
        "userId,movieId,tag,timestamp\n1,1,politics,1\n2,1,funny,2\n3,1,politics,3\n",
    )
    raw = load("movielens", folder)
    assert raw.notes == {"variant": "latest"}
    assert raw.interactions.rows() == [("1", "1", 964982703, 4.0), ("1", "2", 964981247, 3.5)]
    assert raw.item_features is not None
    assert raw.item_features.rows() == [
        (
            "1",
            "American President, The (1995)",
            1995,
            ["Comedy", "Drama", "Romance"],
            "American President, The (1995). Comedy, Drama, Romance. funny, politics",
        ),
        ("2", "Nobody (2021)", 2021, [], "Nobody (2021)"),
    ]


def test_movielens_unknown_folder(tmp_path: Path) -> None:
    write(tmp_path / "data" / "x.txt", "hi")
    with pytest.raises(DataError, match=r"not a MovieLens folder .*found \['x\.txt'\]"):
        load("movielens", tmp_path / "data")
    with pytest.raises(DataError, match="MovieLens folder not found"):
        load("movielens", tmp_path / "absent")


# ---- RecBole ----------------------------------------------------------------------------------
@pytest.fixture
def recbole(tmp_path: Path) -> Path:
    """A tiny RecBole dataset `toy` with .inter, .item and .user files."""
    folder = tmp_path / "toy"
    write(
        folder / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t4\t881250949\n2\t11\t2.5\t881250950.0\n",
    )
    write(
        folder / "toy.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tvec:float_seq\n"
        "10\tToy Story\t1995\tAnimation Comedy\t0.5 1\n"
        "11\tHeat\t\t\t\n",
    )
    write(folder / "toy.user", "user_id:token\tage:float\n1\t24\n2\t\n")
    return folder


def test_recbole_atomic_files(recbole: Path) -> None:
    raw = load("recbole", recbole)
    assert raw.name == "toy"
    assert raw.interactions.rows() == [("1", "10", 881250949, 4.0), ("2", "11", 881250950, 2.5)]
    assert raw.item_features is not None and raw.user_features is not None
    assert raw.item_features.columns == [
        C.item_id,
        C.title,
        "release_year",
        C.categories,
        "vec",
        C.text,
    ]
    assert raw.item_features.rows() == [
        (
            "10",
            "Toy Story",
            "1995",
            ["Animation", "Comedy"],
            [0.5, 1.0],
            "Toy Story. Animation, Comedy",
        ),
        ("11", "Heat", None, [], [], "Heat"),
    ]
    assert raw.user_features.rows() == [("1", 24.0), ("2", None)]
    assert load("recbole", recbole / "toy.inter").interactions.height == 2


def test_recbole_field_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "d" / "d.inter", "uid:token\tiid:token\n1\t2\n")
    raw = load("recbole", path, columns={C.user_id: "uid", C.item_id: "iid"})
    assert raw.interactions.rows() == [("1", "2")]
    with pytest.raises(
        DataError, match=r"missing field 'user_id'; fields present: \['uid', 'iid'\]"
    ):
        load("recbole", path)


def test_recbole_errors(recbole: Path, tmp_path: Path) -> None:
    write(recbole / "toy.inter", "user_id:token\titem_id:token\trating:float\n1\t10\tgood\n")
    with pytest.raises(
        DataError, match=r"toy\.inter, line 2: column 'rating': cannot parse 'good'"
    ):
        load("recbole", recbole)
    write(recbole / "toy.inter", "user_id:token\titem_id:number\n1\t10\n")
    with pytest.raises(DataError, match=r"line 1: header field 'item_id:number'"):
        load("recbole", recbole)
    write(recbole / "toy.inter", "user_id:token\titem_id:token\n1\t10\n")
    write(recbole / "toy.item", "item_id:token\tvec:float_seq\n10\t1 x\n")
    with pytest.raises(DataError, match=r"toy\.item, line 2: column 'vec': cannot parse '1 x'"):
        load("recbole", recbole)
    write(tmp_path / "two" / "a.inter", "user_id:token\titem_id:token\n1\t2\n")
    write(tmp_path / "two" / "b.inter", "user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match=r"several \.inter files"):
        load("recbole", tmp_path / "two")
    with pytest.raises(DataError, match="RecBole dataset not found"):
        load("recbole", tmp_path / "none")


# ---- LightGCN and sequences -------------------------------------------------------------------
@pytest.fixture
def lightgcn(tmp_path: Path) -> Path:
    """A tiny LightGCN folder: trailing spaces, a tab, and a user with no test items."""
    folder = tmp_path / "toy-gcn"
    write(folder / "train.txt", "0 0 1 2 \n1  3\t4\n2 5\n")
    write(folder / "test.txt", "0 3\n1 \n2 0 1\n")
    return folder


def test_lightgcn_keeps_the_published_split(lightgcn: Path) -> None:
    raw = load("lightgcn", lightgcn)
    assert raw.fixed_split is not None
    assert raw.fixed_split["train"].rows() == [
        ("0", "0"),
        ("0", "1"),
        ("0", "2"),
        ("1", "3"),
        ("1", "4"),
        ("2", "5"),
    ]
    assert raw.fixed_split["test"].rows() == [("0", "3"), ("2", "0"), ("2", "1")]
    assert raw.interactions.height == 9
    assert raw.notes["users_without_items"] == {"train": [], "test": ["1"]}


def test_lightgcn_errors(lightgcn: Path) -> None:
    write(lightgcn / "test.txt", "0 3\n1 4 x5\n")
    with pytest.raises(DataError, match=r"test\.txt, line 2: column 3: cannot parse 'x5' as an id"):
        load("lightgcn", lightgcn)
    (lightgcn / "test.txt").unlink()
    with pytest.raises(DataError, match=r"LightGCN test file not found: .*test\.txt"):
        load("lightgcn", lightgcn)
    write(lightgcn / "test.txt", "\n \n")
    with pytest.raises(DataError, match="file is empty"):
        load("lightgcn", lightgcn)


def test_sequence_positions_and_attributes(tmp_path: Path) -> None:
    path = write(tmp_path / "Toy.txt", "1 5 3 5\n2 4\n")
    write(tmp_path / "Toy_item2attributes.json", '{"5": [1, 2], "3": [], "4": [7]}')
    raw = load("sequence", path)
    assert raw.name == "Toy"
    assert raw.interactions.rows() == [
        ("1", "5", 0),
        ("1", "3", 1),
        ("1", "5", 2),
        ("2", "4", 0),
    ]
    assert raw.item_features is not None
    assert raw.item_features.rows() == [("5", ["1", "2"]), ("3", []), ("4", ["7"])]


def test_sequence_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="sequence file not found"):
        load("sequence", tmp_path / "None.txt")
    path = write(tmp_path / "Toy.txt", "1 5 3\n")
    write(tmp_path / "Toy_item2attributes.json", '{"5": [1,\n')
    with pytest.raises(DataError, match=r"Toy_item2attributes\.json, line 2: not valid JSON"):
        load("sequence", path)


# ---- Taobao -----------------------------------------------------------------------------------
TAOBAO = (
    "1,100,7,pv,1511544070\n"  # 2017-11-25 01:21 China time: kept
    "1,101,8,buy,1505117799\n"  # 2017-09-11: outside
    "1,100,7,cart,1512316799\n"  # the last second of 2017-12-03 China time: kept
    "2,102,9,fav,1512316800\n"  # 2017-12-04 00:00 China time: outside
)


def test_taobao_filters_the_official_days(tmp_path: Path) -> None:
    path = write(tmp_path / "UserBehavior.csv", TAOBAO)
    raw = load("taobao", path)
    assert raw.interactions.rows() == [
        ("1", "100", 1511544070, "pv"),
        ("1", "100", 1512316799, "cart"),
    ]
    assert raw.notes["dropped_outside_time_range"] == 2
    assert raw.notes["rows_read"] == 4
    assert raw.item_features is not None
    assert raw.item_features.rows() == [("100", ["7"])]


def test_taobao_time_range_options(tmp_path: Path) -> None:
    path = write(tmp_path / "UserBehavior.csv", TAOBAO)
    assert load("taobao", tmp_path, time_range=None).interactions.height == 4
    raw = load("taobao", path, time_range=("2017-09-01", "2017-11-25T00:00:00+08:00"))
    assert raw.interactions[C.item_id].to_list() == ["101"]
    assert raw.notes["time_range"] == (1504224000, 1511539200)
    with pytest.raises(ConfigError, match="not before"):
        load("taobao", path, time_range=(5, 1))


def test_taobao_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "1,100,7,pv,1511544070\n\n1,100,7,like,1511544071\n")
    with pytest.raises(DataError, match=r"u\.csv, line 3: column 'behavior_type': 'like'"):
        load("taobao", path)
    write(path, "1,100,7,pv,yesterday\n")
    with pytest.raises(DataError, match=r"u\.csv, line 1: column 'timestamp'"):
        load("taobao", path)


# ---- Retailrocket -----------------------------------------------------------------------------
def test_retailrocket_caserec_files(tmp_path: Path) -> None:
    header = "visitorid\titemid\tevent\n"
    write(tmp_path / "view_ecommerce.dat", header + "1\t1\t1\n1\t2\t1\n")
    write(tmp_path / "add_to_cart_ecommerce.dat", header + "1\t2\t1\n")
    write(tmp_path / "purchase_ecommerce.dat", header + "1\t2\t1\n")
    raw = load("retailrocket", tmp_path)
    assert raw.interactions.rows() == [
        ("1", "1", "view"),
        ("1", "2", "view"),
        ("1", "2", "add_to_cart"),
        ("1", "2", "purchase"),
    ]
    assert raw.notes["rows"] == {"view": 2, "add_to_cart": 1, "purchase": 1}
    (tmp_path / "purchase_ecommerce.dat").unlink()
    with pytest.raises(DataError, match=r"files missing: \['purchase_ecommerce\.dat'\]"):
        load("retailrocket", tmp_path)


def test_retailrocket_kaggle_events(tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,addtocart,248676,\n"
        "1433221999827,111016,transaction,9999,4000\n",
    )
    raw = load("retailrocket", tmp_path)
    assert raw.interactions.rows() == [
        ("257597", "355908", 1433221332, "view"),
        ("992329", "248676", 1433224214, "add_to_cart"),
        ("111016", "9999", 1433221999, "purchase"),
    ]
    write(path, "timestamp,visitorid,event,itemid,transactionid\n1,2,click,3,\n")
    with pytest.raises(DataError, match=r"events\.csv, line 2: column 'event': 'click'"):
        load("retailrocket", tmp_path)
