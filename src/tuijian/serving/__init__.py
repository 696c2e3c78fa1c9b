"""The recommendation service: FastAPI over a saved model, with an event store for freshness."""

from tuijian.serving.app import Settings, create_app
from tuijian.serving.engine import Served
from tuijian.serving.events import Event, EventStore, SQLiteEventStore, export_events

__all__ = [
    "Event",
    "EventStore",
    "SQLiteEventStore",
    "Served",
    "Settings",
    "create_app",
    "export_events",
]
