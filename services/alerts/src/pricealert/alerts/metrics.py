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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from pricealert.common.metrics import TimingMiddleware, request_histogram

# Read by prometheus_client when it is imported: it must be set before a worker starts.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = request_histogram("alerts")
ALERT_CHANGES = Counter("pricealert_alerts_changes_total", "Alert lifecycle changes.", ["change"])
DELIVERIES = Counter("pricealert_alerts_deliveries_recorded_total", "Notification results stored.", ["status"])
OUTBOX_RELAYED = Counter("pricealert_alerts_outbox_relayed_total", "Outbox events published to their stream.")
TRANSACTION_RETRIES = Counter(
    "pricealert_alerts_transaction_retries_total",
    "Write transactions Postgres aborted (deadlock, serialization) and run again.",
    ["sqlstate"],
)
OUTBOX_FAILURES = Counter("pricealert_alerts_outbox_relay_failures_total", "Relay rounds that failed.")
FEED_EVENTS = Counter(
    "pricealert_alerts_feed_events_total", "Entries the feed writer appended to users' feeds.", ["type"]
)
FEEDS_OPEN = Gauge("pricealert_alerts_feeds_open", "Live feeds (GET /events) open now.", multiprocess_mode="livesum")


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
    app.add_middleware(TimingMiddleware, histogram=REQUEST_SECONDS)
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
