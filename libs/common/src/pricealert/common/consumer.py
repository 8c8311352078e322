"""The one consumer loop every worker uses: own pending first, then new entries, reclaim, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, overload

import structlog
from redis.exceptions import OutOfMemoryError, ResponseError

from pricealert.common import names
from pricealert.common.events import Event, MalformedEvent
from pricealert.common.health import beat
from pricealert.common.messages import (
    PERMANENT_ERRORS,
    BatchHandler,
    ConsumerOptions,
    E,
    EventHandler,
    ForeignPending,
    Message,
    PermanentError,
    Received,
    RetryLater,
    entries_of,
    id_key,
    text,
)
from pricealert.common.metrics import ConsumerMetrics
from pricealert.common.ownership import ShardLeaseLost
from pricealert.common.redelivery import Redelivery
from pricealert.common.redisconn import MAX_BLOCK_MS, TRANSIENT_REDIS_ERRORS, RedisClient, wait_for_redis
from pricealert.common.tasks import cancel_and_wait

__all__ = [
    "PERMANENT_ERRORS",
    "BatchHandler",
    "ConsumerOptions",
    "EventHandler",
    "Message",
    "PermanentError",
    "Received",
    "RetryLater",
    "StreamConsumer",
]

log = structlog.get_logger()
RETRY_LATER_S = (0.5, 5.0)  # the first and the longest pause before a batch whose handler said RetryLater runs again


class StreamConsumer:
    """Reads a stream in a consumer group and acks each entry only after its handler succeeded.

    With `event`, each entry is decoded with that event class and the handler gets Received messages (an entry
    that does not decode is dead-lettered at once); without it, the handler gets the raw Message (fast paths).
    """

    @overload
    def __init__(
        self, redis: RedisClient, options: ConsumerOptions, handler: BatchHandler, event: None = None
    ) -> None: ...

    @overload
    def __init__(
        self, redis: RedisClient, options: ConsumerOptions, handler: EventHandler[E], event: type[E]
    ) -> None: ...

    def __init__(
        self,
        redis: RedisClient,
        options: ConsumerOptions,
        handler: Callable[[Sequence[Any]], Awaitable[None]],
        event: type[Event] | None = None,
    ) -> None:
        self.redis = redis
        self.options = options
        self.handler = handler
        self.event = event
        self.dead_letter_stream = names.dead_letter_stream(options.stream)
        self._next_reclaim = 0.0
        self._next_heartbeat = 0.0
        self._next_levels = 0.0
        self._prefetched: asyncio.Task[Any] | None = None
        self._prefetched_at = 0.0
        self._stop = asyncio.Event()  # run()'s: a batch waiting out a RetryLater gives up when it is set
        self.metrics = ConsumerMetrics(options.stream, options.group)
        self._log = log.bind(stream=options.stream, group=options.group, consumer=options.consumer)
        self.redelivery = Redelivery(redis, options, self.metrics, self._log)

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists already."""
        try:
            await self.redis.xgroup_create(
                self.options.stream, self.options.group, id=self.options.group_start_id, mkstream=True
            )
            self._log.info("stream.group.created")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished before returning."""
        self._stop = stop
        await wait_for_redis(self.redis, stop=stop)
        while not stop.is_set():
            try:
                await self.ensure_group()
                if self.options.exclusive:
                    await self.redelivery.take_all_pending()
                await self._drain_own_pending(stop)
                while not stop.is_set():
                    await self.poll_once()
            except ShardLeaseLost:
                await self.close()
                self._log.warning("stream.consumer.lease_lost")
                raise
            except TRANSIENT_REDIS_ERRORS as exc:  # first: a cluster's CLUSTERDOWN or TRYAGAIN is a ResponseError too
                await self.close()
                self._log.warning("stream.read.failed", error=str(exc))
                await asyncio.sleep(0.2)
                await wait_for_redis(self.redis, stop=stop)
            except ResponseError as exc:
                await self.close()
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                # The stream or group vanished (a Redis restart without persistence; Redis 7 answers a read that
                # was blocked on it with UNBLOCKED): recreate it.
                self._log.warning("stream.group.missing")
        await self._finish_prefetched()
        self._log.info("stream.consumer.stopped")

    async def close(self) -> None:
        """Drop a prefetched read; entries it took stay pending here, read again by the next drain or a reclaim."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            await cancel_and_wait(prefetched)

    async def _finish_prefetched(self) -> None:
        """On a clean stop, handle the batch read ahead too (it comes within block_ms): none is left pending."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return
        try:
            entries = entries_of(await prefetched)
            if entries:
                await self._process([Message(i, f) for i, f in entries])
        except (ResponseError, *TRANSIENT_REDIS_ERRORS) as exc:
            # Still pending here: the next start's drain, or another replica's reclaim, handles it.
            self._log.warning("stream.prefetch.unfinished", error=str(exc))

    async def poll_once(self) -> int:
        """One round: reclaim idle entries when due, then read new ones; returns how many were handled."""
        handled = 0
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self.options.reclaim_every_s
            handled += await self._reclaim_idle()
        handled += await self._read_new()
        await self._heartbeat()
        if now >= self._next_levels:
            self._next_levels = now + self.options.levels_every_s
            await self.report_levels()
        return handled

    async def report_levels(self) -> None:
        """Set the group's lag and pending gauges from XINFO GROUPS (one round trip, two on Redis < 7)."""
        try:
            groups = await self.redis.xinfo_groups(self.options.stream)
        except ResponseError:  # the stream vanished; the next read recreates it
            return
        group = next((g for g in groups if text(g["name"]) == self.options.group), None)
        if group is None:
            return
        self.metrics.pending.set(int(group["pending"]))
        lag = group.get("lag")
        if lag is None:
            # Redis 6 has no lag (Redis 7 neither after some deletions): only "caught up" is certain.
            last = await self.redis.xrevrange(self.options.stream, count=1)
            caught_up = not last or id_key(last[0][0]) <= id_key(group["last-delivered-id"])
            lag = 0 if caught_up else math.nan
        self.metrics.lag.set(lag)

    async def _drain_own_pending(self, stop: asyncio.Event) -> int:
        last_id, handled = "0", 0
        while not stop.is_set():
            reply = await self.redis.xreadgroup(
                self.options.group,
                self.options.consumer,
                {self.options.stream: last_id},
                count=self.options.batch_size,
            )
            entries = entries_of(reply)
            if not entries:
                break
            self._log.info("stream.pending.resumed", count=len(entries))
            try:
                await self._process(await self.redelivery.with_delivery_counts(entries))
            except ForeignPending:
                await self.redelivery.take_all_pending()
                last_id = "0"  # the taken entries may come before these: from the start of the pending list
                continue
            last_id = entries[-1][0]
            handled += len(entries)
        return handled

    async def _read_new(self) -> int:
        prefetched = self._prefetched
        if prefetched is not None and time.monotonic() - self._prefetched_at > self.options.reclaim_idle_ms / 2000:
            # Read ahead before a slow batch: a reclaim may have taken (and handled) its entries since. Handle
            # what is still this consumer's instead, with its delivery counts.
            await self.close()
            return await self._drain_own_pending(asyncio.Event())
        self._prefetched = None
        reply = await (prefetched if prefetched is not None else self._xreadgroup_new())
        entries = entries_of(reply)
        checks = entries and self.options.exclusive and not self.options.handler_checks_pending
        if checks and await self.redelivery.others_pending():
            return await self._take_over_foreign()
        if entries:
            if self.options.prefetch:
                self._prefetched_at = time.monotonic()
                self._prefetched = asyncio.ensure_future(self._xreadgroup_new())
                # A read whose consumer is dropped unawaited (poll_once's callers) must not log "never retrieved".
                self._prefetched.add_done_callback(_retrieve)
            try:
                await self._process([Message(i, f) for i, f in entries])
            except ForeignPending:
                return await self._take_over_foreign()
        return len(entries)

    async def _take_over_foreign(self) -> int:
        """A former owner read entries after this one took the shard over (a read in flight when its lease went):
        they come before what this one read since. Take them all and handle this consumer's pending, in order."""
        await self.close()
        await self.redelivery.take_all_pending()
        return await self._drain_own_pending(asyncio.Event())

    async def _xreadgroup_new(self) -> Any:
        return await self.redis.xreadgroup(
            self.options.group,
            self.options.consumer,
            {self.options.stream: ">"},
            count=self.options.batch_size,
            block=min(self.options.block_ms, MAX_BLOCK_MS),
        )

    async def _reclaim_idle(self) -> int:
        claimed = await self.redelivery.reclaim()
        if claimed:
            await self._process(claimed)
        return len(claimed)

    async def _process(self, messages: list[Message]) -> None:
        live: list[Message] = []
        for message in messages:
            if not message.raw:
                self._log.error("stream.message.lost", id=message.id, reason="payload trimmed")
                await self._ack([message])
            elif message.deliveries > self.options.max_deliveries:
                reason = f"delivered {message.deliveries} times without success"
                await self.redelivery.dead_letter(message, reason)
            else:
                live.append(message)
        items: Sequence[Any] = live
        if self.event is not None:
            live, items = await self._decoded(self.event, live)
        if not live:
            return
        await self._handle(live, items)

    async def _handle(self, live: list[Message], items: Sequence[Any]) -> None:
        """Hand the batch to the handler; on failure, one entry at a time, so only the failing one is retried."""
        try:
            if not await self._until_done(items):
                return
        except (ShardLeaseLost, ForeignPending):
            raise
        except Exception as exc:
            if len(live) == 1:
                await self.redelivery.failed(live[0], exc)
                return
            # Isolate the entry that failed: retry the batch one entry at a time.
            for message, item in zip(live, items, strict=True):
                try:
                    if not await self._until_done([item]):
                        return
                except (ShardLeaseLost, ForeignPending):
                    raise
                except Exception as single_exc:
                    await self.redelivery.failed(message, single_exc)
                else:
                    await self._ack_handled([message])
                    self.metrics.handled.inc()
            return
        await self._ack_handled(live)
        self.metrics.handled.inc(len(live))

    async def _until_done(self, items: Sequence[Any]) -> bool:
        """Run the handler, again after a growing pause while it raises RetryLater; False: stopped meanwhile (the
        entries stay pending here, for the next start's drain or a reclaim)."""
        delay = RETRY_LATER_S[0]
        while True:
            try:
                await self.handler(items)
                return True
            # Redis refusing writes (maxmemory, noeviction) is an outage like a database away: each re-read of the
            # batch meanwhile would count a delivery toward the dead letters.
            except (RetryLater, OutOfMemoryError) as exc:
                if self._stop.is_set():
                    return False
                self._log.warning("stream.handler.retry_later", count=len(items), error=str(exc), retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, RETRY_LATER_S[1])

    async def _decoded(self, event: type[Event], messages: list[Message]) -> tuple[list[Message], list[Received[Any]]]:
        """The messages whose entry decodes, with their typed form; the others go to the dead letters at once."""
        kept: list[Message] = []
        received: list[Received[Any]] = []
        for message in messages:
            try:
                decoded = event.from_fields(message.raw)
            except MalformedEvent as exc:
                await self.redelivery.failed(message, exc)
                continue
            kept.append(message)
            received.append(Received(message.id, decoded, message.raw, message.deliveries))
        return kept, received

    async def _ack_handled(self, messages: Sequence[Message]) -> None:
        if not self.options.handler_acks:
            await self._ack(messages)

    async def _ack(self, messages: Sequence[Message]) -> None:
        await self.redis.xack(self.options.stream, self.options.group, *[m.id for m in messages])

    async def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + min(5.0, self.options.health_ttl_s / 3)
        await beat(self.redis, self.options.service, self.options.consumer, self.options.health_ttl_s)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # still raised to whoever awaits the task
