"""The ingest worker: shards owned, alert events and triggers in, subscriptions kept, trades out, catalog published.

Consumes: pricealert:{s<k>}:alert-events (AlertEvent) and pricealert:{s<k>}:triggers (Trigger), group ingest,
          exclusively, for each shard k this replica owns (common/ownership.py), into subscriptions.SymbolRegistry.
Produces: pricealert:{s<k>}:ticks (Tick): the trades of the owned shards' symbols (shards.ShardPool subscribes their
          union), written by tickwriter.TickPipeline, fenced by the lease; pricealert:symbol-catalog
          (CatalogSnapshot, catalog.CatalogPublisher) from every replica: it fetches the exchange's symbols anyway
          for its price checks, and the snapshots are whole.
Writes:   the current-price hash the API shows (prices.PricePublisher: the exchange's all-symbols ticker every
          INGEST_PRICE_SNAPSHOT_S, each subscribed symbol's last trade about every second) and the exchange link's
          state hash (exchangelink.LinkReporter: each ticker poll's outcome, expiring unless re-checked).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from pricealert.common import names
from pricealert.common.consumer import ConsumerOptions, StreamConsumer
from pricealert.common.events import AlertEvent, Trigger
from pricealert.common.health import keep_beating
from pricealert.common.ownership import ShardLeaseLost, ShardOwnership
from pricealert.common.redisconn import RedisClient, connect_to, wait_for_redis
from pricealert.common.runner import gather_until_stopped
from pricealert.ingest.catalog import CatalogPublisher
from pricealert.ingest.frames import PriceFilters
from pricealert.ingest.metrics import register_metrics
from pricealert.ingest.prices import PricePublisher
from pricealert.ingest.settings import IngestSettings, get_settings
from pricealert.ingest.shards import ShardPool
from pricealert.ingest.stats import Stats
from pricealert.ingest.subscriptions import SymbolRegistry, SymbolSync
from pricealert.ingest.tickwriter import TickPipeline

log = structlog.get_logger()

SERVICE = "ingest"


@dataclass
class OwnedShard:
    """A shard this replica works: its stop (the lease's) and whether a fenced append found the lease gone."""

    stop: asyncio.Event
    lost: bool = False
    consumers: list[StreamConsumer] = field(default_factory=list)


class IngestService:
    """Every part of the worker, wired together; `run(stop)` runs them until `stop` is set."""

    def __init__(self, settings: IngestSettings | None = None, redis: RedisClient | None = None) -> None:
        self.settings = settings or get_settings()
        s = self.settings
        self._own_redis = redis is None
        self.redis = redis if redis is not None else connect_to(s.redis_url, s.redis_cluster_url)
        self.stats = Stats()
        self.ownership = ShardOwnership(
            self.redis,
            service=SERVICE,
            consumer=s.consumer_name,
            count=s.shards,
            lease_ms=s.shard_lease_ms,
            interval_s=s.shard_interval_s,
        )
        self.owned: dict[int, OwnedShard] = {}
        self.pipeline = TickPipeline(
            self.redis,
            self.stats,
            ownership=self.ownership,
            queue_size=s.queue_size,
            batch_size=s.publish_batch_size,
            dedupe_window=s.dedupe_window,
            on_lease_lost=self._lease_lost,
            linger_s=s.publish_linger_ms / 1000,
        )
        self.filters = PriceFilters()
        self.shard_pool = ShardPool(s, self.pipeline.accept, self.stats, filters=self.filters)
        self.registry = SymbolRegistry(self.redis, shards=s.shards, gone_ttl_s=s.gone_ttl_s)
        self.sync = SymbolSync(self.registry, self.shard_pool.set_symbols, s.resync_s, owned=self.working_shards)
        self.registry.on_change = self.sync.notify
        self.catalog = CatalogPublisher(s, self.redis, filters=self.filters, stats=self.stats)
        self.prices = PricePublisher(
            s, self.redis, self.stats, take_trades=self.pipeline.take_last_trades, filters=self.filters
        )

    def working_shards(self) -> set[int]:
        """The shards whose symbols this replica subscribes: owned, and no append refused."""
        return {shard for shard, owned in self.owned.items() if not owned.lost}

    def consumers(self, shard: int) -> list[StreamConsumer]:
        """The consumers of an owned shard's streams: its alert events and its triggers, both into the registry."""
        return [
            StreamConsumer(
                self.redis,
                self._options(AlertEvent.stream_of(shard)),
                self.registry.handle_alert_events,
                event=AlertEvent,
            ),
            StreamConsumer(
                self.redis, self._options(Trigger.stream_of(shard)), self.registry.handle_triggers, event=Trigger
            ),
        ]

    def _options(self, stream: str) -> ConsumerOptions:
        return ConsumerOptions(
            stream=stream,
            group=names.GROUP_INGEST,
            consumer=self.settings.consumer_name,
            service=SERVICE,
            batch_size=500,
            reclaim_idle_ms=30_000,
            exclusive=True,
        )

    async def work_shard(self, shard: int, stop: asyncio.Event) -> None:
        """Keep `shard`'s registry and subscribe its symbols until `stop` (its lease ends) or an append is refused."""
        owned = self.owned[shard] = OwnedShard(stop, consumers=self.consumers(shard))
        self.sync.notify()
        try:
            await gather_until_stopped(stop, *(consumer.run(stop) for consumer in owned.consumers))
        finally:
            if self.owned.get(shard) is owned:
                del self.owned[shard]
            self.sync.notify()
        if owned.lost:
            raise ShardLeaseLost(f"shard {shard}: another replica holds its lease")

    def _lease_lost(self, shard: int) -> None:
        """A fenced append of `shard` was refused: stop subscribing its symbols and end its work."""
        owned = self.owned.get(shard)
        if owned is not None and not owned.lost:
            log.warning("shard.lease.refused", shard=shard, hint="another replica holds the lease: shard given up")
            owned.lost = True
            owned.stop.set()
            self.sync.notify()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; connections close first, the queued ticks are flushed, then leases are given up."""
        log.info("ingest.starting", ws_url=self.settings.ws_stream_url, rest_url=self.settings.binance_rest_url)
        await wait_for_redis(self.redis, stop=stop)
        connections_closed, flushed = asyncio.Event(), asyncio.Event()

        async def connections() -> None:
            try:
                await self.shard_pool.run(stop)
            finally:
                connections_closed.set()

        async def ticks() -> None:
            try:
                await self.pipeline.run(connections_closed)
            finally:
                flushed.set()

        loops = [
            # The leases outlive the flush: the queued ticks are appended under them.
            self.ownership.run(flushed, self.work_shard, take_until=stop),
            self.sync.run(stop),
            connections(),
            ticks(),
            keep_beating(self.redis, SERVICE, self.settings.consumer_name, stop),
            self._report(stop),
        ]
        if self.settings.catalog_enabled:
            loops.append(self.catalog.run(stop))
        # The catalog is fetched first: the ticker's TRADING symbols are then known even where symbolStatus is not.
        loops.append(self.prices.run(stop, after=self.catalog.tried if self.settings.catalog_enabled else None))
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
            "owned_shards": len(self.working_shards()),
            "subscribed_streams": len(self.shard_pool.subscribed()),
            "connections": len(self.shard_pool.shards),
            "queued_ticks": self.pipeline.pending(),
        }


async def run(redis: RedisClient, settings: IngestSettings, stop: asyncio.Event) -> None:
    """The process's worker (run_worker_process serves its metrics when METRICS_PORT is set)."""
    service = IngestService(settings, redis)
    register_metrics(service.stats, service.gauges)
    await service.run(stop)
