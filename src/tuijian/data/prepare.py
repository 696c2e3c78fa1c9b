"""Preparation of a raw interactions table: dedupe, rating threshold, event weights, k-core.

`prepare` turns the table a source loader returns (`user_id`, `item_id`, optional `timestamp`,
`event`, `rating`, `weight`) into the table models train on, and reports what every step removed,
so a surprising dataset size can always be traced to the setting that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from tuijian.data.columns import Columns
from tuijian.errors import DataError

C = Columns
_EVENT_WEIGHT = "__event_weight"
# Rows that count as interactions: weight > 0 (NaN, which polars orders above all, excluded).
_POSITIVE = (pl.col(C.weight) > 0) & ~pl.col(C.weight).is_nan()


class PrepareConfig(BaseModel):
    """Settings of `prepare`; every field maps to one reported step.

    `event_weights` maps an event name to the weight of one such event (e.g. buy 5, cart 3,
    view 1); the row weight becomes that value times any existing `weight`, and rows whose
    weight is then <= 0 are dropped. Events missing from the map are an error unless
    `default_event_weight` is set. `rating_threshold` keeps rows with `rating >= threshold`
    (implicit feedback from ratings). `aggregate` leaves one row per user-item pair: summed
    weight, last (max) timestamp, last rating and the strongest event (first among equal
    weights). The k-core filter repeats until every user and item has at least the minimum
    number of rows.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_weights: dict[str, float] | None = None
    default_event_weight: float | None = Field(default=None, ge=0)
    rating_threshold: float | None = None
    min_user_interactions: int = Field(default=0, ge=0)
    min_item_interactions: int = Field(default=0, ge=0)
    dedupe: bool = True
    aggregate: bool = True


@dataclass(frozen=True)
class StepReport:
    """Table sizes before and after one preparation step."""

    name: str
    rows_before: int
    rows_after: int
    users_before: int
    users_after: int
    items_before: int
    items_after: int
    detail: str = ""

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after

    @property
    def users_removed(self) -> int:
        return self.users_before - self.users_after

    @property
    def items_removed(self) -> int:
        return self.items_before - self.items_after

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of the step, including the removed counts (one CLI table row)."""
        return {
            "step": self.name,
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "rows_removed": self.rows_removed,
            "users_before": self.users_before,
            "users_after": self.users_after,
            "users_removed": self.users_removed,
            "items_before": self.items_before,
            "items_after": self.items_after,
            "items_removed": self.items_removed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PrepareReport:
    """Every step `prepare` ran, in order, with the config that drove it."""

    steps: list[StepReport]
    config: dict[str, Any]

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per step, for a table in the CLI."""
        return [step.to_dict() for step in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the config, the steps and the final sizes."""
        last = self.steps[-1]
        return {
            "config": self.config,
            "steps": self.to_rows(),
            "rows": last.rows_after,
            "users": last.users_after,
            "items": last.items_after,
        }


def _sizes(frame: pl.DataFrame) -> tuple[int, int, int]:
    """Rows, distinct users and distinct items of a table."""
    if frame.height == 0:
        return 0, 0, 0
    counts = frame.select(pl.col(C.user_id).n_unique(), pl.col(C.item_id).n_unique()).row(0)
    return frame.height, int(counts[0]), int(counts[1])


class _Recorder:
    """Collects step reports and refuses a step that leaves nothing."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.steps: list[StepReport] = []
        self.sizes = _sizes(frame)
        self.steps.append(StepReport("input", *_interleave(self.sizes, self.sizes)))

    def record(self, name: str, frame: pl.DataFrame, detail: str) -> None:
        after = _sizes(frame)
        if after[0] == 0:
            raise DataError(f"nothing left after {name} ({detail})")
        self.steps.append(StepReport(name, *_interleave(self.sizes, after), detail=detail))
        self.sizes = after


def _interleave(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, ...]:
    return before[0], after[0], before[1], after[1], before[2], after[2]


def prepare(
    frame: pl.DataFrame, config: PrepareConfig | None = None
) -> tuple[pl.DataFrame, PrepareReport]:
    """Clean an interactions table for training and report what each step removed.

    Steps, each recorded even when it changes nothing: `dedupe` (exact duplicate rows),
    `rating threshold`, `event weights`, `positive weights`, `aggregate` (one row per
    user-item) and `k-core`. A row weighing <= 0 is never an interaction: `event weights` drops
    the rows whose weight (event weight times any given weight) is <= 0; without event weights,
    a table with a `weight` column gets the `positive weights` step, which drops them.
    The result always has a Float32 `weight` column; ids are cast to strings.
    """
    config = config or PrepareConfig()
    for col in (C.user_id, C.item_id):
        if col not in frame.columns:
            raise DataError(f"interactions lack the {col!r} column (have {frame.columns})")
    if frame.height == 0:
        raise DataError("no interactions to prepare (the table is empty)")
    # Categorical ids make the per-step counts, group-bys and k-core windows about 2x faster.
    frame = frame.with_columns(
        pl.col(C.user_id).cast(pl.Utf8).cast(pl.Categorical),
        pl.col(C.item_id).cast(pl.Utf8).cast(pl.Categorical),
    )
    rec = _Recorder(frame)

    if config.dedupe:
        frame = frame.filter(pl.struct(pl.all()).is_first_distinct())
        rec.record("dedupe", frame, "exact duplicate rows")

    if config.rating_threshold is not None:
        if C.rating not in frame.columns:
            raise DataError(
                f"rating_threshold={config.rating_threshold} needs a {C.rating!r} column "
                f"(have {frame.columns})"
            )
        frame = frame.filter(pl.col(C.rating) >= config.rating_threshold)
        rec.record("rating threshold", frame, f"rating_threshold={config.rating_threshold}")

    weighted = C.weight in frame.columns
    frame = _weigh(frame, config)
    if config.event_weights is not None:
        rec.record("event weights", frame, _weights_detail(config))
    elif weighted:
        # One rule for every source: a row must weigh more than 0 to count as an interaction.
        frame = frame.filter(_POSITIVE)
        rec.record("positive weights", frame, "rows with weight <= 0 dropped")

    if config.aggregate:
        frame = _aggregate(frame)
        rec.record("aggregate", frame, "one row per user-item pair")

    if config.min_user_interactions > 1 or config.min_item_interactions > 1:
        frame, rounds = _k_core(frame, config.min_user_interactions, config.min_item_interactions)
        rec.record(
            "k-core",
            frame,
            f"min_user_interactions={config.min_user_interactions}, "
            f"min_item_interactions={config.min_item_interactions}, rounds={rounds}",
        )

    frame = frame.drop(_EVENT_WEIGHT, strict=False).with_columns(
        pl.col(C.user_id).cast(pl.Utf8), pl.col(C.item_id).cast(pl.Utf8)
    )
    return frame, PrepareReport(rec.steps, config.model_dump())


def _weights_detail(config: PrepareConfig) -> str:
    pairs = ", ".join(f"{k}={v:g}" for k, v in sorted((config.event_weights or {}).items()))
    if config.default_event_weight is not None:
        pairs += f", default={config.default_event_weight:g}"
    return f"event_weights: {pairs}"


def _weigh(frame: pl.DataFrame, config: PrepareConfig) -> pl.DataFrame:
    """Set the Float32 `weight` column from event weights (times any given weight), else 1."""
    if C.weight not in frame.columns:
        frame = frame.with_columns(pl.lit(1.0, dtype=pl.Float32).alias(C.weight))
    frame = frame.with_columns(pl.col(C.weight).cast(pl.Float32))
    if config.event_weights is None:
        return frame
    if C.event not in frame.columns:
        raise DataError(f"event_weights are set but the table has no {C.event!r} column")
    mapping = pl.DataFrame(
        {
            C.event: list(config.event_weights),
            _EVENT_WEIGHT: list(config.event_weights.values()),
        },
        schema={C.event: pl.Utf8, _EVENT_WEIGHT: pl.Float32},
    )
    frame = frame.with_columns(pl.col(C.event).cast(pl.Utf8)).join(
        mapping, on=C.event, how="left", maintain_order="left"
    )
    if config.default_event_weight is not None:
        frame = frame.with_columns(pl.col(_EVENT_WEIGHT).fill_null(config.default_event_weight))
    else:
        unknown = frame.filter(pl.col(_EVENT_WEIGHT).is_null())[C.event].unique().sort()
        if len(unknown):
            shown = unknown.head(10).to_list()
            raise DataError(
                f"events without a weight in event_weights: {shown}"
                f"{' ...' if len(unknown) > 10 else ''} (add them or set default_event_weight)"
            )
    return frame.with_columns(
        (pl.col(C.weight) * pl.col(_EVENT_WEIGHT)).cast(pl.Float32).alias(C.weight)
    ).filter(_POSITIVE)


def _aggregate(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per user-item: summed weight, max timestamp, last rating, strongest event.

    "Last" is by timestamp when there is one (ties: file order), else by file order; the
    strongest event is the one with the largest event weight (the earliest among equals; the
    last event when there are no weights).
    Rows keep the order in which each pair first appears (in time order when timed).
    """
    has_time = C.timestamp in frame.columns
    if has_time:
        frame = frame.sort(C.timestamp, maintain_order=True, nulls_last=False)
    aggs = [pl.col(C.weight).sum()]
    if has_time:
        aggs.append(pl.col(C.timestamp).max())
    if C.rating in frame.columns:
        aggs.append(pl.col(C.rating).drop_nulls().last())
    if C.event in frame.columns:
        if _EVENT_WEIGHT in frame.columns:
            aggs.append(pl.col(C.event).get(pl.col(_EVENT_WEIGHT).arg_max()))
        else:
            aggs.append(pl.col(C.event).last())
    extra = [
        c
        for c in frame.columns
        if c not in (C.user_id, C.item_id, C.weight, C.timestamp, C.rating, C.event, _EVENT_WEIGHT)
    ]
    aggs.extend(pl.col(c).last() for c in extra)
    out = frame.group_by(C.user_id, C.item_id, maintain_order=True).agg(aggs)
    order = [c for c in frame.columns if c in out.columns]
    return out.select(order).with_columns(pl.col(C.weight).cast(pl.Float32))


def _k_core(frame: pl.DataFrame, min_user: int, min_item: int) -> tuple[pl.DataFrame, int]:
    """Drop users and items below the minimum row counts, repeating until nothing changes."""
    rounds = 0
    while True:
        rounds += 1
        kept = frame.filter(
            (pl.len().over(C.user_id) >= min_user) & (pl.len().over(C.item_id) >= min_item)
        )
        if kept.height == frame.height or kept.height == 0:
            return kept, rounds
        frame = kept
