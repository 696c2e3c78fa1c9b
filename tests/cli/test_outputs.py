"""No output is lost: folders are swapped in whole on success, and compare keeps what it has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import fails, ok, run
from tuijian.models.base import Recommender

BPR = ("--set", "embedding_size=4", "--set", "epochs=2")
CSV = ("--option", "user_id=userId", "--option", "item_id=movieId", "--ratios", "0.6,0.2,0.2")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), to compare before and after."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Names beside `folder` that a staged write left behind (temporary or old copies)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}"))


@pytest.fixture
def saved_bpr(tiny_data: Path, tmp_path: Path) -> Path:
    """A model folder written by `train bpr`."""
    out = tmp_path / "bpr"
    ok("train", "bpr", "--data", tiny_data, "--out", out, *BPR)
    return out


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        (("--set", "valid_metric=bogus@10"), "valid_metric"),
        (("--device", "nonsense"), "not a torch device"),
        (("--set", "pretrained=no/such/model"), "no/such/model"),
    ],
)
def test_a_failed_train_leaves_the_previous_model_folder_byte_identical(
    saved_bpr: Path, tiny_data: Path, flags: tuple[str, ...], word: str
) -> None:
    before = snapshot(saved_bpr)
    fails(run("train", "bpr", "--data", tiny_data, "--out", saved_bpr, *BPR, *flags), word)
    assert snapshot(saved_bpr) == before
    assert leftovers(saved_bpr) == []


def test_a_successful_train_replaces_the_whole_folder(saved_bpr: Path, tiny_data: Path) -> None:
    (saved_bpr / "notes.json").write_text("{}")  # a stale file of the previous model
    ok("train", "pop", "--data", tiny_data, "--out", saved_bpr)
    assert Recommender.load(saved_bpr).name == "pop"
    assert not (saved_bpr / "notes.json").exists() and leftovers(saved_bpr) == []


def test_train_refuses_a_folder_that_is_not_a_model(tiny_data: Path, tmp_path: Path) -> None:
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    fails(run("train", "pop", "--data", tiny_data, "--out", other), "not a saved model folder")
    assert (other / "thesis.txt").read_text() == "keep me"


def test_a_failed_prepare_leaves_the_prepared_folder_and_a_replace_says_so(
    ratings_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    ok("data", "prepare", "csv", ratings_csv, "--out", out, *CSV)
    before = snapshot(out)
    bad = run("data", "prepare", "csv", ratings_csv, "--out", out, *CSV, "--split", "fixed")
    fails(bad, "--split fixed")
    assert snapshot(out) == before and leftovers(out) == []
    again = ok("data", "prepare", "csv", ratings_csv, "--out", out, *CSV)
    assert "replaced the prepared data" in again.stdout
    assert snapshot(out) == before  # the same inputs give the same files


def test_a_failed_synth_leaves_the_prepared_folder(tiny_data: Path) -> None:
    before = snapshot(tiny_data)
    result = run("data", "synth", "--out", tiny_data, "--scale", "huge")
    assert result.exit_code != 0
    assert snapshot(tiny_data) == before and leftovers(tiny_data) == []


def test_compare_goes_on_past_a_failing_model(tiny_data: Path, tmp_path: Path) -> None:
    out, save = tmp_path / "compare.json", tmp_path / "models"
    result = run(
        "compare", "pop", "ease", "itemknn", "--data", tiny_data, "--k", "10",
        "--set", "ease.max_items=10", "--json", out, "--save", save,
    )  # fmt: skip
    line = fails(result, "1 of 3 models failed", "ease")
    assert "max_items" in result.stdout and "itemknn" in result.stdout  # the table has all three
    payload = json.loads(out.read_text())
    assert "max_items" in payload["ease"]["error"] and "\n" not in payload["ease"]["error"]
    assert payload["pop"]["ndcg@10"] >= 0 and payload["itemknn"]["ndcg@10"] >= 0
    assert payload["protocol"]["name"] == "full-ranking"
    assert sorted(p.name for p in save.iterdir()) == ["compare.json", "itemknn", "pop"]
    assert Recommender.load(save / "itemknn").name == "itemknn"
    ok("evaluate", save / "pop", "--k", "10")  # fit.json points at the data
    assert str(out) not in line


def test_compare_save_keeps_the_fitted_models(tiny_data: Path, tmp_path: Path) -> None:
    save = tmp_path / "models"
    ok("compare", "pop", "ease", "--data", tiny_data, "--k", "10", "--save", save)
    first = snapshot(save / "ease")
    ok("compare", "pop", "ease", "--data", tiny_data, "--k", "10", "--save", save)
    assert snapshot(save / "ease").keys() == first.keys() and leftovers(save) == []
    assert json.loads((save / "compare.json").read_text())["ease"]["ndcg@10"] > 0


def test_a_report_is_replaced_whole(saved_bpr: Path, tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    out.write_text('{"old": true}')
    ok("evaluate", saved_bpr, "--k", "10", "--json", out)
    assert "summary" in json.loads(out.read_text())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".eval")) == []
