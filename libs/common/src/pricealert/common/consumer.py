"""The one consumer loop every worker uses: own pending first, then new entries, reclaim, dead letters."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pricealert.common import names
from pricealert.common.deadletter import MAX_REASON_CHARS, add_dead_letter, dead_letter_fields, encode_text, safe_text
from pricealert.common.events import Fields, MalformedEvent, RawFields, decode_fields, now_ms
from pricealert.common.metrics import ConsumerMetrics
from pricealert.common.redisconn import MAX_BLOCK_MS, TRANSIENT_REDIS_ERRORS, wait_for_redis

log = structlog.get_logger()


class PermanentError(Exception):
    """A handler failure that no retry can fix: the entry goes to the dead letters at once."""


PERMANENT_ERRORS: tuple[type[Exception], ...] = (PermanentError, MalformedEvent)


class Message(NamedTuple):
    """One stream entry handed to a handler; `raw` is what redis-py returned, `fields` its str form."""

    id: str
    raw: RawFields
    deliveries: int = 1

    @property
    def fields(self) -> Fields:
        """The entry's fields as str (decoded on each access: read it once per handler)."""
        return decode_fields(self.raw)


BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerOptions:
    """Where a consumer reads and how patient it is with failures."""

    stream: str
    group: str
    consumer: str
    service: str
    batch_size: int = 200
    block_ms: int = 1_000
    # Must exceed the slowest legitimate handler, or a healthy replica's entry is handled twice.
    reclaim_idle_ms: int = 30_000
    reclaim_every_s: float = 1.0
    max_deliveries: int = 5
    group_start_id: str = "0"
    health_ttl_s: int = 30
    # Lag and pending gauges cost one XINFO GROUPS: read at most this often, never per batch.
    levels_every_s: float = 5.0
    # The handler acknowledges its entries itself, atomically with its effect (the loop then does not).
    handler_acks: bool = False
    # Read the next batch while the handler runs, so that the client parses it while Redis works on this one.
    # The prefetched entries wait in this consumer's pending list meanwhile: only for handlers that are quick
    # next to reclaim_idle_ms and idempotent (the evaluator's script).
    prefetch: bool = False


class StreamConsumer:
    """Reads a stream in a consumer group and acks each entry only after its handler succeeded."""

    def __init__(self, redis: Redis, options: ConsumerOptions, handler: BatchHandler) -> None:
        self.redis = redis
        self.options = options
        self.handler = handler
        self.dead_letter_stream = names.dead_letter_stream(options.stream)
        self._claim_cursor = "0-0"
        self._next_reclaim = 0.0
        self._next_heartbeat = 0.0
        self._next_levels = 0.0
        self._prefetched: asyncio.Task[Any] | None = None
        self._prefetched_at = 0.0
        self.metrics = ConsumerMetrics(options.stream, options.group)
        self._log = log.bind(stream=options.stream, group=options.group, consumer=options.consumer)

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
        await wait_for_redis(self.redis, stop=stop)
        while not stop.is_set():
            try:
                await self.ensure_group()
                await self._drain_own_pending(stop)
                while not stop.is_set():
                    await self.poll_once()
            except ResponseError as exc:
                await self.close()
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group vanished (a Redis restart without persistence): recreate it.
                self._log.warning("stream.group.missing")
            except TRANSIENT_REDIS_ERRORS as exc:
                await self.close()
                self._log.warning("stream.read.failed", error=str(exc))
                await asyncio.sleep(0.2)
                await wait_for_redis(self.redis, stop=stop)
        await self._finish_prefetched()
        self._log.info("stream.consumer.stopped")

    async def close(self) -> None:
        """Drop a prefetched read; entries it took stay pending here, read again by the next drain or a reclaim."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            prefetched.cancel()
            await asyncio.gather(prefetched, return_exceptions=True)

    async def _finish_prefetched(self) -> None:
        """On a clean stop, handle the batch read ahead too (it comes within block_ms): none is left pending."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return
        try:
            entries = _entries_of(await prefetched)
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
        group = next((g for g in groups if _text(g["name"]) == self.options.group), None)
        if group is None:
            return
        self.metrics.pending.set(int(group["pending"]))
        lag = group.get("lag")
        if lag is None:
            # Redis 6 has no lag (Redis 7 neither after some deletions): only "caught up" is certain.
            last = await self.redis.xrevrange(self.options.stream, count=1)
            caught_up = not last or _id_key(last[0][0]) <= _id_key(group["last-delivered-id"])
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
            entries = _entries_of(reply)
            if not entries:
                break
            last_id = entries[-1][0]
            self._log.info("stream.pending.resumed", count=len(entries))
            await self._process(await self._with_delivery_counts(entries))
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
        entries = _entries_of(reply)
        if entries:
            if self.options.prefetch:
                self._prefetched_at = time.monotonic()
                self._prefetched = asyncio.ensure_future(self._xreadgroup_new())
                # A read whose consumer is dropped unawaited (poll_once's callers) must not log "never retrieved".
                self._prefetched.add_done_callback(_retrieve)
            await self._process([Message(i, f) for i, f in entries])
        return len(entries)

    async def _xreadgroup_new(self) -> Any:
        return await self.redis.xreadgroup(
            self.options.group,
            self.options.consumer,
            {self.options.stream: ">"},
            count=self.options.batch_size,
            block=min(self.options.block_ms, MAX_BLOCK_MS),
        )

    async def _reclaim_idle(self) -> int:
        reply = await self.redis.xautoclaim(
            self.options.stream,
            self.options.group,
            self.options.consumer,
            min_idle_time=self.options.reclaim_idle_ms,
            start_id=self._claim_cursor,
            count=self.options.batch_size,
        )
        self._claim_cursor = _text(reply[0])
        claimed = [(_text(i), f or {}) for i, f in reply[1]]
        if len(reply) > 2 and reply[2]:
            self._log.error("stream.message.lost", ids=[_text(i) for i in reply[2]], reason="trimmed")
        if not claimed:
            return 0
        self._log.info("stream.message.claimed", count=len(claimed))
        self.metrics.reclaimed.inc(len(claimed))
        await self._process(await self._with_delivery_counts(claimed))
        return len(claimed)

    async def _with_delivery_counts(self, entries: list[tuple[str, RawFields]]) -> list[Message]:
        pending = await self.redis.xpending_range(
            self.options.stream,
            self.options.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries),
            consumername=self.options.consumer,
        )
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [Message(i, f, counts.get(i, 1)) for i, f in entries]

    async def _process(self, messages: list[Message]) -> None:
        live: list[Message] = []
        for message in messages:
            if not message.raw:
                self._log.error("stream.message.lost", id=message.id, reason="payload trimmed")
                await self._ack([message])
            elif message.deliveries > self.options.max_deliveries:
                await self._dead_letter(message, f"delivered {message.deliveries} times without success")
            else:
                live.append(message)
        if not live:
            return
        try:
            await self.handler(live)
        except Exception as exc:
            if len(live) == 1:
                await self._failed(live[0], exc)
                return
            # Isolate the entry that failed: retry the batch one entry at a time.
            for message in live:
                try:
                    await self.handler([message])
                except Exception as single_exc:
                    await self._failed(message, single_exc)
                else:
                    await self._ack_handled([message])
                    self.metrics.handled.inc()
            return
        await self._ack_handled(live)
        self.metrics.handled.inc(len(live))

    async def _ack_handled(self, messages: Sequence[Message]) -> None:
        if not self.options.handler_acks:
            await self._ack(messages)

    async def _failed(self, message: Message, exc: Exception) -> None:
        self.metrics.failures.inc()
        permanent = isinstance(exc, PERMANENT_ERRORS)
        error = safe_text(f"{type(exc).__name__}: {exc}", MAX_REASON_CHARS)
        with structlog.contextvars.bound_contextvars(**_ids_of(message)):
            self._log.warning(
                "stream.message.failed",
                id=message.id,
                deliveries=message.deliveries,
                permanent=permanent,
                error=error,
                exc_info=not permanent,
            )
        if permanent or message.deliveries >= self.options.max_deliveries:
            await self._dead_letter(message, error)

    async def _dead_letter(self, message: Message, reason: str) -> None:
        # Built from the raw entry, never from its decoded form: whatever the entry holds, this cannot fail.
        fields = dead_letter_fields(
            message.raw,
            stream=self.options.stream,
            entry_id=message.id,
            group=self.options.group,
            consumer=self.options.consumer,
            reason=reason,
            deliveries=message.deliveries,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            add_dead_letter(pipe, self.options.stream, fields)
            pipe.xack(self.options.stream, self.options.group, message.id)
            await pipe.execute()
        self.metrics.dead_lettered.inc()
        with structlog.contextvars.bound_contextvars(**_ids_of(message)):
            self._log.error(
                "stream.message.dead_lettered",
                id=message.id,
                reason=fields["dl_reason"],
                dead_letter_stream=self.dead_letter_stream,
            )

    async def _ack(self, messages: Sequence[Message]) -> None:
        await self.redis.xack(self.options.stream, self.options.group, *[m.id for m in messages])

    async def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + min(5.0, self.options.health_ttl_s / 3)
        key = names.health_key(self.options.service, self.options.consumer)
        await self.redis.set(key, str(now_ms()), ex=self.options.health_ttl_s)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # still raised to whoever awaits the task


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(entry_id: Any) -> tuple[int, ...]:
    return tuple(int(part) for part in _text(entry_id).split("-"))


def _ids_of(message: Message) -> dict[str, str]:
    """The alert and trigger ids an entry carries, to bind on the lines about it."""
    raw: dict[Any, Any] = message.raw
    ids = {}
    for key in ("alert_id", "trigger_id"):
        value = raw.get(key.encode(), raw.get(key))
        if value is not None:
            ids[key] = encode_text(value[:100] if isinstance(value, bytes | str) else value)
    return ids


def _entries_of(reply: Any) -> list[tuple[str, RawFields]]:
    """Flatten an XREADGROUP reply (RESP2 list or RESP3 dict) for one stream."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    out: list[tuple[str, RawFields]] = []
    for _stream, entries in streams:
        out.extend(
            (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), fields or {})
            for entry_id, fields in entries
        )
    return out
