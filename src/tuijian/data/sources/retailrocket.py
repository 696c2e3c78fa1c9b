"""Retailrocket e-commerce events: the caserec per-event `.dat` files or Kaggle `events.csv`."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.sources.base import ROW, Origin, RawData, build_interactions, read_delimited
from tuijian.errors import DataError

C = Columns

VIEW, ADD_TO_CART, PURCHASE = "view", "add_to_cart", "purchase"
EVENT_FILES: Final = {
    VIEW: "view_ecommerce.dat",
    ADD_TO_CART: "add_to_cart_ecommerce.dat",
    PURCHASE: "purchase_ecommerce.dat",
}
KAGGLE_EVENTS: Final = {"view": VIEW, "addtocart": ADD_TO_CART, "transaction": PURCHASE}
"""Kaggle `events.csv` event names -> ours."""


def load_retailrocket(path: str | Path) -> RawData:
    """Events with `event` in view / add_to_cart / purchase.

    The caserec folder (three `.dat` files, no timestamps) is read when present, else the
    Kaggle `events.csv` (millisecond timestamps, converted to seconds).
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"Retailrocket folder not found: {folder}")
    present = [event for event, name in EVENT_FILES.items() if (folder / name).is_file()]
    if present or not (folder / "events.csv").is_file():
        missing = [name for event, name in EVENT_FILES.items() if event not in present]
        if missing:
            raise DataError(f"{folder}: Retailrocket files missing: {missing} (or events.csv)")
        return _load_caserec(folder)
    return _load_kaggle(folder / "events.csv")


def _load_caserec(folder: Path) -> RawData:
    """`view` / `add_to_cart` / `purchase` `.dat` files (`visitorid itemid event`, tab)."""
    parts = []
    for event, name in EVENT_FILES.items():
        path = folder / name
        frame = read_delimited(path, separator="\t", quote_char=None)
        mapping = {C.user_id: "visitorid", C.item_id: "itemid"}
        inter = build_interactions(frame, mapping, Origin(str(path), first_line=2))
        parts.append(inter.with_columns(pl.lit(event, dtype=pl.Utf8).alias(C.event)))
    counts = {event: part.height for event, part in zip(EVENT_FILES, parts, strict=True)}
    return RawData(pl.concat(parts), name=folder.name, notes={"rows": counts})


def _load_kaggle(path: Path) -> RawData:
    """Kaggle `events.csv`: timestamp (ms), visitorid, event, itemid, transactionid."""
    frame = read_delimited(path)
    mapping = {
        C.user_id: "visitorid",
        C.item_id: "itemid",
        C.timestamp: "timestamp",
        C.event: "event",
    }
    origin = Origin(str(path), first_line=2)
    inter = build_interactions(frame, mapping, origin, unit="ms", keep=(ROW,))
    events = inter[C.event].replace_strict(KAGGLE_EVENTS, default=None)
    if events.null_count():
        pos = int(events.is_null().arg_true()[0])
        raise DataError(
            f"{origin.at(int(inter[ROW][pos]))}: column 'event': {inter[C.event][pos]!r} "
            f"is not one of {list(KAGGLE_EVENTS)}"
        )
    inter = inter.with_columns(events.alias(C.event)).drop(ROW)
    return RawData(inter, name=path.parent.name)
