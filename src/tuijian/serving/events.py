"""Events the service receives: an `EventStore` interface and its embedded SQLite default."""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Event:
    """One user action on an item; `event_id` (from the client) makes a resend harmless."""

    user_id: str
    item_id: str
    event: str
    timestamp: float
    event_id: str


class EventStore(ABC):
    """Where events live between retrainings; every write is durable before it returns."""

    @abstractmethod
    def add(self, events: Sequence[Event]) -> int:
        """Store `events` (ignoring event ids already stored); return how many were new."""

    @abstractmethod
    def user_events(self, user_id: str) -> list[Event]:
        """The stored events of one user, oldest first."""

    @abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abstractmethod
    def all_events(self) -> list[Event]:
        """Every stored event, oldest first (what `tuijian events export` writes)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources."""


class SQLiteEventStore(EventStore):
    """Events in one SQLite file in WAL mode; parameterized SQL only, one commit per `add`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Several workers may share the file: wait for a writer rather than fail.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events ("
            " event_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, item_id TEXT NOT NULL,"
            " event TEXT NOT NULL, timestamp REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS events_user ON events (user_id, timestamp)")
        self._db.commit()

    def add(self, events: Sequence[Event]) -> int:
        rows = [(e.event_id, e.user_id, e.item_id, e.event, e.timestamp) for e in events]
        with self._lock:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO events (event_id, user_id, item_id, event, timestamp)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._db.commit()
            return self._db.total_changes - before

    def user_events(self, user_id: str) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id, item_id, event, timestamp, event_id FROM events"
                " WHERE user_id = ? ORDER BY timestamp, rowid",
                (user_id,),
            ).fetchall()
        return [Event(*row) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def all_events(self) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id, item_id, event, timestamp, event_id FROM events"
                " ORDER BY timestamp, rowid"
            ).fetchall()
        return [Event(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


EXPORT_FILE = "events.csv"
"""The file `export_events` writes: `tuijian data prepare csv DIR/events.csv` reads it."""


def export_events(store: EventStore, out: str | Path) -> Path:
    """Write every stored event to `out/events.csv` (user_id, item_id, timestamp, event)."""
    import polars as pl

    from tuijian.data.columns import Columns as C

    events = store.all_events()
    frame = pl.DataFrame(
        {
            C.user_id: [e.user_id for e in events],
            C.item_id: [e.item_id for e in events],
            C.timestamp: [e.timestamp for e in events],
            C.event: [e.event for e in events],
        },
        schema={C.user_id: pl.Utf8, C.item_id: pl.Utf8, C.timestamp: pl.Float64, C.event: pl.Utf8},
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EXPORT_FILE
    frame.write_csv(path)
    return path
