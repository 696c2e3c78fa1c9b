"""The SQLite event store: WAL, idempotent by event id, literal ids, durable across a kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import polars as pl

from tests.serving.conftest import KEY, free_port, start_server
from tuijian.serving.events import Event, SQLiteEventStore, export_events


def ev(n: int, user: str = "u1", item: str = "i1") -> Event:
    return Event(user, item, "view", 100.0 + n, f"e{n}")


def test_store_is_wal_idempotent_and_ordered(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    assert store.add([ev(2), ev(1), ev(3, user="u2")]) == 3
    assert store.add([ev(1), ev(4)]) == 1  # e1 again: ignored
    assert [e.event_id for e in store.user_events("u1")] == ["e1", "e2", "e4"]
    assert store.count() == 4
    store.close()
    mode = sqlite3.connect(tmp_path / "events.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    reopened = SQLiteEventStore(tmp_path / "events.db")
    assert reopened.count() == 4 and reopened.user_events("u2") == [ev(3, user="u2")]


def test_ids_are_stored_literally(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    evil = "x'); DROP TABLE events; --"
    store.add([Event(evil, evil, "view", 1.0, evil)])
    assert store.user_events(evil)[0].item_id == evil and store.count() == 1


def test_export_writes_every_event(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    store.add([ev(n, user=f"u{n % 3}", item=f"i{n % 5}") for n in range(20)])
    frame = pl.read_csv(export_events(store, tmp_path / "out"))
    assert frame.columns == ["user_id", "item_id", "timestamp", "event"]
    assert frame.height == 20 and frame["timestamp"].to_list() == [100.0 + n for n in range(20)]


def test_kill_9_keeps_every_acknowledged_event_exactly_once(shop: Path, tmp_path: Path) -> None:
    """A client posts batches while the server is killed with SIGKILL; after a restart every
    batch it acknowledged is stored, none twice, and resending them all stores nothing new."""
    db, port = tmp_path / "events.db", free_port()
    proc = start_server(shop / "models" / "itemknn", db, port)
    acked: list[str] = []
    sent: list[list[dict]] = []
    stop = threading.Event()

    def post() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            n = 0
            while not stop.is_set():
                batch = [
                    {"user_id": f"u{n % 7:03d}", "item_id": f"i{n % 150:03d}", "event": "view",
                     "timestamp": 1.8e9 + n + j, "event_id": f"c{n}-{j}"}
                    for j in range(5)
                ]  # fmt: skip
                n += 1
                sent.append(batch)
                try:
                    response = client.post(
                        "/v1/events", json={"events": batch}, headers={"X-API-Key": KEY}
                    )
                except httpx.HTTPError:
                    return
                assert response.status_code == 200, response.text
                acked.extend(e["event_id"] for e in batch)

    writer = threading.Thread(target=post)
    writer.start()
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    writer.join()
    assert len(acked) >= 50  # the client got well going before the kill

    proc = start_server(shop / "models" / "itemknn", db, port)
    try:
        rows = sqlite3.connect(db).execute("SELECT event_id FROM events").fetchall()
        stored = [r[0] for r in rows]
        assert len(stored) == len(set(stored))  # none twice
        assert set(acked) <= set(stored)  # every acknowledged one
        resent = [e for batch in sent for e in batch]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for start in range(0, len(resent), 500):
                body = {"events": resent[start : start + 500]}
                reply = client.post("/v1/events", json=body, headers={"X-API-Key": KEY}).json()
                assert reply["received"] == len(body["events"])
        total = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert total == len({e["event_id"] for e in resent})
    finally:
        proc.kill()
        proc.wait()
