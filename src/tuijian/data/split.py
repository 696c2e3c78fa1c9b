"""Train / valid / test splits of a Dataset, and the named protocols that make them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset, build_dataset
from tuijian.errors import ConfigError, DataError

C = Columns


@dataclass(frozen=True)
class Holdout:
    """One evaluation part: the truth rows, and for held-out users the query histories."""

    truth: Dataset
    history: Dataset | None = None

    @property
    def name(self) -> str:
        return self.truth.name

    @property
    def n_interactions(self) -> int:
        """Rows of the truth (so a check on a validation part reads a Holdout like a Dataset)."""
        return self.truth.n_interactions


# What `fit(valid=...)` takes: a validation part, or held-out users' truth with their histories.
Validation = Dataset | Holdout


@dataclass(frozen=True, eq=False)
class Split:
    """Three datasets over one pair of vocabularies, and the protocol that produced them.

    `histories` maps a part to the query histories of its users when those users are held
    out of training (the `users` protocol): the model sees a history, never the user id.
    """

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    histories: dict[str, Dataset] = field(default_factory=dict)

    def parts(self) -> dict[str, Dataset]:
        out = {"train": self.train, "test": self.test}
        if self.valid is not None:
            out["valid"] = self.valid
        return out

    def holdout(self, part: str) -> Holdout:
        """The truth of `part` ("valid" or "test") with its query histories, if any."""
        parts = self.parts()
        if part not in parts or part == "train":
            raise ConfigError(f"no evaluation part {part!r}; choose from valid, test")
        return Holdout(parts[part], self.histories.get(part))

    def validation(self) -> Dataset | Holdout | None:
        """What `fit(valid=...)` takes: the valid part, as a Holdout when its users are held out
        (so early stopping scores them from their histories, like the final test)."""
        if self.valid is None:
            return None
        return self.holdout("valid") if "valid" in self.histories else self.valid

    def save(self, path: str | Path) -> Path:
        """Write the split to a folder: vocabularies and features once, one table per part."""
        path = Path(path)
        self.train.save(path)
        (path / "interactions.parquet").rename(path / "train.parquet")
        self.test.interactions.write_parquet(path / "test.parquet")
        if self.valid is not None:
            self.valid.interactions.write_parquet(path / "valid.parquet")
        else:
            (path / "valid.parquet").unlink(missing_ok=True)  # a stale part would load back
        for part in ("valid", "test"):
            file = path / f"{part}_history.parquet"
            if part in self.histories:
                self.histories[part].interactions.write_parquet(file)
            else:
                file.unlink(missing_ok=True)
        (path / "split.json").write_text(json.dumps(self.protocol, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split folder written by `save` (what `tuijian data prepare` makes)."""
        path = Path(path)
        if not (path / "split.json").is_file():
            raise DataError(
                f"{path}: not a prepared data folder (no split.json); "
                "make one with `tuijian data prepare`"
            )
        protocol = json.loads((path / "split.json").read_text())
        base = Dataset.load_parts(path, "train.parquet")
        test = base.with_interactions(pl.read_parquet(path / "test.parquet"), name="test")
        valid = None
        if (path / "valid.parquet").is_file():
            valid = base.with_interactions(pl.read_parquet(path / "valid.parquet"), name="valid")
        histories = {
            part: base.with_interactions(pl.read_parquet(file), name=f"{part}_history")
            for part in ("valid", "test")
            if (file := path / f"{part}_history.parquet").is_file()
        }
        train = base.with_interactions(base.interactions, name="train")
        return cls(train=train, test=test, valid=valid, protocol=protocol, histories=histories)


# ---- protocols ------------------------------------------------------------------------------
# Every protocol labels each interaction row train (0), valid (1) or test (2) with vectorized
# numpy, then `_finish` applies the unseen policy and cuts the one indexed dataset into parts.

Unseen = Literal["drop", "keep"]
TRAIN, VALID, TEST = 0, 1, 2
_PART_COLUMN = "__part"
_ROUNDING = "per user: n_test = floor(n*test + 0.5), n_valid = floor(n*valid + 0.5), rest train"


def _as_dataset(data: Dataset | pl.DataFrame) -> Dataset:
    """Index a prepared frame once (vocabularies over all its users and items) or pass through."""
    return data if isinstance(data, Dataset) else build_dataset(data)


def _ratios(ratios: Sequence[float]) -> tuple[float, float, float, bool]:
    """Validate (train, [valid,] test) ratios; returns train, valid, test and whether valid."""
    values = [float(r) for r in ratios]
    if len(values) not in (2, 3):
        raise ConfigError(f"split ratios need 2 or 3 parts (train, [valid,] test), got {values}")
    if any(r < 0 for r in values) or values[0] <= 0 or abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"split ratios must be non-negative, train > 0 and sum to 1, got {values}"
        )
    if len(values) == 2:
        return values[0], 0.0, values[1], False
    return values[0], values[1], values[2], True


def _tail_counts(n: np.ndarray, valid: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows per group for valid and test: half-up rounding, at least one row left for train."""
    n_test = np.minimum(np.floor(n * test + 0.5).astype(np.int64), np.maximum(n - 1, 0))
    n_valid = np.floor(n * valid + 0.5).astype(np.int64)
    n_valid = np.minimum(n_valid, np.maximum(n - 1 - n_test, 0))
    return n_valid, n_test


def _assign_tail(
    groups: np.ndarray, rank: np.ndarray, n_valid: np.ndarray, n_test: np.ndarray
) -> np.ndarray:
    """Label rows per group ordered by `rank` (distinct 0..n-1): last test, before it valid."""
    n_rows = len(groups)
    order = np.argsort(groups.astype(np.int64) * n_rows + rank)
    sorted_groups = groups[order]
    counts = np.bincount(groups, minlength=len(n_test))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    from_end = counts[sorted_groups] - 1 - (np.arange(n_rows) - starts[sorted_groups])
    labels = np.full(n_rows, TRAIN, dtype=np.int8)
    labels[from_end < n_test[sorted_groups] + n_valid[sorted_groups]] = VALID
    labels[from_end < n_test[sorted_groups]] = TEST
    part = np.empty(n_rows, dtype=np.int8)
    part[order] = labels
    return part


def _time_rank(ts: np.ndarray) -> np.ndarray:
    """Distinct ranks 0..n-1 of timestamps; equal times rank in row order."""
    rank = np.empty(len(ts), dtype=np.int64)
    rank[np.argsort(ts, kind="stable")] = np.arange(len(ts))
    return rank


def _user_counts(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    users = ds.interactions[C.user_idx].to_numpy()
    return users, np.bincount(users, minlength=ds.n_users)


def _timestamps(ds: Dataset, protocol: str) -> np.ndarray:
    if not ds.has_timestamps:
        raise DataError(f"{protocol} split needs a {C.timestamp!r} column in {ds.name}")
    ts = ds.interactions[C.timestamp]
    if ts.null_count():
        raise DataError(f"{protocol} split: {ts.null_count()} rows of {ds.name} lack a timestamp")
    return ts.to_numpy()


def _finish(
    ds: Dataset, part: np.ndarray, protocol: dict[str, Any], unseen: str, with_valid: bool
) -> Split:
    """Apply the unseen policy and cut `ds` into a Split; the protocol records every count."""
    if unseen not in ("drop", "keep"):
        raise ConfigError(f"unseen must be 'drop' or 'keep', got {unseen!r}")
    users = ds.interactions[C.user_idx].to_numpy()
    items = ds.interactions[C.item_idx].to_numpy()
    is_train = part == TRAIN
    dropped = {"valid": 0, "test": 0}
    if unseen == "drop":
        seen_user = np.bincount(users[is_train], minlength=ds.n_users) > 0
        seen_item = np.bincount(items[is_train], minlength=ds.n_items) > 0
        cold = ~is_train & ~(seen_user[users] & seen_item[items])
        dropped = {
            "valid": int(np.count_nonzero(cold & (part == VALID))),
            "test": int(np.count_nonzero(cold & (part == TEST))),
        }
        part = np.where(cold, -1, part)
    inter = ds.interactions.drop(_PART_COLUMN, strict=False)
    names = {TRAIN: "train", VALID: "valid", TEST: "test"}
    out: dict[str, Dataset] = {}
    for code, name in names.items():
        mask = part == code
        out[name] = ds.with_interactions(inter.filter(pl.Series(mask)), name=name)
    if not with_valid:
        del out["valid"]
    protocol = {
        **protocol,
        "unseen": unseen,
        "rows": {name: part_ds.n_interactions for name, part_ds in out.items()},
        "users": {name: int(part_ds.active_users.size) for name, part_ds in out.items()},
        "dropped": dropped if with_valid else {"test": dropped["test"]},
    }
    return Split(out["train"], out["test"], out.get("valid"), protocol=protocol)


def random_split(
    data: Dataset | pl.DataFrame,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    *,
    unseen: Unseen = "drop",
) -> Split:
    """Per-user random ratio split: each user's rows are shuffled with `seed` and cut.

    Rounding: n_test = floor(n*test + 0.5), n_valid = floor(n*valid + 0.5), the rest train, and
    a user always keeps at least one train row; so with 8:1:1 users with fewer than 5 rows are
    train only. Two ratios (train, test) make no valid part.
    """
    ds = _as_dataset(data)
    _, r_valid, r_test, with_valid = _ratios(ratios)
    users, counts = _user_counts(ds)
    n_valid, n_test = _tail_counts(counts, r_valid, r_test)
    shuffle = np.random.default_rng(seed).permutation(len(users))
    part = _assign_tail(users, shuffle, n_valid, n_test)
    protocol = {"name": "random", "ratios": list(ratios), "seed": seed, "rounding": _ROUNDING}
    return _finish(ds, part, protocol, unseen, with_valid)


@dataclass(frozen=True)
class ColdItems:
    """The cold-item protocol's parts: `train` without any row of the cold items, and for
    `cold` and `warm` the candidate items with their (U, I) 0/1 truth."""

    train: Dataset
    parts: dict[str, tuple[np.ndarray, sp.csr_matrix]]


def cold_item_split(data: Dataset, fraction: float = 0.2, seed: int = 0) -> ColdItems:
    """A seeded `fraction` of items held out of training entirely, on an 8:2 random split:
    the cold part's truth is every interaction with a cold item (ranked among the cold items
    only), the warm part's the test interactions with the other items (among those)."""
    cold = np.random.default_rng(seed).random(data.n_items) < fraction
    split = random_split(data, (0.8, 0.2), seed=seed)
    train = split.train.with_interactions(
        split.train.interactions.filter(~pl.col(C.item_idx).is_in(np.flatnonzero(cold).tolist()))
    )
    every = (split.train.matrix + split.test.matrix).tocoo()
    test = split.test.matrix.tocoo()

    def truth(rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=every.shape)

    on_cold, on_warm = cold[every.col], ~cold[test.col]
    return ColdItems(
        train,
        {
            "cold": (np.flatnonzero(cold), truth(every.row[on_cold], every.col[on_cold])),
            "warm": (np.flatnonzero(~cold), truth(test.row[on_warm], test.col[on_warm])),
        },
    )


def temporal_split(
    data: Dataset | pl.DataFrame,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    unseen: Unseen = "drop",
) -> Split:
    """Global time cut: the earliest share of all rows trains, then valid, the latest test.

    Rows are ordered by timestamp (ties by row order) and cut at the ratio positions, so every
    test time is >= every valid time >= every train time. The protocol records the cut times.
    """
    ds = _as_dataset(data)
    ts = _timestamps(ds, "temporal")
    _, r_valid, r_test, with_valid = _ratios(ratios)
    n_valid, n_test = _tail_counts(np.array([len(ts)]), r_valid, r_test)
    part = _assign_tail(np.zeros(len(ts), dtype=np.int64), _time_rank(ts), n_valid, n_test)
    cuts = {
        name: int(ts[part == code].min())
        for code, name in ((VALID, "valid"), (TEST, "test"))
        if np.any(part == code)
    }
    protocol = {"name": "temporal", "ratios": list(ratios), "cut_times": cuts}
    return _finish(ds, part, protocol, unseen, with_valid)


def user_temporal_split(
    data: Dataset | pl.DataFrame,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    unseen: Unseen = "drop",
) -> Split:
    """Per-user time split: each user's earliest rows train, the latest test (random's rounding)."""
    ds = _as_dataset(data)
    ts = _timestamps(ds, "user-temporal")
    _, r_valid, r_test, with_valid = _ratios(ratios)
    users, counts = _user_counts(ds)
    n_valid, n_test = _tail_counts(counts, r_valid, r_test)
    part = _assign_tail(users, _time_rank(ts), n_valid, n_test)
    protocol = {"name": "user-temporal", "ratios": list(ratios), "rounding": _ROUNDING}
    return _finish(ds, part, protocol, unseen, with_valid)


def leave_last_out_split(
    data: Dataset | pl.DataFrame, *, valid: bool = True, unseen: Unseen = "drop"
) -> Split:
    """Per user by time: last row test, second to last valid, the rest train.

    Users with 3+ rows get all three parts, with 2 rows train and test, with 1 row train only.
    With `valid=False` the second to last row stays in train and there is no valid part.
    """
    ds = _as_dataset(data)
    ts = _timestamps(ds, "leave-last-out")
    users, counts = _user_counts(ds)
    n_test = (counts >= 2).astype(np.int64)
    n_valid = (counts >= 3).astype(np.int64) if valid else np.zeros_like(n_test)
    part = _assign_tail(users, _time_rank(ts), n_valid, n_test)
    return _finish(ds, part, {"name": "leave-last-out"}, unseen, valid)


_USER_ROUNDING = (
    "users with >= 2 rows are eligible; n_test_users = floor(n_eligible*test + 0.5), "
    "n_valid_users = floor(n_eligible*valid + 0.5), at least one user left to train; per "
    "held-out user of n rows: n_history = floor(n*query_fraction + 0.5) clipped to [1, n-1], "
    "the rest truth"
)


def user_shares(ratios: Sequence[float]) -> tuple[float, float]:
    """The (valid, test) user shares of train,[valid,]test ratios (`--ratios` of `--split
    users`), checked like the ratios of the other protocols."""
    _, valid, test, _ = _ratios(ratios)
    return valid, test


def _held_out_users(
    counts: np.ndarray, valid: float, test: float, rng: np.random.Generator
) -> np.ndarray:
    """Part code (TRAIN / VALID / TEST) of every user: a seeded draw among users with 2+ rows."""
    eligible = np.flatnonzero(counts >= 2)
    n_active = int(np.count_nonzero(counts))
    want_valid, want_test = (int(np.floor(len(eligible) * r + 0.5)) for r in (valid, test))
    n_test = min(want_test, max(n_active - 1, 0))
    n_valid = min(want_valid, len(eligible) - n_test, max(n_active - 1 - n_test, 0))
    drawn = rng.permutation(eligible)
    code = np.full(len(counts), TRAIN, dtype=np.int8)
    code[drawn[:n_test]] = TEST
    code[drawn[n_test : n_test + n_valid]] = VALID
    return code


def user_holdout_split(
    data: Dataset | pl.DataFrame,
    *,
    valid: float = 0.1,
    test: float = 0.1,
    query_fraction: float = 0.8,
    order: Literal["random", "time"] = "random",
    seed: int = 0,
    unseen: Unseen = "drop",
) -> Split:
    """Held-out users ("strong generalization", Liang et al. 2018, Mult-VAE section 4.1).

    A seeded share of the users (`valid`, `test`; drawn among users with 2+ rows) is kept out
    of training entirely. Each held-out user's rows are cut into a query history (the share
    `query_fraction`: a random subset per user, or with `order="time"` the earliest rows) and
    the truth (the rest): `split.valid` / `split.test` hold the truth, `split.histories` the
    histories. Vocabularies stay shared: held-out users are in them with no training rows.
    With `unseen="drop"` held-out rows whose item never occurs in train are removed before
    the cut (as the paper does), so the stated sizes hold for the rows that remain.
    """
    if unseen not in ("drop", "keep"):
        raise ConfigError(f"unseen must be 'drop' or 'keep', got {unseen!r}")
    if order not in ("random", "time"):
        raise ConfigError(f"order must be 'random' or 'time', got {order!r}")
    if valid < 0 or test <= 0 or valid + test >= 1:
        raise ConfigError(
            f"held-out user shares need test > 0, valid >= 0 and valid + test < 1, "
            f"got valid={valid}, test={test}"
        )
    if not 0 < query_fraction < 1:
        raise ConfigError(f"query_fraction must be in (0, 1), got {query_fraction}")
    ds = _as_dataset(data)
    rank_time = _time_rank(_timestamps(ds, "users (order='time')")) if order == "time" else None
    rng = np.random.default_rng(seed)
    users, counts = _user_counts(ds)
    items = ds.interactions[C.item_idx].to_numpy()
    user_part = _held_out_users(counts, valid, test, rng)
    row_part = user_part[users]
    is_train = row_part == TRAIN
    keep = np.ones(len(users), dtype=bool)
    if unseen == "drop":
        seen_item = np.bincount(items[is_train], minlength=ds.n_items) > 0
        keep = is_train | seen_item[items]
    dropped = {
        name: int(np.count_nonzero(~keep & (row_part == code)))
        for code, name in ((VALID, "valid"), (TEST, "test"))
    }
    # cut every held-out user's kept rows: the last n_truth by `rank` are the truth
    held = ~is_train & keep
    n_kept = np.bincount(users[held], minlength=ds.n_users)
    n_history = np.clip(np.floor(n_kept * query_fraction + 0.5).astype(np.int64), 1, None)
    n_truth = np.where(n_kept >= 2, n_kept - np.minimum(n_history, n_kept - 1), 0)
    rank = rng.permutation(len(users)) if rank_time is None else rank_time
    sub = np.flatnonzero(held)
    sub_rank = np.empty(len(sub), dtype=np.int64)
    sub_rank[np.argsort(rank[sub], kind="stable")] = np.arange(len(sub))
    is_truth = np.zeros(len(users), dtype=bool)
    cut = _assign_tail(users[sub], sub_rank, np.zeros_like(n_truth), n_truth)
    is_truth[sub] = cut == TEST
    inter = ds.interactions.drop(_PART_COLUMN, strict=False)

    def take(mask: np.ndarray, name: str) -> Dataset:
        return ds.with_interactions(inter.filter(pl.Series(mask)), name=name)

    parts = {"train": take(is_train, "train")}
    histories: dict[str, Dataset] = {}
    for code, name in ((VALID, "valid"), (TEST, "test")):
        if name == "valid" and valid == 0:
            continue
        in_part = held & (row_part == code)
        parts[name] = take(in_part & is_truth, name)
        histories[name] = take(in_part & ~is_truth, f"{name}_history")
    with_valid = "valid" in parts
    protocol = {
        "name": "users",
        "valid": valid,
        "test": test,
        "query_fraction": query_fraction,
        "order": order,
        "seed": seed,
        "rounding": _USER_ROUNDING,
        "unseen": unseen,
        "held_out_users": {
            name: int(np.count_nonzero(user_part == code))
            for code, name in ((VALID, "valid"), (TEST, "test"))
            if name in parts
        },
        "rows": {name: part.n_interactions for name, part in parts.items()}
        | {f"{name}_history": part.n_interactions for name, part in histories.items()},
        "users": {name: int(part.active_users.size) for name, part in parts.items()},
        "dropped": dropped if with_valid else {"test": dropped["test"]},
    }
    return Split(parts["train"], parts["test"], parts.get("valid"), protocol, histories)


def fixed_split(
    parts: Mapping[str, pl.DataFrame],
    *,
    unseen: Unseen = "drop",
    item_features: pl.DataFrame | None = None,
    user_features: pl.DataFrame | None = None,
    name: str = "dataset",
) -> Split:
    """Keep given train / [valid /] test tables (e.g. LightGCN files) over shared vocabularies."""
    unknown = sorted(set(parts) - {"train", "valid", "test"})
    if unknown or not {"train", "test"} <= set(parts):
        raise ConfigError(
            f"fixed split needs parts 'train' and 'test' (optional 'valid'), got {sorted(parts)}"
        )
    codes = {"train": TRAIN, "valid": VALID, "test": TEST}
    frame = pl.concat(
        [
            frame.with_columns(pl.lit(codes[key], dtype=pl.Int8).alias(_PART_COLUMN))
            for key, frame in parts.items()
        ],
        how="diagonal_relaxed",
    )
    ds = build_dataset(frame, item_features=item_features, user_features=user_features, name=name)
    part = ds.interactions[_PART_COLUMN].to_numpy()
    return _finish(ds, part, {"name": "fixed"}, unseen, "valid" in parts)


SPLITS: dict[str, Callable[..., Split]] = {
    "random": random_split,
    "temporal": temporal_split,
    "user-temporal": user_temporal_split,
    "leave-last-out": leave_last_out_split,
    "fixed": fixed_split,
    "users": user_holdout_split,
}


def make_split(name: str, data: Any, **opts: Any) -> Split:
    """Run the split protocol called `name` ("fixed" takes a dict of part frames as `data`)."""
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    fn = SPLITS[name]
    accepted = list(inspect.signature(fn).parameters)[1:]
    bad = sorted(set(opts) - set(accepted))
    if bad:
        raise ConfigError(
            f"unknown option(s) {', '.join(bad)} for the {name} split; valid: {', '.join(accepted)}"
        )
    return fn(data, **opts)
