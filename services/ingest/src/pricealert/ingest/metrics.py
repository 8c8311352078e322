"""Prometheus metrics of the ingest worker (names prefixed pricealert_ingest_), read from its Stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pricealert.ingest.stats import Stats

COUNTERS = {
    "frames": "WebSocket frames received from the exchange.",
    "trades": "Trades accepted for publishing (after dedupe).",
    "duplicates": "Trades dropped as already seen (on another connection, or written before a shard handover).",
    "malformed": "Frames that were neither a trade nor a known message.",
    "dropped": "Trades dropped because the publish queue was full.",
    "published": "Ticks written to the ticks streams.",
    "unowned": "Trades dropped because this replica does not own their symbol's shard (any more).",
    "refused": "Trades dropped because their shard's lease had gone to another replica.",
    "connects": "WebSocket connections opened.",
    "connect_failures": "WebSocket connection attempts that failed.",
    "disconnects": "WebSocket connections lost unexpectedly.",
    "watchdog_reconnects": "Connections replaced because they went silent.",
    "rotations": "Make-before-break rotations (serverShutdown, connection age).",
    "control_messages": "SUBSCRIBE/UNSUBSCRIBE messages sent.",
    "control_errors": "Control messages the exchange answered with an error.",
}


class IngestCollector(Collector):
    """Reads the worker's counters and gauges at scrape time."""

    def __init__(self, stats: Stats, gauges: Callable[[], dict[str, float]]) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        """Yield the current values."""
        snapshot = self.stats.snapshot()
        for name, help_text in COUNTERS.items():
            yield CounterMetricFamily(f"pricealert_ingest_{name}", help_text, value=snapshot[name])
        rejected = CounterMetricFamily(
            "pricealert_ingest_trades_rejected",
            "Trades refused for their price, never published, by reason.",
            labels=["reason"],
        )
        for reason, count in self.stats.rejected.items():
            rejected.add_metric([reason], count)
        yield rejected
        for name, value in self.gauges().items():
            yield GaugeMetricFamily(f"pricealert_ingest_{name}", name.replace("_", " "), value=value)


def register_metrics(stats: Stats, gauges: Callable[[], dict[str, float]]) -> None:
    """Add the collector to the registry the worker's /metrics endpoint serves."""
    REGISTRY.register(IngestCollector(stats, gauges))
