"""`tuijian train / evaluate / recommend / compare / models` round trips on the tiny shop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import ok
from tuijian.data import Split
from tuijian.evaluation import evaluate
from tuijian.models.base import Recommender

MODELS = ("pop", "ease", "itemknn")


@pytest.fixture(scope="module")
def trained(tiny_data: Path) -> dict[str, Path]:
    """pop, ease (l2 set from the command line) and itemknn fitted on the tiny shop."""
    folders = {}
    for name in MODELS:
        folder = tiny_data.parent / "models" / name
        extra = ("--set", "l2=250") if name == "ease" else ()
        result = ok("train", name, "--data", tiny_data, "--out", folder, *extra)
        assert "fitted in" in result.stdout
        folders[name] = folder
    return folders


def test_train_saves_a_loadable_model(trained: dict[str, Path], tiny_data: Path) -> None:
    ease = Recommender.load(trained["ease"])
    assert ease.name == "ease" and ease.config.l2 == 250.0  # "250" coerced to float
    record = json.loads((trained["ease"] / "fit.json").read_text())
    assert Path(record["data"]) == tiny_data.resolve() and record["fit_seconds"] > 0


def test_evaluate_json_matches_the_library(
    trained: dict[str, Path], tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    result = ok("evaluate", trained["ease"], "--data", tiny_data, "--k", "5,10", "--json", out)
    payload = json.loads(out.read_text())
    expected = evaluate(Recommender.load(trained["ease"]), Split.load(tiny_data), ks=(5, 10))
    assert payload["summary"] == pytest.approx(expected.summary)
    assert payload["protocol"]["name"] == "full-ranking"
    assert payload["protocol"]["excluded"] == ["train", "valid"]
    assert "ndcg" in result.stdout and "@5" in result.stdout


def test_evaluate_valid_part_defaults_to_the_fitted_data(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    ok("evaluate", trained["pop"], "--part", "valid", "--k", "10", "--json", out)
    protocol = json.loads(out.read_text())["protocol"]
    assert protocol["part"] == "valid" and protocol["excluded"] == ["train"]


def test_recommend_json_lists_unseen_items_with_titles(
    trained: dict[str, Path], tiny_data: Path
) -> None:
    split = Split.load(tiny_data)
    users = [str(u) for u in split.train.users.ids[:2]]
    args = ("--user", users[0], "--user", users[1], "-k", "5", "--data", tiny_data, "--json")
    payload = json.loads(ok("recommend", trained["ease"], *args).stdout)
    assert list(payload) == users
    model = Recommender.load(trained["ease"])
    for user in users:
        assert payload[user]["source"] == "ease"
        rows = payload[user]["items"]
        assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
        assert [r["item_id"] for r in rows] == model.recommend([user], k=5)[0].ids.tolist()
        seen = set(split.train.external().filter(user_id=user)["item_id"].to_list())
        assert not seen & {r["item_id"] for r in rows}
        assert all(r["title"] for r in rows)


def test_recommend_table(trained: dict[str, Path]) -> None:
    result = ok("recommend", trained["pop"], "--user", "u000", "-k", "3")
    assert "top 3 for user u000" in result.stdout


def test_recommend_fresh_items_and_anonymous_history(trained: dict[str, Path]) -> None:
    model = Recommender.load(trained["ease"])
    (before,) = model.recommend("u000", 5)
    fresh = str(before.ids[0])
    args = ("--user", "u000", "--item", fresh, "-k", "5", "--json")
    rows = json.loads(ok("recommend", trained["ease"], *args).stdout)["u000"]["items"]
    assert fresh not in {r["item_id"] for r in rows}
    anonymous = json.loads(ok("recommend", trained["ease"], "--item", fresh, "--json").stdout)
    (only,) = anonymous.values()
    assert only["source"] == "ease" and fresh not in {r["item_id"] for r in only["items"]}
    nobody = ok("recommend", trained["ease"], "--item", "no-such-item", "--json").stdout
    assert next(iter(json.loads(nobody).values()))["source"] == "popularity"


def test_compare_json_and_ease_beats_pop(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    result = ok(
        "compare", *MODELS, "--data", tiny_data, "--k", "10,20", "--json", out,
        "--set", "ease.l2=300", "--set", "itemknn.k_neighbors=20",
    )  # fmt: skip
    payload = json.loads(out.read_text())
    assert set(payload) == {*MODELS, "protocol"}
    for name in MODELS:
        row = payload[name]
        for metric in ("ndcg", "recall", "precision", "hit", "mrr", "map", "coverage"):
            assert f"{metric}@10" in row and f"{metric}@20" in row
        assert row["fit_seconds"] >= 0 and row["evaluate_seconds"] > 0
    assert payload["ease"]["ndcg@10"] > payload["pop"]["ndcg@10"]
    assert payload["protocol"]["name"] == "full-ranking"
    assert payload["protocol"]["split"]["name"] == "random"
    assert "comparison" in result.stdout


def test_models_lists_registered_models_and_defaults() -> None:
    out = ok("models").stdout
    for name in ("pop", "ease", "itemknn", "als", "content"):
        assert name in out
    assert "l2=None" in out.replace("\n", "") and "k_neighbors=" in out.replace("\n", "")


def test_models_shows_one_model_with_types() -> None:
    out = ok("models", "itemknn").stdout
    assert "k_neighbors" in out and "'none' | 'tfidf' | 'bm25'" in out


def test_recommend_titles_default_to_the_fitted_data(trained: dict[str, Path]) -> None:
    payload = json.loads(ok("recommend", trained["pop"], "--user", "u000", "--json").stdout)
    assert all(row["title"] for row in payload["u000"]["items"])


def test_train_and_recommend_a_sequence_model_from_a_session(
    tiny_data: Path, tmp_path: Path
) -> None:
    """`tuijian train sasrec`, then `recommend --item ...` reads the items as a session in order."""
    folder = tmp_path / "sasrec"
    settings = ("max_len=10", "hidden_size=16", "n_layers=1", "epochs=5", "lr=0.01")
    ok("train", "sasrec", "--data", tiny_data, "--out", folder,
       *[a for s in settings for a in ("--set", s)])  # fmt: skip
    model = Recommender.load(folder)
    assert model.name == "sasrec" and model.config.max_len == 10
    first, second = model.items_.ids[:2].tolist()

    def session(*items: str) -> list[str]:
        args = [a for i in items for a in ("--item", i)]
        (only,) = json.loads(ok("recommend", folder, *args, "-k", "10", "--json").stdout).values()
        assert only["source"] == "sasrec"
        return [r["item_id"] for r in only["items"]]

    forward, backward = session(first, second), session(second, first)
    assert not {first, second} & set(forward)
    assert forward != backward  # the order of the session matters


def test_models_shows_the_memory_of_quadratic_fits_on_the_data(
    tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuijian.cli.common import console
    from tuijian.models.classic.dense import dense_bytes

    monkeypatch.setattr(console, "width", 300)  # one table row per line
    n_items = Split.load(tiny_data).train.n_items
    out = ok("models", "--data", tiny_data).stdout
    assert f"fit memory at {n_items:,} items" in out
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}  # fmt: skip
    assert rows["ease"] == f"{dense_bytes(n_items, 'float32') / 2**20:.0f} MB"
    assert rows["als"] == "-" and rows["admmslim"].endswith("MB")
