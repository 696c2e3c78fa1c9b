"""`tuijian serve MODEL_DIR` (the HTTP service) and `tuijian events export` (stored events back
to data that `tuijian data prepare` reads)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from tuijian.cli.common import TidyCommand, TidyGroup, console
from tuijian.errors import DataError
from tuijian.models.io import read_meta

EVENTS_FILE = "events.db"
"""The default event store: beside the model folder, so retrained versions share it."""


def serve_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder (tuijian train / quickstart).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    events_db: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH", help="SQLite event store.", show_default="MODEL_DIR/../events.db"
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TUIJIAN_API_KEY",
            show_envvar=True,
            help="Key that POST /v1/events and /admin require in X-API-Key (none: refused).",
        ),
    ] = None,
    ann_min_items: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="TUIJIAN_ANN_MIN_ITEMS",
            help="Catalogue size from which factor models answer from a faiss index.",
        ),
    ] = 100_000,
) -> None:
    """Serve recommendations, similar items, explanations and events over HTTP (docs at /docs)."""
    import uvicorn

    from tuijian.serving.app import (
        ANN_ENV,
        API_KEY_ENV,
        EVENTS_DB_ENV,
        MODEL_DIR_ENV,
        Settings,
        create_app,
    )

    read_meta(model_dir)  # a folder that is not a model fails here, in one line
    db = events_db or model_dir.resolve().parent / EVENTS_FILE
    console.print(f"serving {model_dir} on http://{host}:{port} (events in {db}; docs at /docs)")
    if workers == 1:
        app = create_app(Settings(model_dir, db, api_key, ann_min_items=ann_min_items))
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    os.environ[MODEL_DIR_ENV] = str(model_dir.resolve())
    os.environ[EVENTS_DB_ENV] = str(db)
    os.environ[ANN_ENV] = str(ann_min_items)
    if api_key is not None:
        os.environ[API_KEY_ENV] = api_key
    uvicorn.run(
        "tuijian.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


events_app = typer.Typer(
    cls=TidyGroup, help="Events stored by `tuijian serve`.", no_args_is_help=True
)


@events_app.command("export", cls=TidyCommand)
def export_command(
    db: Annotated[Path, typer.Option(metavar="PATH", help="The SQLite event store.")],
    out: Annotated[Path, typer.Option(metavar="DIR", help="Folder for events.csv.")],
) -> None:
    """Write the stored events to DIR/events.csv, for `tuijian data prepare csv`."""
    from tuijian.serving.events import SQLiteEventStore, export_events

    if not db.is_file():
        raise DataError(f"{db}: no such event store")
    try:
        store = SQLiteEventStore(db)
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{db}: not an event store ({exc})") from None
    try:
        path = export_events(store, out)
        n = store.count()
    finally:
        store.close()
    console.print(f"wrote {n:,} events to {path}")
    console.print(f"next: tuijian data prepare csv {path} --out DATA_DIR")
