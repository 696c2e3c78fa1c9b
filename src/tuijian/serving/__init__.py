"""The recommendation service: FastAPI over a saved model, with an event store for freshness."""

from tuijian.serving.app import Settings, create_app
from tuijian.serving.events import Event, EventStore, SQLiteEventStore

__all__ = ["Event", "EventStore", "SQLiteEventStore", "Settings", "create_app"]
