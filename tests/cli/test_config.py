"""TOML config files and value coercion (`tuijian.cli.config`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import fails, ok, run
from tuijian.cli.config import coerce, load_config, parse_literal
from tuijian.errors import ConfigError


def test_parse_literal() -> None:
    assert parse_literal("0.001") == 0.001
    assert parse_literal("true") is True
    assert parse_literal("[64, 32]") == [64, 32]
    assert parse_literal("(1, 2)") == (1, 2)
    assert parse_literal("None") is None
    assert parse_literal("userId") == "userId"


def test_coerce_follows_the_annotation() -> None:
    assert coerce("0.5", float) == 0.5
    assert coerce("false", bool) is False
    assert coerce("123", str) == "123"  # a string field keeps digits as text
    assert coerce("[64,32]", tuple[int, ...]) == (64, 32)
    assert coerce("a,b", list[str] | None) == ["a", "b"]
    assert coerce("none", int | None) is None
    assert coerce("abc", float) == "abc"  # left for the model's own error message
    assert coerce(3, float) == 3


def test_config_file_values_and_flags_win(ratings_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        "[data.prepare]\n"
        'out = "from-file"\n'
        'split = "leave-last-out"\n'
        "min_user_interactions = 2\n"
        'option = {user_id = "userId", item_id = "movieId", timestamp = "ts"}\n'
    )
    ok("--config", config, "data", "prepare", "csv", ratings_csv)
    proto = json.loads((tmp_path / "from-file" / "split.json").read_text())
    assert proto["name"] == "leave-last-out"  # relative paths are from the file's folder
    report = json.loads((tmp_path / "from-file" / "prepare.json").read_text())
    assert report["config"]["min_user_interactions"] == 2
    out = tmp_path / "from-flags"
    ok("--config", config, "data", "prepare", "csv", ratings_csv, "--split", "random", "--out", out)
    assert json.loads((out / "split.json").read_text())["name"] == "random"


def test_config_sets_model_parameters(tiny_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[compare]\nk = [5]\nset = {{ease = {{l2 = 100}}}}\ndata = "{tiny_data}"\n')
    out = tmp_path / "c.json"
    ok("--config", config, "compare", "pop", "ease", "--json", out)
    payload = json.loads(out.read_text())
    assert "ndcg@5" in payload["ease"] and "ndcg@10" not in payload["ease"]


def test_unknown_key_lists_the_valid_keys(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[train]\ndata = 'd'\nepochs = 3\n")
    line = fails(run("--config", config, "models"), "unknown key(s) epochs in [train]")
    assert "valid keys: data, out, set" in line


def test_unknown_table_lists_the_valid_tables(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[prepare]\nseed = 1\n")
    fails(run("--config", config, "models"), "unknown table [prepare]", "[data.prepare]")


def test_bad_value_and_bad_toml(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[data.prepare]\nseed = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[data.prepare\] seed"):
        load_config(config)
    config.write_text("[train\n")
    fails(run("--config", config, "models"), "not valid TOML", "line 1")
    fails(run("--config", tmp_path / "absent.toml", "models"), "absent.toml")
