"""Request and response bodies of the service, named like the library's columns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_K = 1000
Id = Field(min_length=1, max_length=200)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoredItem(BaseModel):
    item_id: str
    score: float
    title: str | None = None


class ItemsOut(BaseModel):
    """A ranked list and what produced it: the model's name, or "popularity" (fallback)."""

    items: list[ScoredItem]
    source: str


class RecommendIn(Strict):
    """A known user, or an anonymous session given as item ids (oldest first)."""

    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    items: list[str] = Field(default_factory=list, max_length=1000)
    k: int = Field(default=10, ge=1, le=MAX_K)
    candidates: list[str] | None = Field(default=None, max_length=100_000)
    exclude: list[str] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _someone(self) -> RecommendIn:
        if self.user_id is None and not self.items:
            raise ValueError("give a user_id or a non-empty list of items")
        return self


class EventIn(Strict):
    user_id: str = Id
    item_id: str = Id
    event: str = Field(default="view", min_length=1, max_length=50)
    timestamp: float = Field(ge=0)
    event_id: str = Id


class EventsIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class EventsOut(BaseModel):
    received: int
    stored: int


class Health(BaseModel):
    status: str
    model: str
    n_users: int
    n_items: int
