"""`tuijian quickstart` end to end: data, five models, comparison and recommendations."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import ok
from tuijian.cli.quickstart import MODELS
from tuijian.data import Split
from tuijian.models.base import Recommender


def test_quickstart_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    stdout = ok("quickstart", "--out", out, "--scale", "tiny").stdout
    split = Split.load(out / "data")
    assert split.protocol["name"] == "random" and split.protocol["ratios"] == [0.8, 0.1, 0.1]
    assert split.train.n_users == 300
    report = json.loads((out / "data" / "prepare.json").read_text())
    assert [s["step"] for s in report["steps"]] == ["input", "dedupe", "event weights", "aggregate"]
    for name in MODELS:
        model = Recommender.load(out / "models" / name)
        assert model.name == name and model.n_items == split.train.n_items
    for text in ("prepare", "comparison", "NDCG@10", "top 10 for", "last 8 of", "wall time"):
        assert text in stdout, text
    assert str(out / "models") in stdout.replace("\n", "")
