"""`tuijian events export` closes the loop into `tuijian data prepare`; `serve` refuses bad input
in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.cli.conftest import fails, ok, run
from tuijian.data import Split
from tuijian.serving.events import Event, SQLiteEventStore

KINDS = ("view", "cart", "buy")


def test_exported_events_are_prepared_back_into_the_same_interactions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = SQLiteEventStore(tmp_path / "events.db")
    rows = [
        Event(f"u{u}", f"i{i}", KINDS[k], 1.7e9 + 60.0 * n, f"e{n}")
        for n, (u, i, k) in enumerate(
            zip(
                rng.integers(0, 20, 400),
                rng.integers(0, 30, 400),
                rng.integers(0, 3, 400),
                strict=True,
            )
        )
    ]
    store.add(rows)
    store.close()
    out = ok("events", "export", "--db", tmp_path / "events.db", "--out", tmp_path / "export")
    assert "400 events" in out.output
    csv = tmp_path / "export" / "events.csv"
    ok(
        "data", "prepare", "csv", csv, "--out", tmp_path / "data",
        "--event-weights", "view=1,cart=3,buy=5", "--split", "random",
    )  # fmt: skip
    split = Split.load(tmp_path / "data")
    pairs = {(e.user_id, e.item_id) for e in rows}
    got = set()
    for part in (split.train, split.valid, split.test):
        frame = part.interactions
        users = part.users.id(frame["user_idx"].to_numpy())
        items = part.items.id(frame["item_idx"].to_numpy())
        got |= set(zip(users.tolist(), items.tolist(), strict=True))
    assert got <= pairs and len(got) >= 0.9 * len(pairs)  # some unseen valid/test rows dropped
    weight = {}
    for e in rows:
        weight[e.user_id, e.item_id] = (
            weight.get((e.user_id, e.item_id), 0) + {"view": 1, "cart": 3, "buy": 5}[e.event]
        )
    train = split.train.interactions
    users = split.train.users.id(train["user_idx"].to_numpy())
    items = split.train.items.id(train["item_idx"].to_numpy())
    for u, i, w in zip(users.tolist(), items.tolist(), train["weight"].to_list(), strict=True):
        assert w == weight[u, i]


def test_export_of_a_missing_store_is_one_line(tmp_path: Path) -> None:
    fails(run("events", "export", "--db", tmp_path / "none.db", "--out", tmp_path), "none.db")
    (tmp_path / "junk.db").write_text("not sqlite " * 100)
    fails(run("events", "export", "--db", tmp_path / "junk.db", "--out", tmp_path), "junk.db")


def test_serve_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    fails(run("serve", tmp_path), "not a saved model folder")
