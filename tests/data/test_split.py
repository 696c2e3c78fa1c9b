"""Tests of the split protocols: hand-checked examples and hypothesis properties."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuijian.data import Columns, Split
from tuijian.data.split import (
    fixed_split,
    leave_last_out_split,
    make_split,
    random_split,
    temporal_split,
    user_temporal_split,
)
from tuijian.errors import ConfigError, DataError

C = Columns
ROW = "row"


def pairs(ds_part) -> list[tuple[str, str]]:
    """(user_id, item_id) of a part, sorted."""
    ext = ds_part.external()
    return sorted(zip(ext[C.user_id], ext[C.item_id], strict=True))


def per_user_sizes(split: Split, part: str) -> dict[str, int]:
    ext = split.parts()[part].external()
    return dict(ext.group_by(C.user_id).len().iter_rows())


# ---- hand-checked examples ----------------------------------------------------------------
def test_leave_last_out_on_tiny(tiny_frame: pl.DataFrame) -> None:
    split = leave_last_out_split(tiny_frame, unseen="keep")
    assert pairs(split.test) == [
        ("u0", "i3"), ("u1", "i4"), ("u2", "i6"), ("u3", "i7"), ("u4", "i7"), ("u5", "i3"),
    ]  # fmt: skip
    assert pairs(split.valid) == [
        ("u0", "i2"), ("u1", "i1"), ("u2", "i5"), ("u3", "i6"), ("u4", "i2"),
    ]  # fmt: skip
    assert split.train.n_interactions == 9
    assert split.protocol["rows"] == {"train": 9, "valid": 5, "test": 6}


def test_leave_last_out_drops_items_unseen_in_train(tiny_frame: pl.DataFrame) -> None:
    # i6 and i7 never reach train: u2-i6, u3-i7, u4-i7 leave test and u3-i6 leaves valid
    split = leave_last_out_split(tiny_frame)
    assert pairs(split.test) == [("u0", "i3"), ("u1", "i4"), ("u5", "i3")]
    assert pairs(split.valid) == [("u0", "i2"), ("u1", "i1"), ("u2", "i5"), ("u4", "i2")]
    assert split.protocol["dropped"] == {"valid": 1, "test": 3}
    assert split.protocol["unseen"] == "drop"
    # one vocabulary pair over the whole data for every part
    assert split.train.items is split.test.items
    assert split.train.n_items == 8


def test_leave_last_out_without_valid(tiny_frame: pl.DataFrame) -> None:
    split = leave_last_out_split(tiny_frame, valid=False, unseen="keep")
    assert split.valid is None
    assert split.train.n_interactions == 14


def test_global_temporal_on_tiny(tiny_frame: pl.DataFrame) -> None:
    # 20 rows: 2 test, 2 valid; ties at time 4 and 3 are cut in row order
    split = temporal_split(tiny_frame, unseen="keep")
    assert pairs(split.test) == [("u2", "i6"), ("u3", "i7")]
    assert pairs(split.valid) == [("u0", "i3"), ("u4", "i7")]
    assert split.protocol["cut_times"] == {"valid": 3, "test": 4}
    dropped = temporal_split(tiny_frame)
    assert pairs(dropped.test) == [("u2", "i6")]
    assert pairs(dropped.valid) == [("u0", "i3")]


def test_user_temporal_on_tiny(tiny_frame: pl.DataFrame) -> None:
    split = user_temporal_split(tiny_frame, ratios=(0.5, 0.5), unseen="keep")
    assert split.valid is None
    test = pairs(split.test)
    assert [p for p in test if p[0] in ("u0", "u1", "u5")] == [
        ("u0", "i2"), ("u0", "i3"), ("u1", "i1"), ("u1", "i4"), ("u5", "i3"),
    ]  # fmt: skip


def test_random_rounding_rule() -> None:
    sizes = {"a": 10, "b": 5, "c": 4, "d": 2, "e": 1}
    frame = pl.DataFrame(
        {
            C.user_id: [u for u, n in sizes.items() for _ in range(n)],
            C.item_id: [f"i{j}" for n in sizes.values() for j in range(n)],
        }
    )
    split = random_split(frame, seed=3, unseen="keep")
    assert per_user_sizes(split, "train") == {"a": 8, "b": 3, "c": 4, "d": 2, "e": 1}
    assert per_user_sizes(split, "valid") == {"a": 1, "b": 1}
    assert per_user_sizes(split, "test") == {"a": 1, "b": 1}
    halves = random_split(frame, ratios=(0.5, 0.5), seed=3, unseen="keep")
    assert per_user_sizes(halves, "test") == {"a": 5, "b": 3, "c": 2, "d": 1}
    assert per_user_sizes(halves, "train") == {"a": 5, "b": 2, "c": 2, "d": 1, "e": 1}


def test_fixed_split_shares_vocabularies() -> None:
    train = pl.DataFrame({C.user_id: ["u0", "u1"], C.item_id: ["i0", "i1"]})
    test = pl.DataFrame({C.user_id: ["u0", "u2"], C.item_id: ["i1", "i2"]})
    kept = fixed_split({"train": train, "test": test}, unseen="keep")
    assert kept.train.n_users == 3 and kept.train.n_items == 3
    assert pairs(kept.test) == [("u0", "i1"), ("u2", "i2")]
    assert kept.valid is None
    dropped = fixed_split({"train": train, "test": test})
    assert pairs(dropped.test) == [("u0", "i1")]
    assert dropped.protocol["dropped"] == {"test": 1}
    assert "__part" not in dropped.test.interactions.columns
    with pytest.raises(ConfigError, match="needs parts 'train' and 'test'"):
        fixed_split({"train": train, "holdout": test})


def test_make_split_dispatch_and_errors(tiny_frame: pl.DataFrame) -> None:
    a = make_split("random", tiny_frame, ratios=[0.5, 0.5], seed=3)
    b = random_split(tiny_frame, ratios=(0.5, 0.5), seed=3)
    assert pairs(a.test) == pairs(b.test)
    assert make_split("leave-last-out", tiny_frame).protocol["name"] == "leave-last-out"
    assert make_split("user-temporal", tiny_frame).protocol["name"] == "user-temporal"
    with pytest.raises(ConfigError, match="unknown split 'loo'; valid: random, temporal"):
        make_split("loo", tiny_frame)
    with pytest.raises(ConfigError, match="unknown option\\(s\\) ratio for the random split"):
        make_split("random", tiny_frame, ratio=0.5)


def test_bad_ratios_unseen_and_missing_time(tiny_frame: pl.DataFrame) -> None:
    for ratios in [(0.5, 0.6), (1.0,), (0.0, 0.5, 0.5), (0.8, -0.1, 0.3)]:
        with pytest.raises(ConfigError, match="ratios"):
            random_split(tiny_frame, ratios=ratios)
    with pytest.raises(ConfigError, match="unseen must be 'drop' or 'keep'"):
        random_split(tiny_frame, unseen="cold")  # type: ignore[arg-type]
    no_time = tiny_frame.drop(C.timestamp)
    for fn in (temporal_split, user_temporal_split, leave_last_out_split):
        with pytest.raises(DataError, match="needs a 'timestamp' column"):
            fn(no_time)


def test_save_load_round_trip(tiny_dataset, tmp_path: Path) -> None:
    split = random_split(tiny_dataset, ratios=(0.6, 0.2, 0.2), seed=1, unseen="keep")
    loaded = Split.load(split.save(tmp_path / "split"))
    assert loaded.protocol == split.protocol
    assert loaded.train.users == split.train.users and loaded.train.items == split.train.items
    for name, part in split.parts().items():
        assert loaded.parts()[name].interactions.equals(part.interactions)
    assert loaded.train.item_features.equals(tiny_dataset.item_features)


# ---- properties ---------------------------------------------------------------------------
rows_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 9)), min_size=1, max_size=40
)


def _frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            C.user_id: [f"u{u}" for u, _, _ in rows],
            C.item_id: [f"i{i}" for _, i, _ in rows],
            C.timestamp: [t for _, _, t in rows],
            ROW: list(range(len(rows))),
        }
    )


SPLITTERS: dict[str, Callable[..., Split]] = {
    "random": lambda f, unseen: random_split(f, seed=7, unseen=unseen),
    "temporal": lambda f, unseen: temporal_split(f, unseen=unseen),
    "user-temporal": lambda f, unseen: user_temporal_split(f, (0.6, 0.2, 0.2), unseen=unseen),
    "leave-last-out": lambda f, unseen: leave_last_out_split(f, unseen=unseen),
}


def _rows(split: Split) -> dict[str, set[int]]:
    return {name: set(part.interactions[ROW].to_list()) for name, part in split.parts().items()}


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_parts_are_disjoint_and_cover_input(rows: list[tuple[int, int, int]]) -> None:
    frame = _frame(rows)
    for name, splitter in SPLITTERS.items():
        kept = _rows(splitter(frame, "keep"))
        assert sum(len(r) for r in kept.values()) == len(rows), name
        assert set().union(*kept.values()) == set(range(len(rows))), name
        dropped_split = splitter(frame, "drop")
        dropped = _rows(dropped_split)
        assert dropped["train"] == kept["train"], name
        n_dropped = sum(dropped_split.protocol["dropped"].values())
        assert sum(len(r) for r in dropped.values()) + n_dropped == len(rows), name
        train = dropped_split.train.interactions
        for part in ("valid", "test"):
            held = dropped_split.parts()[part].interactions
            assert set(held[C.user_idx]) <= set(train[C.user_idx]), name
            assert set(held[C.item_idx]) <= set(train[C.item_idx]), name


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy)
def test_temporal_splits_never_train_on_the_future(rows: list[tuple[int, int, int]]) -> None:
    frame = _frame(rows)
    split = temporal_split(frame, unseen="keep")
    times = {name: part.interactions[C.timestamp] for name, part in split.parts().items()}
    if len(times["test"]):
        assert times["test"].min() >= times["train"].max()
    if len(times["valid"]):
        assert times["valid"].min() >= times["train"].max()
        if len(times["test"]):
            assert times["test"].min() >= times["valid"].max()
    for splitter in (SPLITTERS["user-temporal"], SPLITTERS["leave-last-out"]):
        split = splitter(frame, "keep")
        bounds = {
            name: part.interactions.group_by(C.user_idx).agg(
                pl.col(C.timestamp).min().alias("lo"), pl.col(C.timestamp).max().alias("hi")
            )
            for name, part in split.parts().items()
        }
        for held in ("valid", "test"):
            joined = bounds[held].join(bounds["train"], on=C.user_idx, suffix="_train")
            assert joined.height == bounds[held].height  # every held-out user has train rows
            assert (joined["lo"] >= joined["hi_train"]).all()


@settings(max_examples=25, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**16))
def test_random_split_is_reproducible(rows: list[tuple[int, int, int]], seed: int) -> None:
    frame = _frame(rows)
    a = _rows(random_split(frame, seed=seed))
    b = _rows(random_split(frame, seed=seed))
    assert a == b
    counts = np.bincount([u for u, _, _ in rows])
    kept = random_split(frame, seed=seed, unseen="keep")
    n_test = np.minimum(np.floor(counts * 0.1 + 0.5), np.maximum(counts - 1, 0))
    assert kept.test.n_interactions == int(n_test.sum())


def test_dataset_input_keeps_features(tiny_dataset) -> None:
    split = random_split(tiny_dataset, seed=0)
    assert split.train.item_features is tiny_dataset.item_features
    assert split.test.users is tiny_dataset.users
