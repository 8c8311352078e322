"""Prometheus metrics of the alerts service (names prefixed pricealert_), summed over its worker processes.

With several uvicorn workers each process counts on its own, and a scrape reaches one of them at random.
The supervisor therefore runs the workers in prometheus_client's multiprocess mode: each keeps its values
in files of one fresh directory, and /metrics adds up the files of every worker, the dead ones included
(counters never go backwards when a worker is replaced).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Read by prometheus_client when it is imported: it must be set before a worker starts.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram(
    "pricealert_alerts_http_request_duration_seconds",
    "Latency of alerts API requests.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ALERT_CHANGES = Counter("pricealert_alerts_changes_total", "Alert lifecycle changes.", ["change"])
DELIVERIES = Counter("pricealert_alerts_deliveries_recorded_total", "Notification results stored.", ["status"])
OUTBOX_RELAYED = Counter("pricealert_alerts_outbox_relayed_total", "Outbox events published to their stream.")
TRANSACTION_RETRIES = Counter(
    "pricealert_alerts_transaction_retries_total",
    "Write transactions Postgres aborted (deadlock, serialization) and run again.",
    ["sqlstate"],
)
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


def multiprocess() -> bool:
    """Whether this process keeps its values in the shared directory (a worker among several)."""
    return bool(os.environ.get(MULTIPROC_DIR_ENV))


def scrape_registry() -> CollectorRegistry:
    """What /metrics serves: every worker's values in multiprocess mode, this process's otherwise."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    return registry


def install_metrics(app: FastAPI) -> None:
    """Time every request by route template and serve /metrics."""
    app.add_middleware(TimingMiddleware)
    registry = scrape_registry()

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@contextmanager
def shared_by_workers() -> Iterator[Path]:
    """Multiprocess mode for the workers started inside: a fresh directory for their values, removed after.

    Fresh, because values left by an earlier run would be added to this one's.
    """
    directory = Path(tempfile.mkdtemp(prefix="pricealert-alerts-metrics-"))
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    os.environ[MULTIPROC_DIR_ENV] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            os.environ[MULTIPROC_DIR_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def worker_exiting() -> None:
    """Tell the multiprocess collector this process is gone (it drops its live gauges); no-op otherwise."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
