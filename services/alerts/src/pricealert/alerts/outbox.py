"""The transactional outbox: events staged with their alert change, relayed to their stream by the worker.

This is alert-events' producer: every alert change stages an AlertEvent (`alert_event`) in the same transaction
(sqlstore.py, or the `alerts_create` SQL function on Postgres) with the stream of its symbol's shard
(`alert_events_stream`), and `OutboxRelay` appends the rows to their streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

import structlog

from pricealert.alerts.metrics import OUTBOX_FAILURES, OUTBOX_RELAYED
from pricealert.alerts.models import Alert, NewAlert
from pricealert.alerts.store import AlertStore, OutboxRow
from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Fields, Frequency, utc_now
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import shard_of

log = structlog.get_logger()

PUBLISH_TIMEOUT_S = 5.0
CONTENDED_RETRY_S = 0.005
FAILURE_BACKOFF_S = (0.5, 5.0)
# The one alert-events stream before the shards: rows staged by an older release still name it.
UNSHARDED_STREAM = f"{names.PREFIX}:{names.ALERT_EVENTS_KIND}"


def alert_events_stream(symbol: str, shards: int) -> str:
    """The alert-events stream of `symbol`'s shard among `shards`: where the events about its alerts go."""
    return AlertEvent.stream_of(shard_of(symbol, shards))


def alert_event(
    alert: Alert | NewAlert,
    event_type: AlertEventType,
    *,
    paused: bool = False,
    previous_target_price: Decimal | None = None,
) -> AlertEvent:
    """The alert-events entry describing `alert` after `event_type`: its whole definition, at its version.

    `paused` and `previous_target_price` are those of alert.updated (the new version is paused; the target of
    the version before).
    """
    return AlertEvent(
        type=event_type,
        event_id=str(uuid.uuid4()),
        alert_id=alert.id,
        user_id=alert.user_id,
        email=alert.email,
        symbol=alert.symbol.upper(),
        condition=Condition(alert.condition),
        target_price=alert.target_price,
        name=alert.name,
        low=alert.low,
        high=alert.high,
        percent=alert.percent,
        window=alert.window,
        frequency=Frequency(alert.frequency),
        cooldown_s=alert.cooldown_s,
        message=alert.message,
        version=alert.version,
        expires_at=alert.expires_at,
        occurred_at=utc_now(),
        paused=paused,
        previous_target_price=previous_target_price,
        channels=alert.channel_ids,
    )


class OutboxRelay:
    """Moves outbox rows to their streams in id order, then deletes them (at least once).

    It looks for rows every `poll_s`: the commits come from other processes (the API's), and a look at an
    empty outbox is one cheap read, so a short interval keeps commit-to-stream latency low.
    """

    def __init__(
        self, store: AlertStore, redis: RedisClient, *, shards: int, poll_s: float = 0.01, batch_size: int = 500
    ) -> None:
        self.store = store
        self.redis = redis
        self.shards = shards
        self.poll_s = poll_s
        self.batch_size = batch_size
        self._failing = False
        self._contended = False

    async def relay_once(self, *, pending: bool = False) -> int:
        """Publish and delete one batch; returns how many events went out.

        `pending` says rows are likely (the last round found some), which skips the cheap emptiness check.
        """
        if not pending and not await self.store.outbox_has_rows():
            return 0
        if self._failing:
            # Fail fast while Redis is away instead of holding the database lock for a whole timeout.
            await self.redis.ping()
        async with self.store.take_outbox(self.batch_size) as rows:
            # None: another relay holds the lock (it may have started before our rows were committed).
            self._contended = rows is None
            if not rows:
                return 0
            # Publishing inside the transaction: if it fails the rows come back; if we die after
            # XADD but before COMMIT they are published again (consumers tolerate duplicates).
            try:
                await asyncio.wait_for(self._publish(rows), timeout=PUBLISH_TIMEOUT_S)
            except BaseException:
                self._failing = True
                raise
        self._failing = False
        OUTBOX_RELAYED.inc(len(rows))
        log.debug("outbox.relayed", count=len(rows), last_id=rows[-1].id)
        return len(rows)

    def stream_of(self, row: OutboxRow) -> str:
        """The stream a row goes to: the one it names, or its symbol's shard's for a row staged before the shards."""
        symbol = row.fields.get("symbol")
        if row.stream == UNSHARDED_STREAM and symbol:
            return alert_events_stream(symbol, self.shards)
        return row.stream

    async def _publish(self, rows: list[OutboxRow]) -> None:
        """XADD the rows, each stream's in id order, the streams side by side (one pipeline each, one slot each)."""
        by_stream: dict[str, list[Fields]] = {}
        for row in rows:
            by_stream.setdefault(self.stream_of(row), []).append(row.fields)
        if len(by_stream) == 1:
            [(stream, events)] = by_stream.items()
            await publish_many(self.redis, stream, events)
            return
        tasks = [asyncio.ensure_future(publish_many(self.redis, s, events)) for s, events in by_stream.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one failed: the rows come back anyway, the others need not finish
                task.cancel()

    async def drain(self) -> int:
        """Relay until the outbox is empty; returns how many events went out."""
        total = 0
        while (sent := await self.relay_once()) > 0:
            total += sent
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay every poll interval (at once again after a full batch) until `stop`."""
        delay = self.poll_s
        sent = 0
        while not stop.is_set():
            self._contended = False
            try:
                sent = await self.relay_once(pending=sent > 0)
                delay = self.poll_s
            except Exception as exc:  # Redis or the database away: back off, the rows stay put
                OUTBOX_FAILURES.inc()
                log.warning("outbox.relay.failed", error=f"{type(exc).__name__}: {exc}")
                sent = 0
                delay = min(max(delay * 2, FAILURE_BACKOFF_S[0]), FAILURE_BACKOFF_S[1])
            if sent >= self.batch_size:
                continue
            # Contended: our rows may have been committed after the other relay's snapshot; look again shortly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=CONTENDED_RETRY_S if self._contended else delay)
        log.info("outbox.relay.stopped")
