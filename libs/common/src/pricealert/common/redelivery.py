"""Entries that come back or give up: delivery counts, idle entries reclaimed from others, failures, dead letters."""

from __future__ import annotations

from typing import Any

import structlog

from pricealert.common import names
from pricealert.common.deadletter import MAX_REASON_CHARS, dead_letter_entry, dead_letter_fields, encode_text, safe_text
from pricealert.common.events import RawFields
from pricealert.common.messages import PERMANENT_ERRORS, ConsumerOptions, Message, text
from pricealert.common.metrics import ConsumerMetrics
from pricealert.common.redisconn import RedisClient


class Redelivery:
    """The consumer loop's side of the pending entries list: who had an entry how often, and where failures end."""

    def __init__(self, redis: RedisClient, options: ConsumerOptions, metrics: ConsumerMetrics, log: Any) -> None:
        self.redis = redis
        self.options = options
        self.metrics = metrics
        self.dead_letter_stream = names.dead_letter_stream(options.stream)
        self._log = log
        self._claim_cursor = "0-0"

    async def reclaim(self) -> list[Message]:
        """Take over entries idle longer than reclaim_idle_ms (a dead or stuck replica's), with delivery counts."""
        reply = await self.redis.xautoclaim(
            self.options.stream,
            self.options.group,
            self.options.consumer,
            min_idle_time=self.options.reclaim_idle_ms,
            start_id=self._claim_cursor,
            count=self.options.batch_size,
        )
        self._claim_cursor = text(reply[0])
        claimed = [(text(i), f or {}) for i, f in reply[1]]
        if len(reply) > 2 and reply[2]:
            self._log.error("stream.message.lost", ids=[text(i) for i in reply[2]], reason="trimmed")
        if not claimed:
            return []
        self._log.info("stream.message.claimed", count=len(claimed))
        self.metrics.reclaimed.inc(len(claimed))
        return await self.with_delivery_counts(claimed)

    async def take_all_pending(self) -> int:
        """Make every entry pending in the group this consumer's (a new shard owner's start); returns how many."""
        cursor, taken, count = "0-0", 0, 1000
        while True:
            # With justid redis-py returns the claimed ids only, not the cursor: go on after the last one.
            ids = await self.redis.xautoclaim(
                self.options.stream,
                self.options.group,
                self.options.consumer,
                min_idle_time=0,
                start_id=cursor,
                count=count,
                justid=True,
            )
            taken += len(ids)
            # Not `< count`: a call scans at most 10 x count entries, and ones trimmed from the stream use the
            # scan without being claimed. Only a call that claims nothing says the group holds no more.
            if not ids:
                break
            millis, _, seq = text(ids[-1]).partition("-")
            cursor = f"{millis}-{int(seq) + 1}"
        if taken:
            self._log.info("stream.pending.taken_over", count=taken)
        return taken

    async def others_pending(self) -> bool:
        """Whether another consumer of the group holds pending entries (one XPENDING summary)."""
        summary = await self.redis.xpending(self.options.stream, self.options.group)
        return any(
            text(c["name"]) != self.options.consumer and int(c["pending"]) > 0 for c in summary.get("consumers") or []
        )

    async def with_delivery_counts(self, entries: list[tuple[str, RawFields]]) -> list[Message]:
        """`entries` (pending here) as messages carrying how often each was delivered."""
        pending = await self.redis.xpending_range(
            self.options.stream,
            self.options.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries),
            consumername=self.options.consumer,
        )
        counts = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [Message(i, f, counts.get(i, 1)) for i, f in entries]

    async def failed(self, message: Message, exc: Exception) -> None:
        """Count and log a failure; dead-letter the entry if no retry can help or it has had its deliveries."""
        self.metrics.failures.inc()
        permanent = isinstance(exc, PERMANENT_ERRORS)
        error = safe_text(f"{type(exc).__name__}: {exc}", MAX_REASON_CHARS)
        with structlog.contextvars.bound_contextvars(**ids_of(message)):
            self._log.warning(
                "stream.message.failed",
                id=message.id,
                deliveries=message.deliveries,
                permanent=permanent,
                error=error,
                exc_info=not permanent,
            )
        if permanent or message.deliveries >= self.options.max_deliveries:
            await self.dead_letter(message, error)

    async def dead_letter(self, message: Message, reason: str) -> None:
        """Move the entry to the dead letters and ack it, in one transaction."""
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
            dead_letter_entry(pipe, fields)
            await pipe.execute()
        self.metrics.dead_lettered.inc()
        with structlog.contextvars.bound_contextvars(**ids_of(message)):
            self._log.error(
                "stream.message.dead_lettered",
                id=message.id,
                reason=fields["dl_reason"],
                dead_letter_stream=self.dead_letter_stream,
            )


def ids_of(message: Message) -> dict[str, str]:
    """The alert and trigger ids an entry carries, to bind on the lines about it."""
    raw: dict[Any, Any] = message.raw
    ids = {}
    for key in ("alert_id", "trigger_id"):
        value = raw.get(key.encode(), raw.get(key))
        if value is not None:
            ids[key] = encode_text(value[:100] if isinstance(value, bytes | str) else value)
    return ids
