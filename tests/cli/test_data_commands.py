"""`tuijian data prepare` and `data synth`: column mappings, split protocols, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import fails, ok, run
from tuijian.data import Split

MAPPING = ("--option", "user_id=userId", "--option", "item_id=movieId", "--option", "timestamp=ts")


def _protocol(folder: Path) -> dict:
    return json.loads((folder / "split.json").read_text())


@pytest.mark.parametrize(
    ("split", "rows"),
    [
        # 6 users x 5 rows; per user: 1 test, 1 valid (half-up rounding of 0.5), 3 train
        ("random", {"train": 18, "valid": 6, "test": 6}),
        ("user-temporal", {"train": 18, "valid": 6, "test": 6}),
        ("leave-last-out", {"train": 18, "valid": 6, "test": 6}),
        # global time cut of 30 rows: the latest 3 test, the 3 before them valid
        ("temporal", {"train": 24, "valid": 3, "test": 3}),
    ],
)
def test_prepare_csv_with_column_mapping(
    ratings_csv: Path, tmp_path: Path, split: str, rows: dict[str, int]
) -> None:
    out = tmp_path / "prepared"
    result = ok("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--split", split)
    proto = _protocol(out)
    assert proto["name"] == split
    assert proto["rows"] == rows
    assert proto["dropped"] == {"valid": 0, "test": 0}
    loaded = Split.load(out)
    assert loaded.train.n_users == 6 and loaded.train.n_items == 6
    assert loaded.test.n_interactions == rows["test"]
    assert "aggregate" in result.stdout and str(out) in result.stdout.replace("\n", "")


def test_temporal_split_holds_out_the_latest_rows(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    ok("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--split", "temporal")
    split = Split.load(out)
    # ts = 10 * position + user: test is position 4 of users 3, 4, 5
    assert sorted(split.test.interactions["timestamp"].to_list()) == [43, 44, 45]
    assert sorted(split.valid.interactions["timestamp"].to_list()) == [40, 41, 42]


def test_prepare_filters_are_reported(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    ok(
        "data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING,
        "--rating-threshold", "3", "--min-item-interactions", "4", "--ratios", "0.8,0.2",
    )  # fmt: skip
    report = json.loads((out / "prepare.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    # rating = 1 + (u + j) % 5 >= 3 keeps (u + j) % 5 in {2, 3, 4}: 18 of 30 rows
    assert steps["rating threshold"]["rows_after"] == 18
    kept = [(u, (u + j) % 6) for u in range(6) for j in range(5) if (u + j) % 5 >= 2]
    per_item = {i: sum(1 for _, it in kept if it == i) for i in range(6)}
    assert steps["k-core"]["items_after"] == sum(1 for n in per_item.values() if n >= 4)
    proto = _protocol(out)
    assert proto["ratios"] == [0.8, 0.2] and "valid" not in proto["rows"]
    assert not (out / "valid.parquet").exists()


def test_prepare_source_options_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("".join(f"a{u};b{(u + j) % 4};{j}\n" for u in range(4) for j in range(3)))
    out = tmp_path / "prepared"
    ok(
        "data", "prepare", "csv", path, "--out", out, "--split", "leave-last-out",
        "--option", "separator=;", "--option", "has_header=false", "--option", "names=u,i,t",
        "--option", "user_id=u", "--option", "item_id=i", "--option", "timestamp=2",
    )  # fmt: skip
    assert _protocol(out)["rows"] == {"train": 4, "valid": 4, "test": 4}


def test_lightgcn_defaults_to_its_fixed_split(tmp_path: Path) -> None:
    folder = tmp_path / "gowalla"
    folder.mkdir()
    (folder / "train.txt").write_text("0 1 2\n1 2 3\n2 1 3\n")
    (folder / "test.txt").write_text("0 3\n1 1\n2 2\n")
    out = tmp_path / "prepared"
    ok("data", "prepare", "lightgcn", folder, "--out", out)
    proto = _protocol(out)
    assert proto["name"] == "fixed"
    assert proto["rows"] == {"train": 6, "test": 3}


def test_prepare_overwrites_its_own_output_only(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    ok("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING)
    assert (out / "valid.parquet").exists()
    ok("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--ratios", "0.8,0.2")
    assert not (out / "valid.parquet").exists()  # no stale part from the first run
    assert Split.load(out).valid is None


def test_synth_writes_prepared_shop(tiny_data: Path) -> None:
    split = Split.load(tiny_data)
    proto = _protocol(tiny_data)
    assert proto["name"] == "random" and proto["seed"] == 0
    assert split.train.n_users == 300
    assert split.train.item_features is not None and "title" in split.train.item_features.columns
    report = json.loads((tiny_data / "prepare.json").read_text())
    assert report["config"]["event_weights"] == {"view": 1.0, "cart": 3.0, "buy": 5.0}


def test_prepare_held_out_users(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    result = ok(
        "data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--split", "users",
        "--ratios", "0.6,0.2,0.2", "--query-fraction", "0.6", "--query-order", "time",
        "--seed", "3",
    )  # fmt: skip
    proto = _protocol(out)
    # 6 users of 5 rows: floor(6 * 0.2 + 0.5) = 1 valid and 1 test user, each with
    # floor(5 * 0.6 + 0.5) = 3 history rows (the earliest) and 2 truth rows
    assert proto["name"] == "users" and proto["seed"] == 3 and proto["order"] == "time"
    assert (proto["valid"], proto["test"], proto["query_fraction"]) == (0.2, 0.2, 0.6)
    assert proto["rows"] == {
        "train": 20, "valid": 2, "test": 2, "valid_history": 3, "test_history": 3,
    }  # fmt: skip
    split = Split.load(out)
    assert split.train.n_users == 6  # held-out users stay in the vocabulary
    train_users = set(split.train.interactions["user_idx"])
    for part in ("valid", "test"):
        truth, history = split.parts()[part].interactions, split.histories[part].interactions
        assert set(truth["user_idx"]) == set(history["user_idx"])
        assert not set(truth["user_idx"]) & train_users
        # ts = 10 * position + user: the truth is positions 3 and 4
        assert sorted(t // 10 for t in truth["timestamp"]) == [3, 4]
        assert sorted(t // 10 for t in history["timestamp"]) == [0, 1, 2]
    assert "test history" in result.stdout
    ok("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--split", "random")
    assert Split.load(out).histories == {}  # no stale history from the first run


def test_prepare_held_out_users_rejects_bad_options(ratings_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    base = ("data", "prepare", "csv", ratings_csv, "--out", out, *MAPPING, "--split", "users")
    fails(run(*base, "--query-fraction", "1.5"), "--query-fraction")
    fails(run(*base, "--query-order", "last"), "--query-order")
    fails(run(*base, "--ratios", "0.5,0.6"), "ratios")


def test_held_out_users_from_prepare_to_evaluate(shop_data, tmp_path: Path) -> None:
    csv = tmp_path / "shop.csv"
    shop_data.external().select("user_id", "item_id", "weight").write_csv(csv)
    data = tmp_path / "prepared"
    ok("data", "prepare", "csv", csv, "--out", data, "--split", "users", "--seed", "1")
    ndcg = {}
    for name in ("ease", "pop"):
        folder, out = tmp_path / name, tmp_path / f"{name}.json"
        ok("train", name, "--data", data, "--out", folder)
        ok("evaluate", folder, "--data", data, "--k", "10", "--json", out)
        payload = json.loads(out.read_text())
        assert payload["protocol"]["queries"] == "held-out users"
        assert payload["protocol"]["n_users"] == 30  # 10 % of the 300 shop users
        ndcg[name] = payload["summary"]["ndcg@10"]
    # users unseen at fit, scored from their histories; measured 0.376 vs 0.157
    assert ndcg["ease"] > ndcg["pop"] + 0.1
