"""The tick writer: hand-over from the receive loops to the ticks stream (dedupe, a bounded queue, batched appends)."""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from pricealert.common.events import Tick
from pricealert.common.publisher import maxlen_for
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS
from pricealert.common.scripts import lua
from pricealert.ingest.backoff import Backoff
from pricealert.ingest.frames import RecentTrades, Trade
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

DROPPED_LOG_EVERY = 10_000
SEPARATOR = "\x1f"  # ASCII unit separator: frames.py refuses symbols that contain control characters

# One EVALSHA per batch, one compact row per tick (lua/append_ticks.lua): redis-py packs a pipelined XADD of five
# fields in about 70 us of Python, this in about 5 us, which is what lets one process publish 20 000+ ticks/s.
_APPEND_TICKS = lua("pricealert.ingest", "append_ticks")


def tick_row(tick: Trade) -> str:
    """A trade as one row for the batch script: its values in Tick.FIELDS order, written as Tick.to_fields does."""
    return (
        f"{tick.symbol}{SEPARATOR}{tick.price:f}{SEPARATOR}{tick.trade_id}{SEPARATOR}"
        f"{tick.exchange_time}{SEPARATOR}{tick.received_at}"
    )


class TickPipeline:
    """Receive loops call `accept` (never blocks); `run` publishes what they accepted to the ticks stream."""

    def __init__(
        self,
        redis: Redis,
        stats: Stats,
        *,
        queue_size: int,
        batch_size: int,
        dedupe_window: int,
        stream: str = Tick.stream,
    ) -> None:
        self.redis = redis
        self.stats = stats
        self.batch_size = batch_size
        self.stream = stream
        self.queue_size = queue_size
        self._buffer: list[Trade] = []
        self._wakeup = asyncio.Event()
        self.recent = RecentTrades(dedupe_window)
        self._append_ticks = redis.register_script(_APPEND_TICKS)
        self._maxlen = str(maxlen_for(stream))

    def accept(self, tick: Trade) -> None:
        """Queue a trade unless it is a repeat; drops (and counts) when Redis has fallen far behind."""
        if not self.recent.first_time(tick.symbol, tick.trade_id):
            self.stats.duplicates += 1
            return
        if len(self._buffer) >= self.queue_size:
            self.stats.dropped += 1
            if self.stats.dropped % DROPPED_LOG_EVERY == 1:
                log.error("ingest.tick.dropped", total=self.stats.dropped, queue_size=self.queue_size)
            return
        self._buffer.append(tick)
        self._wakeup.set()
        self.stats.trades += 1

    def pending(self) -> int:
        """Trades accepted but not yet handed to Redis."""
        return len(self._buffer)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish batches until `stop` is set and the queue is empty."""
        backoff = Backoff(0.1, 5.0)
        batch: list[Trade] = []
        while True:
            if not batch:
                batch = await self._next_batch(stop)
                if not batch:
                    return
            try:
                await self.publish(batch)
            except TRANSIENT_REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("ingest.publish.failed", error=str(exc), batch=len(batch), retry_in_s=round(delay, 2))
                if stop.is_set() and backoff.attempt > 5:
                    log.error("ingest.publish.abandoned", ticks=len(batch) + self.pending())
                    return
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.stats.published += len(batch)
            batch = []

    async def publish(self, ticks: list[Trade]) -> None:
        """XADD `ticks` to the stream, in order, in one round trip."""
        await self._append_ticks(
            keys=[self.stream], args=[self._maxlen, SEPARATOR, *Tick.FIELDS, *map(tick_row, ticks)]
        )

    async def _next_batch(self, stop: asyncio.Event) -> list[Trade]:
        while not self._buffer and not stop.is_set():
            self._wakeup.clear()
            waits = {asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        return batch
