"""Prometheus metrics of one app (its own registry, so several apps live in one process) and the
ASGI middleware that counts requests, times them per route and caps request bodies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    """Request counts and latencies per route, events stored, and the model served."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "tuijian_requests", "HTTP requests", ("method", "route", "status"), registry=r
        )
        self.latency = Histogram(
            "tuijian_request_seconds",
            "Time to answer a request",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter("tuijian_events_stored", "Events newly stored", registry=r)
        self.model = Gauge(
            "tuijian_model_info",
            "The model served (1 for the current one)",
            ("model", "version"),
            registry=r,
        )

    def serving(self, model: str, version: str) -> None:
        """Record that `model@version` now answers (the previous one drops to 0)."""
        for labels in list(self.model._metrics):
            self.model.labels(*labels).set(0)
        self.model.labels(model, version).set(1)


class ObservedLimited:
    """ASGI middleware: 413 for bodies over `max_body` bytes, then counts and times the request
    under its route template (`/v1/users/{user_id}/recommendations`, not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        too_big = declared is not None and (not declared.isdigit() or int(declared) > self.max_body)
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen, too_big
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                too_big = True
                raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if too_big:
                raise BodyTooLarge()
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            status = 413
            await _reply(send, 413, f"request body over {self.max_body} bytes")
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(scope["method"], name).observe(time.perf_counter() - start)


class BodyTooLarge(HTTPException):
    """A request body went past the service's limit (an HTTP error, so FastAPI's body reading
    passes it on as a 413 rather than a parse error)."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _reply(send: Send, status: int, detail: str) -> None:
    body = ('{"detail": "' + detail + '"}').encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
