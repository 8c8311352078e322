"""Prometheus metrics of the alerts service (names prefixed pricealert_)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUEST_SECONDS = Histogram(
    "pricealert_alerts_http_request_duration_seconds", "Latency of alerts API requests.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ALERT_CHANGES = Counter("pricealert_alerts_changes_total", "Alert lifecycle changes.", ["change"])
DELIVERIES = Counter("pricealert_alerts_deliveries_recorded_total", "Notification results stored.", ["status"])
OUTBOX_RELAYED = Counter("pricealert_alerts_outbox_relayed_total", "Outbox events published to their stream.")
OUTBOX_FAILURES = Counter("pricealert_alerts_outbox_relay_failures_total", "Relay rounds that failed.")


def install_metrics(app: FastAPI) -> None:
    """Time every request by route template and serve /metrics."""

    @app.middleware("http")
    async def _time_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
