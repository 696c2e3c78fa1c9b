"""Request and response bodies of the service, named like the library's columns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

MAX_K = 1000
MAX_LIST = 10_000  # ids in one candidates / exclude / session list
MAX_BATCH = 1000  # events in one POST
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _integral(value: object) -> object:
    """411.0 as 411 (JSON Schema counts it an integer); anything else is left to strict checks."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integral = Annotated[int, BeforeValidator(_integral)]


class Strict(BaseModel):
    """A request body: unknown keys and values of another JSON type (true for a number) are
    errors, not silently dropped or converted."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ScoredItem(BaseModel):
    item_id: str
    score: float
    title: str | None = None


class ItemsOut(BaseModel):
    """A ranked list and what produced it: `model@version`, or "popularity" (the fallback of a
    user with no history)."""

    items: list[ScoredItem]
    source: str


class RecommendIn(Strict):
    """A known user, or an anonymous session given as item ids (oldest first); with neither,
    the popularity fallback."""

    user_id: Id | None = None
    items: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    k: Integral = Field(default=10, ge=1, le=MAX_K)
    candidates: list[Id] | None = Field(default=None, max_length=MAX_LIST)
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    category: Id | None = None


class EventIn(Strict):
    """One event; `event_id` (chosen by the client) makes a resend harmless."""

    user_id: Id
    item_id: Id
    event: Annotated[str, StringConstraints(min_length=1, max_length=50)] = "view"
    timestamp: float = Field(ge=0, le=1e11)  # seconds since 1970
    event_id: Id


class EventsIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsOut(BaseModel):
    """How many events arrived and how many were new (the rest were resends)."""

    received: int
    stored: int


class Reason(BaseModel):
    """A history item behind a recommendation and how much of its score it accounts for."""

    item_id: str
    contribution: float
    title: str | None = None
    shared_categories: list[str] = Field(default_factory=list)


class ExplanationOut(BaseModel):
    """Why an item is recommended to a user: history items, or "popular" for the fallback."""

    user_id: str
    item_id: str
    score: float
    kind: str  # "history" or "popular"
    reasons: list[Reason]
    source: str


class HistoryItem(BaseModel):
    """One item of a user's history: from training (no event or time), or a stored event."""

    item_id: str
    title: str | None = None
    weight: float
    event: str | None = None
    timestamp: float | None = None


class HistoryOut(BaseModel):
    """What the service counts as a user's history: training items, then stored events."""

    user_id: str
    known: bool
    items: list[HistoryItem]


class UsersOut(BaseModel):
    """Some users the model knows (for pickers), and how many it knows."""

    users: list[str]
    n_users: int


class Detail(BaseModel):
    """An error: one line saying what is wrong and where."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries of the error answers `codes` (all carry a `Detail`)."""
    meaning = {
        400: "a value the model cannot use",
        401: "a missing or wrong X-API-Key",
        404: "an unknown item or category",
        409: "a model folder that does not load (the old version keeps answering)",
        413: "a request body over the limit",
    }
    return {code: {"model": Detail, "description": meaning[code]} for code in codes}


class Health(BaseModel):
    status: str
    model: str
    version: str
    n_users: int
    n_items: int


class ReloadOut(BaseModel):
    previous: str
    current: str
