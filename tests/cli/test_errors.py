"""Bad input ends in one red `error:` line on stderr and exit code 1, without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

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
