"""`create_app(settings)`: the model loaded once in the lifespan and reached through `Depends`;
routes only translate HTTP into `Served` calls (recommend, similar, explain) and event writes.

Read endpoints are open; writes (`POST /v1/events`) and `/admin` need the API key in
`X-API-Key` (from `Settings.api_key` or `TUIJIAN_API_KEY`; with neither they are refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tuijian.errors import TuijianError, UnknownIdError
from tuijian.models.base import ItemList
from tuijian.serving.ann import ANN_MIN_ITEMS
from tuijian.serving.engine import Served, model_version
from tuijian.serving.events import Event, EventStore, SQLiteEventStore
from tuijian.serving.metrics import Metrics, ObservedLimited
from tuijian.serving.page import PAGE
from tuijian.serving.schemas import (
    MAX_K,
    MAX_LIST,
    EventIn,
    EventsIn,
    EventsOut,
    ExplanationOut,
    Health,
    HistoryItem,
    HistoryOut,
    ItemsOut,
    Reason,
    RecommendIn,
    ReloadOut,
    ScoredItem,
    UsersOut,
    errors,
)

API_KEY_ENV = "TUIJIAN_API_KEY"
"""Environment variable holding the key that write and admin endpoints require."""
MODEL_DIR_ENV = "TUIJIAN_MODEL_DIR"
EVENTS_DB_ENV = "TUIJIAN_EVENTS_DB"
ANN_ENV = "TUIJIAN_ANN_MIN_ITEMS"
MAX_BODY = 1 << 20
WATCH_SECONDS = 2.0
"""How often the service checks whether the model folder was rewritten (0: never)."""
"""Default cap on request bodies (bytes): a full batch of events fits well under it."""


@dataclass(frozen=True)
class Settings:
    """What the service serves: a saved model folder, the event store file (None: in memory,
    for tests), the API key (None: `TUIJIAN_API_KEY`), the request body limit and the catalogue
    size from which dot-product models answer from a faiss index."""

    model_dir: Path
    events_db: Path | None = None
    api_key: str | None = None
    max_body: int = MAX_BODY
    ann_min_items: int = ANN_MIN_ITEMS
    watch_seconds: float = WATCH_SECONDS

    @classmethod
    def from_env(cls) -> Settings:
        """Settings of a worker process started by `tuijian serve --workers N`."""
        db = os.environ.get(EVENTS_DB_ENV)
        ann = int(os.environ.get(ANN_ENV, ANN_MIN_ITEMS))
        return cls(Path(os.environ[MODEL_DIR_ENV]), Path(db) if db else None, ann_min_items=ann)


class Slot:
    """The model version answering now; a reload loads the next one beside it and swaps the
    reference, so each request sees one whole version and the old one answers until then."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.lock = asyncio.Lock()

    async def reload(self, settings: Settings, metrics: Metrics) -> tuple[Served, Served]:
        """Load the model folder beside the served version, then swap: (previous, current).
        A folder that does not load raises `TuijianError` and the old version stays."""
        async with self.lock:
            previous = self.served
            self.served = await run_in_threadpool(
                Served.load, Path(settings.model_dir), settings.ann_min_items
            )
        metrics.serving(self.served.model.name, self.served.version)
        return previous, self.served

    async def watch(self, settings: Settings, metrics: Metrics) -> None:
        """Reload whenever the folder's version stamp changes (a retrain wrote into it); a
        folder caught half-written fails to load and is tried again at the next change."""
        tried = self.served.version
        while True:
            await asyncio.sleep(settings.watch_seconds)
            try:
                stamp = model_version(Path(settings.model_dir))
            except OSError:  # the folder is being replaced right now
                continue
            if stamp in (tried, self.served.version):
                continue
            tried = stamp
            with contextlib.suppress(TuijianError, OSError):
                await self.reload(settings, metrics)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app serving `settings.model_dir`."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served = Served.load(Path(settings.model_dir), settings.ann_min_items)
        store = SQLiteEventStore(settings.events_db or ":memory:")
        app.state.slot = Slot(served)
        app.state.events = store
        app.state.api_key = settings.api_key or os.environ.get(API_KEY_ENV) or None
        metrics.serving(served.model.name, served.version)
        watcher = None
        if settings.watch_seconds > 0:
            watcher = asyncio.create_task(app.state.slot.watch(settings, metrics))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            store.close()

    app = FastAPI(title="tuijian", version="1", lifespan=lifespan, responses=errors(400, 413))
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(ObservedLimited, metrics=metrics, max_body=settings.max_body)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(TuijianError)
    async def _bad(request: Request, exc: TuijianError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": " ".join(str(exc).split())})

    for router in (ops, page, users, sessions, items, events, admin):
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker (`uvicorn --factory tuijian.serving.app:app_from_env`)."""
    return create_app(Settings.from_env())


# ---- dependencies --------------------------------------------------------------------------
# Dependencies and read routes are `async def`: they run on the event loop, without a hop to a
# worker thread (which cost more than the scoring itself: 4.9 -> see docs/benchmarks/serving.md).
# Event writes stay in the thread pool, so a commit's fsync never stalls the loop.
async def current(request: Request) -> Served:
    """The model version a request is answered with (fixed for the whole request)."""
    return request.app.state.slot.served


async def event_store(request: Request) -> EventStore:
    return request.app.state.events


async def require_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """401 unless the request carries the service's API key."""
    key = request.app.state.api_key
    if key is None:
        raise HTTPException(401, f"writes are disabled: start the service with {API_KEY_ENV}")
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), key.encode()):
        raise HTTPException(401, "a valid X-API-Key header is required")


ServedDep = Annotated[Served, Depends(current)]
StoreDep = Annotated[EventStore, Depends(event_store)]
UserId = Annotated[str, PathParam(min_length=1, max_length=200)]
ItemId = Annotated[str, PathParam(min_length=1, max_length=200)]
K = Annotated[int, Param(ge=1, le=MAX_K)]


def _items_out(served: Served, items: ItemList) -> ItemsOut:
    titles = served.catalogue.titles
    rows = [
        ScoredItem(item_id=i, score=float(s), title=titles.get(i))
        for i, s in zip(items.ids.tolist(), items.scores.tolist(), strict=True)
    ]
    source = "popularity" if items.source == "popularity" else served.label
    return ItemsOut(items=rows, source=source)


# ---- routes --------------------------------------------------------------------------------
ops = APIRouter(tags=["operations"])
page = APIRouter(include_in_schema=False)
users = APIRouter(prefix="/v1/users", tags=["users"], responses=errors(404))
sessions = APIRouter(prefix="/v1/recommendations", tags=["recommendations"], responses=errors(404))
items = APIRouter(prefix="/v1/items", tags=["items"], responses=errors(404))
events = APIRouter(prefix="/v1/events", tags=["events"], responses=errors(401))
admin = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_key)], responses=errors(401, 409)
)


@ops.get("/health", response_model=Health)
async def health(served: ServedDep) -> Health:
    """The service is up, and which model version answers."""
    model = served.model
    return Health(
        status="ok",
        model=model.name,
        version=served.version,
        n_users=len(model.users_),
        n_items=model.n_items,
    )


@page.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    """The web page: pick a user or start a session, send events, watch the list change."""
    return HTMLResponse(PAGE)


@ops.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text: requests and latency per route, events stored, model version."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@users.get("", response_model=UsersOut)
async def known_users(
    served: ServedDep, limit: Annotated[int, Param(ge=1, le=MAX_K)] = 50
) -> UsersOut:
    """The first `limit` users the model was trained on."""
    ids = served.model.users_.ids
    return UsersOut(users=[str(u) for u in ids[:limit].tolist()], n_users=len(ids))


@users.get("/{user_id}/history", response_model=HistoryOut)
async def history(
    served: ServedDep,
    store: StoreDep,
    user_id: UserId,
    n: Annotated[int, Param(ge=1, le=MAX_LIST)] = 100,
) -> HistoryOut:
    """The user's training items (heaviest first), then the events stored since (oldest
    first); at most `n` items, the latest events kept first."""
    model, titles = served.model, served.catalogue.titles
    known = user_id in model.users_
    rows: list[HistoryItem] = []
    if known:
        row = model.user_history(model.users_.index([user_id]))
        order = np.argsort(-row.data, kind="stable")
        ids = model.items_.id(row.indices[order]).tolist()
        weights = row.data[order].tolist()
        rows = [
            HistoryItem(item_id=i, title=titles.get(i), weight=w)
            for i, w in zip(ids, weights, strict=True)
        ]
    weight = served.catalogue.event_weights
    stored = [
        HistoryItem(
            item_id=e.item_id,
            title=titles.get(e.item_id),
            weight=weight.get(e.event, 1.0),
            event=e.event,
            timestamp=e.timestamp,
        )
        for e in store.user_events(user_id)
    ][-n:]
    return HistoryOut(user_id=user_id, known=known, items=rows[: n - len(stored)] + stored)


@users.get("/{user_id}/recommendations", response_model=ItemsOut)
async def user_recommendations(
    served: ServedDep,
    store: StoreDep,
    user_id: UserId,
    k: K = 10,
    exclude: Annotated[list[str] | None, Param(max_length=MAX_LIST)] = None,
    category: Annotated[str | None, Param(min_length=1, max_length=200)] = None,
) -> ItemsOut:
    """Top-k items for a user; their events stored since training count as history."""
    query = served.query(
        user_id, store.user_events(user_id), exclude=exclude or (), category=category
    )
    return _items_out(served, served.recommend(query, k))


@users.get("/{user_id}/recommendations/{item_id}/explanation", response_model=ExplanationOut)
async def explanation(
    served: ServedDep,
    store: StoreDep,
    user_id: UserId,
    item_id: ItemId,
    n: Annotated[int, Param(ge=1, le=100)] = 5,
) -> ExplanationOut:
    """The user's history items that raise `item_id`'s score most (what it loses without
    each), or "popular" when the user has no history and the list is the fallback."""
    served.check_items([item_id])
    query = served.query(user_id, store.user_events(user_id))
    score, reasons, drops = served.explain(query, item_id)
    cat = served.catalogue
    ids = served.model.items_.id(reasons[:n]).tolist()
    own = set(cat.categories.get(item_id, ()))
    rows = [
        Reason(
            item_id=i,
            contribution=float(d),
            title=cat.titles.get(i),
            shared_categories=sorted(own & set(cat.categories.get(i, ()))),
        )
        for i, d in zip(ids, drops[:n].tolist(), strict=True)
    ]
    kind = "history" if len(reasons) else "popular"
    return ExplanationOut(
        user_id=user_id,
        item_id=item_id,
        score=score,
        kind=kind,
        reasons=rows,
        source=served.label if rows else "popularity",
    )


@sessions.post("", response_model=ItemsOut)
async def recommendations(served: ServedDep, store: StoreDep, body: RecommendIn) -> ItemsOut:
    """Top-k items for a known user or an anonymous session, with candidate / exclude lists
    and a category filter."""
    stored = store.user_events(body.user_id) if body.user_id is not None else []
    query = served.query(
        body.user_id,
        stored,
        body.items,
        candidates=body.candidates,
        exclude=body.exclude,
        category=body.category,
    )
    return _items_out(served, served.recommend(query, body.k))


@items.get("/{item_id}/similar", response_model=ItemsOut)
async def similar(served: ServedDep, item_id: ItemId, k: K = 10) -> ItemsOut:
    """The items the model ranks first for a session holding `item_id` alone."""
    return _items_out(served, served.similar(item_id, k))


@events.post("", response_model=EventsOut, dependencies=[Depends(require_key)])
def post_events(request: Request, store: StoreDep, body: EventIn | EventsIn) -> EventsOut:
    """Store one event or a batch, durably before the reply; resent event ids are ignored.
    Events on items the model does not know are kept for the next training."""
    batch = body.events if isinstance(body, EventsIn) else [body]
    stored = store.add(
        [Event(e.user_id, e.item_id, e.event, e.timestamp, e.event_id) for e in batch]
    )
    request.app.state.metrics.events.inc(stored)
    return EventsOut(received=len(batch), stored=stored)


@admin.post("/reload", response_model=ReloadOut)
async def reload(request: Request) -> ReloadOut:
    """Load the model folder again (e.g. after retraining into it) and swap it in whole."""
    slot: Slot = request.app.state.slot
    try:
        previous, fresh = await slot.reload(request.app.state.settings, request.app.state.metrics)
    except TuijianError as exc:
        detail = " ".join(str(exc).split())
        raise HTTPException(
            409, f"reload failed, still serving {slot.served.label}: {detail}"
        ) from None
    return ReloadOut(previous=previous.label, current=fresh.label)
