"""Prometheus metrics of the alerts service (names prefixed pricealert_)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_SECONDS = Histogram(
    "pricealert_alerts_http_request_duration_seconds", "Latency of alerts API requests.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ALERT_CHANGES = Counter("pricealert_alerts_changes_total", "Alert lifecycle changes.", ["change"])
DELIVERIES = Counter("pricealert_alerts_deliveries_recorded_total", "Notification results stored.", ["status"])
OUTBOX_RELAYED = Counter("pricealert_alerts_outbox_relayed_total", "Outbox events published to their stream.")
OUTBOX_FAILURES = Counter("pricealert_alerts_outbox_relay_failures_total", "Relay rounds that failed.")


class TimingMiddleware:
    """Observes each request's latency by method, route template and status (a plain ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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

        await self.app(scope, receive, send_and_note)
        route = getattr(scope.get("route"), "path", "unmatched")
        REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    """Time every request by route template and serve /metrics."""
    app.add_middleware(TimingMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
