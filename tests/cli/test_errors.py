"""Bad input ends in one red `error:` line on stderr and exit code 1, without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from tests.cli.conftest import fails, ok, run
from tuijian.errors import DataError

MAPPING = ("--option", "user_id=userId", "--option", "item_id=movieId")


@pytest.fixture(scope="module")
def pop_model(tiny_data: Path) -> Path:
    folder = tiny_data.parent / "pop-for-errors"
    ok("train", "pop", "--data", tiny_data, "--out", folder)
    return folder


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    fails(run("data", "prepare", "csv", missing, "--out", tmp_path / "o"), "not found", "nope.csv")


def test_missing_data_folder(tmp_path: Path) -> None:
    fails(run("train", "pop", "--data", tmp_path / "absent", "--out", tmp_path / "m"), "absent")


def test_missing_model_folder(tmp_path: Path, tiny_data: Path) -> None:
    line = fails(run("evaluate", tmp_path / "no-model", "--data", tiny_data), "no-model")
    assert "not a saved model folder" in line


def test_missing_column(ratings_csv: Path, tmp_path: Path) -> None:
    args = ("--option", "user_id=user", "--option", "item_id=movieId")
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *args)
    fails(result, "missing column 'user'", "userId")


def test_unparsable_value_names_file_line_and_column(ratings_csv: Path, tmp_path: Path) -> None:
    lines = ratings_csv.read_text().splitlines()
    lines[3] = "u0,m2,3,yesterday"  # line 4 of the file
    ratings_csv.write_text("\n".join(lines) + "\n")
    args = (*MAPPING, "--option", "timestamp=ts")
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *args)
    fails(result, "ratings.csv, line 4", "'ts'", "'yesterday'")


def test_nothing_left_after_filtering(ratings_csv: Path, tmp_path: Path) -> None:
    args = (*MAPPING, "--min-user-interactions", "50")
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *args)
    fails(result, "nothing left after k-core", "min_user_interactions=50")


def test_unknown_model_lists_the_names(tiny_data: Path, tmp_path: Path) -> None:
    result = run("train", "easy", "--data", tiny_data, "--out", tmp_path / "m")
    fails(result, "unknown model 'easy'", "ease", "itemknn", "pop")


def test_unknown_parameter_lists_the_valid_ones(tiny_data: Path, tmp_path: Path) -> None:
    result = run("train", "ease", "--data", tiny_data, "--out", tmp_path / "m", "--set", "l3=1")
    fails(result, "l3", "l2", "max_items")


def test_bad_parameter_value(tiny_data: Path, tmp_path: Path) -> None:
    result = run("train", "ease", "--data", tiny_data, "--out", tmp_path / "m", "--set", "l2=abc")
    fails(result, "l2", "'abc'")


def test_compare_set_needs_a_compared_model(tiny_data: Path) -> None:
    fails(run("compare", "pop", "--data", tiny_data, "--set", "ease.l2=1"), "ease")


def test_unknown_user(pop_model: Path) -> None:
    fails(run("recommend", pop_model, "--user", "nobody"), "unknown user_id", "'nobody'")


def test_unknown_format(tmp_path: Path) -> None:
    result = run("data", "prepare", "excel", tmp_path, "--out", tmp_path / "o")
    fails(result, "unknown data format 'excel'", "csv", "lightgcn")


def test_bad_flag_value_names_the_flag(ratings_csv: Path, tmp_path: Path) -> None:
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", "--split", "x")
    fails(result, "--split")


def test_refuses_to_write_into_an_unrelated_folder(tiny_data: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    fails(run("train", "pop", "--data", tiny_data, "--out", tmp_path), "not empty")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_required_option_is_a_usage_error(tiny_data: Path) -> None:
    result = run("train", "pop", "--data", tiny_data)
    assert result.exit_code == 2 and "--out" in result.output


def test_debug_shows_the_exception(tmp_path: Path) -> None:
    result = run("--debug", "train", "pop", "--data", tmp_path / "absent", "--out", tmp_path / "m")
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("has_header=maybe", ("has_header='maybe'", "bool")),
        ("names=1", ("names=1", "list[str]")),
        ("encoding=klingon", ("unknown text encoding 'klingon'", "--option encoding")),
        ("columns=true", ("columns='true' is not a mapping", "--option user_id=userId")),
    ],
)
def test_bad_source_option_value(
    ratings_csv: Path, tmp_path: Path, option: str, words: tuple[str, ...]
) -> None:
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING,
                 "--option", option)  # fmt: skip
    fails(result, *words)


def test_row_with_too_many_columns_names_its_line(ratings_csv: Path, tmp_path: Path) -> None:
    lines = ratings_csv.read_text().splitlines()
    lines[3] += ",extra,more"  # line 4 of the file
    ratings_csv.write_text("\n".join(lines) + "\n")
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING)
    fails(result, "ratings.csv, line 4", "6 fields", "header has 4")


def test_invalid_utf8_names_its_line_and_the_encoding_option(
    ratings_csv: Path, tmp_path: Path
) -> None:
    lines = ratings_csv.read_bytes().splitlines()
    lines[5] = b"u1,m\xff9,3,7"  # line 6 of the file
    ratings_csv.write_bytes(b"\n".join(lines) + b"\n")
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING)
    fails(result, "ratings.csv, line 6", "utf-8", "--option encoding=latin-1")
    ok("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING,
       "--option", "encoding=latin-1")  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_folder_given_for_a_file(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "logs").mkdir()
    result = run("data", "prepare", fmt, tmp_path / "logs", "--out", tmp_path / "o")
    fails(result, "logs is a folder", "expected a file")


def test_header_read_as_one_column_hints_the_separator(ratings_csv: Path, tmp_path: Path) -> None:
    ratings_csv.write_text(ratings_csv.read_text().replace(",", ";"))
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING)
    fails(result, "parses as one column", "--option separator=';'")


def test_device_this_torch_lacks(tiny_data: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this torch build has CUDA")
    out = tmp_path / "m"
    result = run("train", "bpr", "--data", tiny_data, "--out", out, "--device", "cuda")
    fails(result, "device 'cuda'", "CUDA build of torch", "--device cpu")
    assert not out.exists()


def test_evaluate_with_a_cut_off_beyond_the_catalogue(pop_model: Path, tiny_data: Path) -> None:
    result = ok("evaluate", pop_model, "--data", tiny_data, "--k", "150,100001,1000000000000")
    assert "ndcg" in result.stdout


def test_recommend_k_is_clipped_to_the_catalogue(pop_model: Path, tiny_data: Path) -> None:
    user = pl.read_parquet(tiny_data / "users.parquet")[0, 0]
    result = ok("recommend", pop_model, "--user", user, "-k", "1000000000000", "--json")
    items = json.loads(result.stdout)[user]["items"]
    n_items = pl.read_parquet(tiny_data / "items.parquet").height
    assert 0 < len(items) <= n_items and len({i["item_id"] for i in items}) == len(items)
    table = ok("recommend", pop_model, "--user", user, "-k", "1000000000000")
    assert table.stdout.count(" i") >= len(items)


def test_separator_that_cannot_separate(ratings_csv: Path, tmp_path: Path) -> None:
    result = run("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING,
                 "--option", "separator=")  # fmt: skip
    fails(result, "separator ''", "--option separator=")


def test_separator_of_several_bytes(ratings_csv: Path, tmp_path: Path) -> None:
    ratings_csv.write_text(ratings_csv.read_text().replace(",", "é"))
    ok("data", "prepare", "csv", ratings_csv, "--out", tmp_path / "o", *MAPPING,
       "--option", "separator=é")  # fmt: skip
