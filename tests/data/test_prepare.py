"""Tests of data.prepare: every step on hand-computed tables, the report and the errors."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from tuijian.data import Columns
from tuijian.data.prepare import PrepareConfig, PrepareReport, prepare
from tuijian.errors import DataError

C = Columns
WEIGHTS = {"view": 1.0, "cart": 3.0, "buy": 5.0}


def _log() -> pl.DataFrame:
    """Two users; u0 views i0 twice (one an exact duplicate), carts and buys it."""
    return pl.DataFrame(
        {
            C.user_id: ["u0", "u0", "u0", "u0", "u0", "u1", "u1"],
            C.item_id: ["i0", "i0", "i0", "i0", "i1", "i0", "i1"],
            C.timestamp: [10, 10, 20, 30, 15, 5, 7],
            C.event: ["view", "view", "cart", "buy", "view", "view", "cart"],
            C.rating: [3.0, 3.0, 4.0, 5.0, 2.0, 1.0, 4.0],
        }
    )


def test_dedupe_drops_exact_duplicates_only() -> None:
    out, report = prepare(_log(), PrepareConfig(aggregate=False))
    assert out.height == 6
    assert report.steps[1].name == "dedupe"
    assert report.steps[1].rows_removed == 1
    assert out[C.weight].dtype == pl.Float32
    assert out[C.weight].to_list() == [1.0] * 6


def test_event_weights_and_aggregate_hand_computed() -> None:
    out, report = prepare(_log(), PrepareConfig(event_weights=WEIGHTS))
    rows = {(r[C.user_id], r[C.item_id]): r for r in out.to_dicts()}
    assert len(rows) == 4
    # u0-i0: view 1 + cart 3 + buy 5 (the duplicate view was removed first)
    assert rows["u0", "i0"][C.weight] == 9.0
    assert rows["u0", "i0"][C.timestamp] == 30
    assert rows["u0", "i0"][C.rating] == 5.0
    assert rows["u0", "i0"][C.event] == "buy"
    assert rows["u1", "i1"][C.weight] == 3.0
    # rows keep the time order of each pair's first event
    assert list(zip(out[C.user_id], out[C.item_id], strict=True)) == [
        ("u1", "i0"),
        ("u1", "i1"),
        ("u0", "i0"),
        ("u0", "i1"),
    ]
    assert [s.name for s in report.steps] == ["input", "dedupe", "event weights", "aggregate"]


def test_event_weights_multiply_given_weight_and_zero_drops() -> None:
    frame = _log().with_columns(pl.lit(2.0, dtype=pl.Float32).alias(C.weight))
    config = PrepareConfig(event_weights={"view": 0.0, "cart": 3.0, "buy": 5.0}, aggregate=False)
    out, report = prepare(frame, config)
    assert sorted(out[C.weight].to_list()) == [6.0, 6.0, 10.0]
    assert report.steps[-1].rows_removed == 3


def test_unknown_events_raise_unless_default() -> None:
    frame = _log().with_columns(
        pl.when(pl.col(C.event) == "cart")
        .then(pl.lit("wish"))
        .otherwise(pl.col(C.event))
        .alias(C.event)
    )
    config = PrepareConfig(event_weights={"view": 1.0, "buy": 5.0})
    with pytest.raises(DataError, match=r"events without a weight in event_weights: \['wish'\]"):
        prepare(frame, config)
    out, _ = prepare(frame, config.model_copy(update={"default_event_weight": 2.0}))
    weights = {(r[C.user_id], r[C.item_id]): r[C.weight] for r in out.to_dicts()}
    assert weights["u0", "i0"] == 1.0 + 2.0 + 5.0


def test_event_weights_need_event_column() -> None:
    with pytest.raises(DataError, match="no 'event' column"):
        prepare(_log().drop(C.event), PrepareConfig(event_weights=WEIGHTS))


def test_rating_threshold() -> None:
    out, report = prepare(_log(), PrepareConfig(rating_threshold=4.0, aggregate=False))
    assert sorted(out[C.rating].to_list()) == [4.0, 4.0, 5.0]
    step = report.steps[2]
    assert (step.name, step.rows_before, step.rows_after) == ("rating threshold", 6, 3)
    assert (step.users_after, step.items_after) == (2, 2)
    with pytest.raises(DataError, match="needs a 'rating' column"):
        prepare(_log().drop(C.rating), PrepareConfig(rating_threshold=4.0))


def test_aggregate_without_timestamp_takes_last_in_file_order() -> None:
    frame = pl.DataFrame(
        {C.user_id: ["a", "a", "b"], C.item_id: ["x", "x", "x"], C.rating: [5.0, 2.0, 3.0]}
    )
    out, _ = prepare(frame, PrepareConfig())
    assert out.to_dicts() == [
        {C.user_id: "a", C.item_id: "x", C.rating: 2.0, C.weight: 2.0},
        {C.user_id: "b", C.item_id: "x", C.rating: 3.0, C.weight: 1.0},
    ]


def test_k_core_is_iterated_until_stable() -> None:
    # z has one user, so c loses z, then c has one item and goes too: a, b x {x, y} remain.
    frame = pl.DataFrame(
        {
            C.user_id: ["a", "a", "b", "b", "c", "c"],
            C.item_id: ["x", "y", "x", "y", "y", "z"],
        }
    )
    config = PrepareConfig(min_user_interactions=2, min_item_interactions=2)
    out, report = prepare(frame, config)
    assert sorted(zip(out[C.user_id], out[C.item_id], strict=True)) == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("b", "y"),
    ]
    step = report.steps[-1]
    assert step.name == "k-core"
    assert (step.rows_removed, step.users_removed, step.items_removed) == (2, 1, 1)
    assert "rounds=3" in step.detail


def test_nothing_left_names_step_and_settings() -> None:
    config = PrepareConfig(min_user_interactions=50, min_item_interactions=3)
    with pytest.raises(
        DataError,
        match=r"nothing left after k-core \(min_user_interactions=50, min_item_interactions=3",
    ):
        prepare(_log(), config)
    with pytest.raises(DataError, match=r"nothing left after rating threshold"):
        prepare(_log(), PrepareConfig(rating_threshold=9.0))


def test_report_rows_and_dict() -> None:
    _, report = prepare(_log(), PrepareConfig(event_weights=WEIGHTS))
    assert isinstance(report, PrepareReport)
    rows = report.to_rows()
    assert rows[0] == {
        "step": "input",
        "rows_before": 7,
        "rows_after": 7,
        "rows_removed": 0,
        "users_before": 2,
        "users_after": 2,
        "users_removed": 0,
        "items_before": 2,
        "items_after": 2,
        "items_removed": 0,
        "detail": "",
    }
    assert rows[-1]["rows_after"] == 4
    summary = report.to_dict()
    assert (summary["rows"], summary["users"], summary["items"]) == (4, 2, 2)
    assert summary["config"]["event_weights"] == WEIGHTS


def test_bad_input_and_config() -> None:
    with pytest.raises(DataError, match="lack the 'item_id' column"):
        prepare(pl.DataFrame({C.user_id: ["a"]}))
    with pytest.raises(DataError, match="empty"):
        prepare(_log().head(0))
    with pytest.raises(ValidationError):
        PrepareConfig(min_users=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PrepareConfig(min_user_interactions=-1)


def test_integer_ids_become_strings() -> None:
    frame = pl.DataFrame({C.user_id: [1, 2], C.item_id: [10, 10]})
    out, _ = prepare(frame)
    assert out.schema[C.user_id] == pl.Utf8
    assert out[C.item_id].to_list() == ["10", "10"]
