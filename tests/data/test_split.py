"""Tests of the split protocols: hand-checked examples and hypothesis properties."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuijian.data import Columns, Split, build_dataset
from tuijian.data.split import (
    cold_item_split,
    fixed_split,
    leave_last_out_split,
    make_split,
    random_split,
    temporal_split,
    user_holdout_split,
    user_temporal_split,
)
from tuijian.data.synthetic import shop_dataset
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


# ---- held-out users ------------------------------------------------------------------------
def _users_of(ds_part) -> set[int]:
    return set(ds_part.interactions[C.user_idx].to_list())


def test_user_holdout_sizes_by_hand() -> None:
    # 10 users of 10 rows (+ one of 1 row, never held out): 1 test and 1 valid user
    # (floor(10 * 0.1 + 0.5) = 1); each keeps floor(10 * 0.8 + 0.5) = 8 rows as history
    sizes = {f"u{u}": 10 for u in range(10)} | {"solo": 1}
    frame = pl.DataFrame(
        {
            C.user_id: [u for u, n in sizes.items() for _ in range(n)],
            C.item_id: [f"i{j}" for n in sizes.values() for j in range(n)],
            C.timestamp: [j for n in sizes.values() for j in range(n)],
        }
    )
    split = user_holdout_split(frame, seed=5, order="time")
    assert split.protocol["held_out_users"] == {"valid": 1, "test": 1}
    assert split.protocol["rows"] == {
        "train": 81, "valid": 2, "test": 2, "valid_history": 8, "test_history": 8,
    }  # fmt: skip
    assert split.protocol["users"] == {"train": 9, "valid": 1, "test": 1}
    assert split.protocol["name"] == "users" and split.protocol["query_fraction"] == 0.8
    assert "solo" in per_user_sizes(split, "train")
    for part in ("valid", "test"):
        # order="time": the history is the earliest 8 rows, the truth the last 2
        assert sorted(split.parts()[part].interactions[C.timestamp].to_list()) == [8, 9]
        assert sorted(split.histories[part].interactions[C.timestamp].to_list()) == list(range(8))
    # held-out users stay in the shared vocabulary, with no training rows
    assert split.train.users is split.test.users and split.train.n_users == 11
    held = _users_of(split.test) | _users_of(split.valid)
    assert not held & _users_of(split.train)
    assert split.holdout("test").history is split.histories["test"]
    assert split.holdout("valid").truth is split.valid
    assert split.validation() == split.holdout("valid")  # what fit(valid=...) gets
    plain = random_split(frame)
    assert plain.validation() is plain.valid
    assert random_split(frame, (0.9, 0.1)).validation() is None
    assert random_split(frame).holdout("test").history is None


def test_user_holdout_drops_items_unseen_in_train() -> None:
    # item "rare" is user a's only: when a is held out it is dropped before the cut, so a's
    # 5 remaining rows give floor(5 * 0.8 + 0.5) = 4 history rows and 1 truth row
    frame = pl.DataFrame(
        {
            C.user_id: [u for u in "abcdefghij" for _ in range(6)],
            C.item_id: [
                "rare" if (u, j) == ("a", 0) else f"i{j}" for u in "abcdefghij" for j in range(6)
            ],
        }
    )
    held_out_a = 0
    for seed in range(8):
        split = user_holdout_split(frame, valid=0.2, test=0.2, seed=seed)
        train_items = set(split.train.interactions[C.item_idx].to_list())
        dropped = split.protocol["dropped"]
        for part in ("valid", "test"):
            held = split.parts()[part].interactions[C.item_idx].to_list()
            history = split.histories[part].interactions[C.item_idx].to_list()
            assert set(held) | set(history) <= train_items
            assert len(held) + len(history) + dropped[part] == 2 * 6
            if "a" in per_user_sizes(split, part):
                held_out_a += 1
                assert dropped[part] == 1 and per_user_sizes(split, part)["a"] == 1
                ext = split.histories[part].external().filter(pl.col(C.user_id) == "a")
                assert ext.height == 4
            else:
                assert dropped[part] == 0
        kept = user_holdout_split(frame, valid=0.2, test=0.2, seed=seed, unseen="keep")
        assert kept.protocol["dropped"] == {"valid": 0, "test": 0}
        assert kept.test.n_interactions + kept.histories["test"].n_interactions == 12
    assert held_out_a >= 2  # the seeds above hold user a out at least twice


def test_user_holdout_options_and_errors(tiny_frame: pl.DataFrame) -> None:
    a = make_split("users", tiny_frame, valid=0.2, test=0.2, query_fraction=0.5, seed=1)
    b = user_holdout_split(tiny_frame, valid=0.2, test=0.2, query_fraction=0.5, seed=1)
    assert pairs(a.test) == pairs(b.test) and pairs(a.histories["test"]) == pairs(
        b.histories["test"]
    )
    no_valid = user_holdout_split(tiny_frame, valid=0.0, test=0.3)
    assert no_valid.valid is None and set(no_valid.histories) == {"test"}
    assert "valid" not in no_valid.protocol["rows"]
    for bad in ({"test": 0.0}, {"valid": 0.5, "test": 0.5}, {"query_fraction": 1.0}):
        with pytest.raises(ConfigError, match=r"test > 0|query_fraction"):
            user_holdout_split(tiny_frame, **bad)
    with pytest.raises(ConfigError, match="order must be"):
        user_holdout_split(tiny_frame, order="last")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="needs a 'timestamp' column"):
        user_holdout_split(tiny_frame.drop(C.timestamp), order="time")
    with pytest.raises(ConfigError, match="no evaluation part 'train'"):
        b.holdout("train")


def test_user_holdout_save_load_round_trip(tiny_dataset, tmp_path: Path) -> None:
    split = user_holdout_split(tiny_dataset, valid=0.2, test=0.2, query_fraction=0.5, seed=2)
    loaded = Split.load(split.save(tmp_path / "split"))
    assert loaded.protocol == split.protocol
    assert set(loaded.histories) == {"valid", "test"}
    for name, history in split.histories.items():
        assert loaded.histories[name].interactions.equals(history.interactions)
        assert loaded.histories[name].users == split.train.users
    for name, part in split.parts().items():
        assert loaded.parts()[name].interactions.equals(part.interactions)
    # a random split saved over it leaves no stale history behind
    random_split(tiny_dataset, seed=0).save(tmp_path / "split")
    assert Split.load(tmp_path / "split").histories == {}
    assert not (tmp_path / "split" / "test_history.parquet").exists()


@settings(max_examples=40, deadline=None)
@given(
    rows=rows_strategy,
    seed=st.integers(0, 2**16),
    shares=st.sampled_from([(0.1, 0.1), (0.0, 0.3), (0.25, 0.25)]),
    query_fraction=st.sampled_from([0.2, 0.5, 0.8]),
    order=st.sampled_from(["random", "time"]),
)
def test_user_holdout_properties(
    rows: list[tuple[int, int, int]],
    seed: int,
    shares: tuple[float, float],
    query_fraction: float,
    order: str,
) -> None:
    frame = _frame(rows)
    valid, test = shares
    opts = {"valid": valid, "test": test, "query_fraction": query_fraction, "order": order}
    split = user_holdout_split(frame, seed=seed, unseen="keep", **opts)
    again = user_holdout_split(frame, seed=seed, unseen="keep", **opts)
    assert _rows(split) == _rows(again)
    assert {n: set(h.interactions[ROW]) for n, h in split.histories.items()} == {
        n: set(h.interactions[ROW]) for n, h in again.histories.items()
    }
    held_parts = [p for p in ("valid", "test") if p in split.parts()]
    assert set(split.histories) == set(held_parts)
    # users are disjoint between train and the held-out parts (truth and history alike)
    part_users = {"train": _users_of(split.train)}
    for part in held_parts:
        part_users[part] = _users_of(split.parts()[part]) | _users_of(split.histories[part])
    names = list(part_users)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not part_users[a] & part_users[b], (a, b)
    # every row lands in exactly one of train / truth / history
    all_rows = [split.train] + [split.parts()[p] for p in held_parts]
    all_rows += [split.histories[p] for p in held_parts]
    seen = [r for ds in all_rows for r in ds.interactions[ROW].to_list()]
    assert sorted(seen) == list(range(len(rows)))
    # the number of held-out users and each one's history / truth sizes follow the rule
    counts = np.bincount(frame.select(pl.col(C.user_id).str.slice(1).cast(int))[C.user_id])
    n_eligible, n_active = int(np.sum(counts >= 2)), int(np.sum(counts > 0))
    n_test = min(int(np.floor(n_eligible * test + 0.5)), n_active - 1)
    assert split.protocol["held_out_users"]["test"] == n_test
    for part in held_parts:
        truth = per_user_sizes(split, part)
        ext = split.histories[part].external()
        history = dict(ext.group_by(C.user_id).len().iter_rows())
        assert set(truth) == set(history)
        for user, n_hist in history.items():
            n = int(counts[int(user[1:])])
            assert n >= 2
            assert n_hist == min(max(int(np.floor(n * query_fraction + 0.5)), 1), n - 1)
            assert truth[user] == n - n_hist
        if order == "time":
            times = {
                name: ds.interactions.group_by(C.user_idx).agg(
                    pl.col(C.timestamp).min().alias("lo"), pl.col(C.timestamp).max().alias("hi")
                )
                for name, ds in (("truth", split.parts()[part]), ("history", split.histories[part]))
            }
            joined = times["truth"].join(times["history"], on=C.user_idx, suffix="_h")
            assert (joined["lo"] >= joined["hi_h"]).all()


def test_shared_shop_splits(shop_split: Split, shop_users_split: Split) -> None:
    assert shop_split.protocol["name"] == "random" and shop_split.histories == {}
    proto = shop_users_split.protocol
    assert proto["held_out_users"] == {"valid": 30, "test": 30}  # 10 % of 300 shop users
    assert shop_users_split.train.active_users.size == 240
    assert shop_users_split.train.users is shop_split.train.users or (
        shop_users_split.train.users == shop_split.train.users
    )


def test_cold_item_split_holds_the_cold_items_out_of_training() -> None:
    raw = shop_dataset("tiny")
    data = build_dataset(raw.interactions.select(Columns.user_id, Columns.item_id).unique())
    split = cold_item_split(data, fraction=0.25, seed=3)
    cold_items, cold_truth = split.parts["cold"]
    warm_items, warm_truth = split.parts["warm"]
    assert 0 < len(cold_items) < data.n_items
    assert np.intersect1d(cold_items, warm_items).size == 0
    assert len(cold_items) + len(warm_items) == data.n_items
    assert split.train.matrix[:, cold_items].nnz == 0  # never trained on
    # every interaction with a cold item is its truth; warm truth only holds warm items
    assert cold_truth.nnz == data.matrix[:, cold_items].nnz
    assert warm_truth[:, cold_items].nnz == 0 and warm_truth.nnz > 0
