"""Prometheus metrics every service shares: API request latency, the workers' endpoint, the consumer loop."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest, start_http_server

if TYPE_CHECKING:  # the workers import this module too, and need no web framework
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REQUEST_SECONDS: dict[str, Histogram] = {}

STREAM_LABELS = ("stream", "group")
ENTRIES_HANDLED = Counter(
    "pricealert_stream_entries_handled_total", "Stream entries whose handler succeeded.", STREAM_LABELS
)
HANDLER_FAILURES = Counter(
    "pricealert_stream_handler_failures_total",
    "Stream entries whose handler raised (each delivery counts).",
    STREAM_LABELS,
)
DEAD_LETTERED = Counter(
    "pricealert_stream_entries_dead_lettered_total", "Stream entries moved to the dead-letter stream.", STREAM_LABELS
)
RECLAIMED = Counter(
    "pricealert_stream_entries_reclaimed_total", "Entries taken over from an idle consumer (XAUTOCLAIM).", STREAM_LABELS
)
# A group's lag and pending count are one figure however many processes read it: under prometheus_client's
# multiprocess mode (the alerts API's workers) report the newest reading of the live processes, with no pid label.
GROUP_LAG = Gauge(
    "pricealert_stream_group_lag",
    "Entries not yet handed to the group (NaN when Redis cannot tell, e.g. Redis 6).",
    STREAM_LABELS,
    multiprocess_mode="livemostrecent",
)
GROUP_PENDING = Gauge(
    "pricealert_stream_group_pending",
    "Entries delivered to the group but not yet acknowledged.",
    STREAM_LABELS,
    multiprocess_mode="livemostrecent",
)


def request_histogram(service: str) -> Histogram:
    """The `pricealert_<service>_http_request_duration_seconds` histogram, created once per process."""
    if service not in _REQUEST_SECONDS:
        _REQUEST_SECONDS[service] = Histogram(
            f"pricealert_{service}_http_request_duration_seconds",
            f"Latency of {service} API requests.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
        )
    return _REQUEST_SECONDS[service]


class TimingMiddleware:
    """Observes each request's latency by method, route template and status (a plain ASGI middleware)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The template, not the path: one series per route however many ids the paths carry.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.histogram.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, *, service: str) -> None:
    """Time every request of `app` by route template and serve /metrics on it."""
    from starlette.responses import Response

    app.add_middleware(TimingMiddleware, histogram=request_histogram(service))

    @app.get("/metrics", include_in_schema=False, response_model=None)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def serve_worker_metrics(host: str, port: int) -> bool:
    """Serve /metrics on host:port from a background thread; False when port is 0 or cannot be bound."""
    if not port:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        # Metrics are not worth a crash loop (two workers of `make run` given one port, say).
        log.error("metrics.server.failed", host=host, port=port, error=str(exc))
        return False
    log.info("metrics.server.started", host=host, port=port)
    return True


class ConsumerMetrics:
    """One consumer's label children, resolved once so that the hot path only increments."""

    def __init__(self, stream: str, group: str) -> None:
        self.handled = ENTRIES_HANDLED.labels(stream, group)
        self.failures = HANDLER_FAILURES.labels(stream, group)
        self.dead_lettered = DEAD_LETTERED.labels(stream, group)
        self.reclaimed = RECLAIMED.labels(stream, group)
        self.lag = GROUP_LAG.labels(stream, group)
        self.pending = GROUP_PENDING.labels(stream, group)
