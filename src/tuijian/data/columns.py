"""The column vocabulary: every table in tuijian names its columns through `Columns`."""

from typing import Final


class Columns:
    """Names of interaction and feature columns; use these, never string literals."""

    user_id: Final = "user_id"
    item_id: Final = "item_id"
    timestamp: Final = "timestamp"
    event: Final = "event"
    rating: Final = "rating"
    weight: Final = "weight"
    user_idx: Final = "user_idx"
    item_idx: Final = "item_idx"
    # item feature tables
    title: Final = "title"
    text: Final = "text"
    categories: Final = "categories"
    score: Final = "score"
    rank: Final = "rank"


INTERACTION_COLUMNS: Final = (
    Columns.user_id,
    Columns.item_id,
    Columns.timestamp,
    Columns.event,
    Columns.rating,
    Columns.weight,
)
