"""The ingest worker: alert events and triggers in, subscriptions kept, trades out as ticks, catalog published.

Consumes (group ingest): pricealert:alert-events (AlertEvent) and pricealert:triggers (Trigger), both handled by
subscriptions.SymbolRegistry. Produces: pricealert:ticks (the exchange's trades, tickwriter.TickPipeline) and
pricealert:symbol-catalog (CatalogSnapshot, catalog.CatalogPublisher).
"""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, StreamConsumer
from pricealert.common.events import AlertEvent, Trigger
from pricealert.common.redisconn import connect, wait_for_redis
from pricealert.common.runner import gather_until_stopped
from pricealert.ingest.catalog import CatalogPublisher
from pricealert.ingest.frames import PriceFilters
from pricealert.ingest.metrics import register_metrics
from pricealert.ingest.settings import IngestSettings, get_settings
from pricealert.ingest.shards import ShardPool
from pricealert.ingest.stats import Stats
from pricealert.ingest.subscriptions import SymbolRegistry, SymbolSync
from pricealert.ingest.tickwriter import TickPipeline

log = structlog.get_logger()

SERVICE = "ingest"


class IngestService:
    """Every part of the worker, wired together; `run(stop)` runs them until `stop` is set."""

    def __init__(self, settings: IngestSettings | None = None, redis: Redis | None = None) -> None:
        self.settings = settings or get_settings()
        self._own_redis = redis is None
        self.redis = redis if redis is not None else connect(self.settings.redis_url)
        self.stats = Stats()
        s = self.settings
        self.pipeline = TickPipeline(
            self.redis,
            self.stats,
            queue_size=s.queue_size,
            batch_size=s.publish_batch_size,
            dedupe_window=s.dedupe_window,
        )
        self.filters = PriceFilters()
        self.shard_pool = ShardPool(s, self.pipeline.accept, self.stats, filters=self.filters)
        self.registry = SymbolRegistry(self.redis, gone_ttl_s=s.gone_ttl_s)
        self.sync = SymbolSync(self.registry, self.shard_pool.set_symbols, s.resync_s)
        self.registry.on_change = self.sync.notify
        self.catalog = CatalogPublisher(s, self.redis, filters=self.filters)
        self.alert_events = StreamConsumer(
            self.redis, self._options(names.ALERT_EVENTS), self.registry.handle_alert_events, event=AlertEvent
        )
        self.triggers = StreamConsumer(
            self.redis, self._options(names.TRIGGERS), self.registry.handle_triggers, event=Trigger
        )

    def _options(self, stream: str) -> ConsumerOptions:
        return ConsumerOptions(
            stream=stream,
            group=names.GROUP_INGEST,
            consumer=self.settings.consumer_name,
            service=SERVICE,
            batch_size=500,
            reclaim_idle_ms=30_000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; connections close first, then the queued ticks are flushed."""
        log.info("ingest.starting", ws_url=self.settings.ws_stream_url, rest_url=self.settings.binance_rest_url)
        await wait_for_redis(self.redis, stop=stop)
        connections_closed = asyncio.Event()

        async def connections() -> None:
            try:
                await self.shard_pool.run(stop)
            finally:
                connections_closed.set()

        loops = [
            self.alert_events.run(stop),
            self.triggers.run(stop),
            self.sync.run(stop),
            connections(),
            self.pipeline.run(connections_closed),
            self._report(stop),
        ]
        if self.settings.catalog_enabled:
            loops.append(self.catalog.run(stop))
        try:
            await gather_until_stopped(stop, *loops)
        finally:
            log.info("ingest.stopped", **self.stats.snapshot())
            if self._own_redis:
                await self.redis.aclose()

    async def _report(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiter = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter}, timeout=self.settings.stats_interval_s)
            waiter.cancel()
            log.info("ingest.stats", **self.gauges(), **self.stats.snapshot())

    def gauges(self) -> dict[str, float]:
        """Current levels, for metrics and the periodic stats line."""
        return {
            "subscribed_streams": len(self.shard_pool.subscribed()),
            "connections": len(self.shard_pool.shards),
            "queued_ticks": self.pipeline.pending(),
        }


async def run(redis: Redis, settings: IngestSettings, stop: asyncio.Event) -> None:
    """The process's worker (run_worker_process serves its metrics when METRICS_PORT is set)."""
    service = IngestService(settings, redis)
    register_metrics(service.stats, service.gauges)
    await service.run(stop)
