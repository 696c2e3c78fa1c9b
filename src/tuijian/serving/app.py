"""`create_app(settings)`: the model loaded once in the lifespan, routes that only translate
HTTP into `recommend` calls with a `Query`, and events that reach the next answer."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi import Query as Param
from fastapi.responses import JSONResponse

from tuijian.errors import TuijianError, UnknownIdError
from tuijian.models.base import ItemList, Recommender
from tuijian.models.query import Query
from tuijian.serving.events import Event, EventStore, SQLiteEventStore
from tuijian.serving.schemas import (
    MAX_K,
    EventIn,
    EventsIn,
    EventsOut,
    Health,
    ItemsOut,
    RecommendIn,
    ScoredItem,
)

API_KEY_ENV = "TUIJIAN_API_KEY"
"""Environment variable holding the key that write endpoints require in `X-API-Key`."""


@dataclass(frozen=True)
class Settings:
    """What the service serves: a saved model folder, the event store file and the API key
    (None: read from `TUIJIAN_API_KEY`; writes are refused when neither gives one)."""

    model_dir: Path
    events_db: Path | None = None  # None: events kept in memory for the process's life
    api_key: str | None = None


@dataclass
class Served:
    """The loaded model with what the routes need beside it."""

    model: Recommender
    titles: dict[str, str]
    events: EventStore
    api_key: str | None


def _titles(model_dir: Path) -> dict[str, str]:
    """Item titles from the data folder the model was fitted on, when it is known."""
    from tuijian.cli.common import fitted_on, item_titles
    from tuijian.data.split import Split

    data = fitted_on(model_dir)
    return item_titles(Split.load(data).train) if data is not None else {}


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app serving `settings.model_dir`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = Recommender.load(settings.model_dir)
        store = SQLiteEventStore(settings.events_db or ":memory:")
        key = settings.api_key or os.environ.get(API_KEY_ENV) or None
        app.state.served = Served(model, _titles(Path(settings.model_dir)), store, key)
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="tuijian", lifespan=lifespan)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(TuijianError)
    async def _bad(request: Request, exc: TuijianError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": " ".join(str(exc).split())})

    app.get("/health", response_model=Health)(health)
    app.get("/v1/users/{user_id}/recommendations", response_model=ItemsOut)(user_recommendations)
    app.post("/v1/recommendations", response_model=ItemsOut)(recommendations)
    app.get("/v1/items/{item_id}/similar", response_model=ItemsOut)(similar)
    app.post("/v1/events", response_model=EventsOut)(post_events)
    return app


def served(request: Request) -> Served:
    """The dependency every route reads the model through."""
    return request.app.state.served


ServedDep = Annotated[Served, Depends(served)]


def _items_out(served: Served, items: ItemList) -> ItemsOut:
    rows = [
        ScoredItem(item_id=i, score=float(s), title=served.titles.get(i))
        for i, s in zip(items.ids.tolist(), items.scores.tolist(), strict=True)
    ]
    return ItemsOut(items=rows, source=items.source)


def _check_items(served: Served, ids: Sequence[str]) -> None:
    """404 naming the first item id the model does not know."""
    missing = served.model.items_.index_or_missing(list(ids)) < 0
    if missing.any():
        raise UnknownIdError(f"unknown item: {list(ids)[int(missing.argmax())]!r}")


def _query(served: Served, user_id: str | None, items: Sequence[str], **lists) -> Query:
    """A query for `user_id` whose history is extended by their stored events (then `items`);
    a user unknown to the model is scored by those items alone (popularity when none)."""
    stored = served.events.user_events(user_id) if user_id is not None else []
    given = [e.item_id for e in stored] + list(items)
    known = user_id is not None and user_id in served.model.users_
    return Query(user_id=user_id if known else None, items=given, **lists)


def _recommend(served: Served, query: Query, k: int) -> ItemsOut:
    (items,) = served.model.recommend([query], k)
    return _items_out(served, items)


def health(served: ServedDep) -> Health:
    """The service is up, and which model it serves."""
    model = served.model
    return Health(status="ok", model=model.name, n_users=len(model.users_), n_items=model.n_items)


def user_recommendations(
    served: ServedDep,
    user_id: str,
    k: Annotated[int, Param(ge=1, le=MAX_K)] = 10,
    exclude: Annotated[list[str] | None, Param(max_length=10_000)] = None,
) -> ItemsOut:
    """Top-k items for a user, their stored events counted as history."""
    _check_items(served, exclude or [])
    return _recommend(served, _query(served, user_id, (), exclude=exclude or ()), k)


def recommendations(served: ServedDep, body: RecommendIn) -> ItemsOut:
    """Top-k items for a known user or an anonymous session, with candidate / exclude lists."""
    _check_items(served, [*body.items, *(body.candidates or []), *body.exclude])
    query = _query(
        served, body.user_id, body.items, candidates=body.candidates, exclude=body.exclude
    )
    return _recommend(served, query, body.k)


def similar(
    served: ServedDep, item_id: str, k: Annotated[int, Param(ge=1, le=MAX_K)] = 10
) -> ItemsOut:
    """Items similar to one item, where the model offers them."""
    _check_items(served, [item_id])
    finder = getattr(served.model, "similar_items", None)
    if finder is None:
        raise HTTPException(404, f"model {served.model.name} does not offer similar items")
    return _items_out(served, finder(item_id, k))


def post_events(
    served: ServedDep,
    body: EventIn | EventsIn,
    x_api_key: Annotated[str | None, Header()] = None,
) -> EventsOut:
    """Store one event or a batch (durable before the reply; resent event ids are ignored)."""
    if served.api_key is None or x_api_key != served.api_key:
        raise HTTPException(401, "a valid X-API-Key header is required to post events")
    batch = body.events if isinstance(body, EventsIn) else [body]
    _check_items(served, [e.item_id for e in batch])
    events = [Event(e.user_id, e.item_id, e.event, e.timestamp, e.event_id) for e in batch]
    return EventsOut(received=len(events), stored=served.events.add(events))
