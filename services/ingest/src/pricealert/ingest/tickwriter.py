"""The tick writer: hand-over from the receive loops to the shards' ticks streams (dedupe, a bounded queue, batched
appends fenced by the shard leases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from pricealert.common import names
from pricealert.common.events import Tick
from pricealert.common.ownership import ShardOwnership
from pricealert.common.publisher import maxlen_for
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS, RedisClient
from pricealert.common.scripts import lua
from pricealert.common.shards import shard_of
from pricealert.ingest.backoff import Backoff
from pricealert.ingest.frames import RecentTrades, Trade
from pricealert.ingest.scriptcalls import ScriptCall, call_scripts
from pricealert.ingest.stats import Stats

log = structlog.get_logger()

DROPPED_LOG_EVERY = 10_000
# The last trade ids written per shard only have to outlive a handover (a lease, then a resubscription).
LAST_TRADE_TTL_MS = 60_000
SEPARATOR = "\x1f"  # ASCII unit separator: frames.py refuses symbols that contain control characters

# One EVALSHA per shard per batch, one compact row per tick (lua/append_ticks.lua): redis-py packs a pipelined XADD
# of five fields in about 70 us of Python, this in about 5 us, which is what lets one process publish 20 000+ ticks/s.
# The script checks the shard's lease (a replica that lost it writes nothing) and skips trade ids already written.
_APPEND_TICKS = lua("pricealert.ingest", "append_ticks")


def tick_row(tick: Trade) -> str:
    """A trade as one row for the batch script: its values in Tick.FIELDS order, written as Tick.to_fields does."""
    return (
        f"{tick.symbol}{SEPARATOR}{tick.price:f}{SEPARATOR}{tick.trade_id}{SEPARATOR}"
        f"{tick.exchange_time}{SEPARATOR}{tick.received_at}"
    )


class PartiallyPublished(Exception):
    """Some shards' trades were written, others' masters were unreachable: those are queued again."""


class TickPipeline:
    """Receive loops call `accept` (never blocks); `run` publishes what they accepted to the owned shards' streams.

    Trades of a shard `ownership` does not hold are dropped; when a shard's append is refused (its lease went to
    another replica), `on_lease_lost(shard)` is called and that shard's ticks of the batch are dropped.
    """

    def __init__(
        self,
        redis: RedisClient,
        stats: Stats,
        *,
        ownership: ShardOwnership,
        queue_size: int,
        batch_size: int,
        dedupe_window: int,
        on_lease_lost: Callable[[int], None] | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.redis = redis
        self.stats = stats
        self.ownership = ownership
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.on_lease_lost = on_lease_lost
        self.linger_s = linger_s
        self._buffer: list[Trade] = []
        self._wakeup = asyncio.Event()
        self.recent = RecentTrades(dedupe_window)
        self._append_ticks = redis.register_script(_APPEND_TICKS)
        marks_ttl_ms = max(LAST_TRADE_TTL_MS, 6 * ownership.lease_ms)
        head = [str(marks_ttl_ms), str(maxlen_for(Tick.stream_of(0))), *Tick.FIELDS, str(ownership.lease_ms)]
        # Encoded once: every call of every batch repeats them.
        self._head = [ownership.token.encode(), SEPARATOR.encode(), SEPARATOR.join(head).encode()]
        self._shard_of: dict[str, int] = {}
        self._keys: dict[int, list[str]] = {}
        # Each symbol's last trade since the prices were last flushed (prices.py): one dict store per trade.
        self.last_trades: dict[str, Trade] = {}

    def accept(self, tick: Trade) -> None:
        """Queue a trade unless it is a repeat; drops (and counts) when Redis has fallen far behind."""
        if not self.recent.first_time(tick.symbol, tick.trade_id):
            self.stats.duplicates += 1
            return
        self.last_trades[tick.symbol] = tick
        if len(self._buffer) >= self.queue_size:
            self.stats.dropped += 1
            if self.stats.dropped % DROPPED_LOG_EVERY == 1:
                log.error("ingest.tick.dropped", total=self.stats.dropped, queue_size=self.queue_size)
            return
        self._buffer.append(tick)
        self._wakeup.set()
        self.stats.trades += 1

    def take_last_trades(self) -> dict[str, Trade]:
        """Each symbol's last trade accepted since the previous call."""
        taken, self.last_trades = self.last_trades, {}
        return taken

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
            except PartiallyPublished as exc:
                batch = []  # the unwritten trades are back in the queue
                delay = backoff.next_delay()
                log.warning("ingest.publish.partial", error=str(exc.__cause__), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            except TRANSIENT_REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("ingest.publish.failed", error=str(exc), batch=len(batch), retry_in_s=round(delay, 2))
                if stop.is_set() and backoff.attempt > 5:
                    log.error("ingest.publish.abandoned", ticks=len(batch) + self.pending())
                    return
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            batch = []

    async def publish(self, ticks: list[Trade]) -> int:
        """XADD `ticks` to their shards' streams, in order, one script call per shard; returns how many were new.

        Safe to repeat after a failure: the script skips the trade ids it already wrote.
        """
        rows: dict[int, list[str]] = {}
        owned = self.ownership.owned
        for tick in ticks:
            shard = self._shard_of.get(tick.symbol)
            if shard is None:
                shard = self._shard_of[tick.symbol] = shard_of(tick.symbol, self.ownership.count)
            if shard in owned:
                rows.setdefault(shard, []).append(tick_row(tick))
            else:
                self.stats.unowned += 1
        shards = list(rows)
        calls: list[ScriptCall] = [
            (self._append_ticks, self._shard_keys(shard), [*self._head, *rows[shard]]) for shard in shards
        ]
        appended, unreachable = 0, None
        replies = await call_scripts(self.redis, calls)
        for shard, reply in zip(shards, replies, strict=True):
            if isinstance(reply, BaseException):
                unreachable = reply
                continue
            if int(reply) < 0:
                self.stats.refused += len(rows[shard])
                if self.on_lease_lost is not None:
                    self.on_lease_lost(shard)
                continue
            appended += int(reply)
            self.stats.duplicates += len(rows[shard]) - int(reply)
        self.stats.published += appended
        if unreachable is not None:
            # Some shards' masters are away: their trades go back in front of the queue (order kept per symbol)
            # and are tried with the next batch; the reachable shards' trades are written meanwhile.
            failed = {shard for shard, reply in zip(shards, replies, strict=True) if isinstance(reply, BaseException)}
            self._buffer[:0] = [tick for tick in ticks if self._shard_of[tick.symbol] in failed]
            raise PartiallyPublished(f"shards {sorted(failed)} unreachable") from unreachable
        return appended

    def _shard_keys(self, shard: int) -> list[str]:
        keys = self._keys.get(shard)
        if keys is None:
            owner = self.ownership.owner_key(shard)
            keys = self._keys[shard] = [owner, Tick.stream_of(shard), names.ingest_last_trade_key(shard)]
        return keys

    async def _next_batch(self, stop: asyncio.Event) -> list[Trade]:
        while not self._buffer and not stop.is_set():
            self._wakeup.clear()
            waits = {asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
        if self.linger_s > 0 and len(self._buffer) < self.batch_size // 10 and not stop.is_set():
            # A handful of trades would cost a script call per shard for them: let the batch fill a moment.
            # Under load the next batch is waiting already, large enough, and nothing lingers.
            await asyncio.sleep(self.linger_s)
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        return batch
