"""Streams sharded over as many connections as the per-connection cap needs; reconnects and rotations."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable

import structlog
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from pricealert.common.tasks import cancel_and_wait
from pricealert.ingest.backoff import AttemptLimiter, Backoff, retry_after_s, sleep_or_stop
from pricealert.ingest.connection import Link, TickSink
from pricealert.ingest.frames import PriceFilters
from pricealert.ingest.settings import IngestSettings
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

STABLE_AFTER_S = 10.0  # a connection that lived this long (or carried data) resets the backoff
MAKE_BEFORE_BREAK_WAIT_S = 10.0


class Shard:
    """One slot of streams served by one live connection at a time (two briefly during a rotation)."""

    def __init__(
        self,
        index: int,
        settings: IngestSettings,
        sink: TickSink,
        stats: Stats,
        limiter: AttemptLimiter,
        *,
        filters: PriceFilters | None = None,
    ) -> None:
        self.index = index
        self.settings = settings
        self.sink = sink
        self.stats = stats
        self.filters = filters
        self.limiter = limiter
        self.streams: set[str] = set()
        self.link: Link | None = None
        self.stop = asyncio.Event()
        self.draining = False  # its streams moved to other shards; closed once they carry them
        self.backoff = Backoff(settings.reconnect_first_delay_s, settings.reconnect_max_delay_s)
        self.watchdog_s = settings.watchdog_s
        self._generation = 0
        self._link_tasks: set[asyncio.Task[None]] = set()
        self._log = log.bind(shard=index)

    def set_streams(self, streams: set[str]) -> None:
        """Assign the shard's streams; the live connection converges to them."""
        self.streams = set(streams)
        if self.link is not None:
            self.link.set_streams(self.streams)

    def subscribed(self) -> set[str]:
        """Streams currently subscribed on the shard's live connection."""
        return set(self.link.sent) if self.link is not None and not self.link.closed.is_set() else set()

    async def run(self) -> None:
        """Keep a connection up until `stop` is set."""
        while not self.stop.is_set():
            try:
                link = await self._connect()
                if link is None:
                    return
                await self._serve(link)
            except Exception:
                self._log.exception("ingest.shard.failed")
                await sleep_or_stop(self.stop, self.backoff.next_delay())
        if self.link is not None:
            await self.link.close()

    async def _connect(self) -> Link | None:
        while not self.stop.is_set():
            await self.limiter.acquire()
            self._generation += 1
            link = Link(
                f"{self.index}.{self._generation}",
                self.settings,
                self.sink,
                self.stats,
                watchdog_s=self.watchdog_s,
                filters=self.filters,
            )
            try:
                await link.open()
            except InvalidStatus as exc:
                delay = self._refused_delay(exc)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, EOFError) as exc:
                delay = self.backoff.next_delay()
                # While the exchange is known unreachable, its one error line said so (exchangelink.py).
                (self._log.debug if self.stats.exchange_unreachable_since else self._log.warning)(
                    "ingest.connect.failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=round(delay, 2)
                )
            else:
                self.stats.connects += 1
                link.set_streams(self.streams)
                task = asyncio.create_task(link.run())
                self._link_tasks.add(task)
                task.add_done_callback(self._link_tasks.discard)
                return link
            self.stats.connect_failures += 1
            if await sleep_or_stop(self.stop, delay):
                return None
        return None

    def _refused_delay(self, exc: InvalidStatus) -> float:
        status = exc.response.status_code
        delay = self.backoff.next_delay()
        wait = retry_after_s(exc.response.headers.get("Retry-After"))
        if wait is not None:
            delay = max(delay, wait)
        if status == 451:
            # Restricted location: retrying quickly cannot help, so shout and come back slowly.
            delay = max(delay, self.settings.reconnect_max_delay_s)
            self._log.error(
                "ingest.connect.geo_blocked",
                status=status,
                retry_in_s=round(delay, 1),
                hint="Binance refuses this IP's location; set BINANCE_WS_URL to an allowed endpoint",
            )
        else:
            self._log.warning("ingest.connect.refused", status=status, retry_in_s=round(delay, 2))
        return delay

    async def _serve(self, link: Link) -> None:
        self.link = link
        # Staggered so that the shards' 24 h rotations don't all happen at once.
        rotate_at = link.opened_at + self.settings.max_connection_age_s * random.uniform(0.9, 1.0)
        while True:
            stop_wait = asyncio.create_task(self.stop.wait())
            closed_wait = asyncio.create_task(link.closed.wait())
            shutdown_wait = asyncio.create_task(link.shutdown_announced.wait())
            waits = {stop_wait, closed_wait, shutdown_wait}
            await asyncio.wait(
                waits, timeout=max(0.0, rotate_at - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            for task in waits:
                task.cancel()
            if self.stop.is_set():
                return
            if link.closed.is_set():
                await self._after_close(link)
                return
            new = await self._rotate(link)
            if new is None:
                return
            link = new
            rotate_at = link.opened_at + self.settings.max_connection_age_s * random.uniform(0.9, 1.0)

    async def _rotate(self, old: Link) -> Link | None:
        """Make-before-break: open and subscribe a new connection, then close the old one."""
        self.stats.rotations += 1
        self._log.info(
            "ingest.connection.rotating", old=old.name, reason="shutdown" if old.shutdown_announced.is_set() else "age"
        )
        new = await self._connect()
        if new is None:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(new.ready.wait(), MAKE_BEFORE_BREAK_WAIT_S)
        self.link = new
        await old.close()
        return new

    async def _after_close(self, link: Link) -> None:
        self.stats.disconnects += 1
        if link.stalled:
            self.watchdog_s = min(self.watchdog_s * 2, self.settings.watchdog_max_s)
        elif link.got_data:
            self.watchdog_s = self.settings.watchdog_s
        if link.got_data or time.monotonic() - link.opened_at >= STABLE_AFTER_S:
            self.backoff.reset()
        delay = self.backoff.next_delay()
        self._log.warning(
            "ingest.connection.lost", connection=link.name, retry_in_s=round(delay, 2), watchdog_s=self.watchdog_s
        )
        self.link = None
        await sleep_or_stop(self.stop, delay)


class ShardPool:
    """The pool of shards: maps the desired symbols to `<symbol>@trade` streams and spreads them over shards."""

    def __init__(
        self, settings: IngestSettings, sink: TickSink, stats: Stats, *, filters: PriceFilters | None = None
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.stats = stats
        self.filters = filters
        self.limiter = AttemptLimiter(settings.connect_attempts_per_5min)
        self.shards: list[Shard] = []
        self._assigned: dict[str, Shard] = {}
        self._tasks: dict[Shard, asyncio.Task[None]] = {}
        self._running = False
        self._shard_count = 0
        self._background: set[asyncio.Task[None]] = set()

    def stream_of(self, symbol: str) -> str:
        """The stream name for `symbol`."""
        return f"{symbol.lower()}@{self.settings.stream_suffix}"

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Converge the subscriptions to exactly `symbols`."""
        wanted = {self.stream_of(s) for s in symbols}
        touched: set[Shard] = set()
        for stream in [s for s in self._assigned if s not in wanted]:
            shard = self._assigned.pop(stream)
            shard.streams.discard(stream)
            touched.add(shard)
        cap = self.settings.max_streams_per_connection
        for stream in sorted(wanted - self._assigned.keys()):
            shard = next((s for s in self.shards if not s.draining and len(s.streams) < cap), None) or self._new_shard()
            shard.streams.add(stream)
            self._assigned[stream] = shard
            touched.add(shard)
        for shard in touched:
            shard.set_streams(shard.streams)
        for shard in [s for s in self.shards[1:] if not s.streams and not s.draining]:
            self._retire(shard)
        self._compact()

    def _compact(self) -> None:
        """Fold the emptiest shard into the others when they have room for it (with 10 % slack)."""
        cap = self.settings.max_streams_per_connection
        live = [s for s in self.shards if not s.draining]
        while len(live) > 1 and sum(len(s.streams) for s in live) <= cap * (len(live) - 1) - cap // 10:
            source = min(live[1:], key=lambda s: len(s.streams))
            live.remove(source)
            targets: set[Shard] = set()
            for stream in sorted(source.streams):
                target = next(t for t in live if len(t.streams) < cap)
                target.streams.add(stream)
                self._assigned[stream] = target
                targets.add(target)
            for target in targets:
                target.set_streams(target.streams)
            # Make-before-break: the source keeps its subscriptions until the targets have theirs.
            source.draining = True
            log.info("ingest.shard.compacting", shard=source.index, streams=len(source.streams))
            task = asyncio.create_task(self._retire_when_carried(source, targets))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _retire_when_carried(self, source: Shard, targets: set[Shard]) -> None:
        for _ in range(int(MAKE_BEFORE_BREAK_WAIT_S / 0.05)):
            if all(t.link is not None and t.link.ready.is_set() for t in targets if t in self.shards):
                break
            await asyncio.sleep(0.05)
        if source in self.shards:
            self._retire(source)

    def subscribed(self) -> set[str]:
        """Streams subscribed on the live connections."""
        return {stream for shard in self.shards for stream in shard.subscribed()}

    def wanted(self) -> set[str]:
        """Streams the pool is converging to."""
        return set(self._assigned)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the shards connected until `stop` is set, then close every connection."""
        self._running = True
        if not self.shards:
            self._new_shard()
        for shard in self.shards:
            self._start(shard)
        await stop.wait()
        self._running = False
        for shard in self.shards:
            shard.stop.set()
        await asyncio.gather(*self._tasks.values(), cancel_and_wait(*self._background), return_exceptions=True)

    def _new_shard(self) -> Shard:
        shard = Shard(self._shard_count, self.settings, self.sink, self.stats, self.limiter, filters=self.filters)
        self._shard_count += 1
        self.shards.append(shard)
        if self._running:
            self._start(shard)
        return shard

    def _start(self, shard: Shard) -> None:
        if shard not in self._tasks:
            self._tasks[shard] = asyncio.create_task(shard.run())

    def _retire(self, shard: Shard) -> None:
        log.info("ingest.shard.retired", shard=shard.index)
        shard.stop.set()
        self.shards.remove(shard)
