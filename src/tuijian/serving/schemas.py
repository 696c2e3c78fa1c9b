"""Request and response bodies of the service, named like the library's columns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_K = 1000
MAX_LIST = 10_000  # ids in one candidates / exclude / session list
MAX_BATCH = 1000  # events in one POST
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Strict(BaseModel):
    """A request body: unknown keys are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


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
    """A known user, or an anonymous session given as item ids (oldest first)."""

    user_id: Id | None = None
    items: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    k: int = Field(default=10, ge=1, le=MAX_K)
    candidates: list[Id] | None = Field(default=None, max_length=MAX_LIST)
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    category: Id | None = None

    @model_validator(mode="after")
    def _someone(self) -> RecommendIn:
        if self.user_id is None and not self.items:
            raise ValueError("give a user_id or a non-empty list of items")
        return self


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


class Health(BaseModel):
    status: str
    model: str
    version: str
    n_users: int
    n_items: int


class ReloadOut(BaseModel):
    previous: str
    current: str
