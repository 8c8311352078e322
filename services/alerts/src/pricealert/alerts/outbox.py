"""The transactional outbox: events staged with their alert change, relayed to Redis by a task."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import groupby

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pricealert.alerts import repository
from pricealert.alerts.database import read_session, write_session
from pricealert.alerts.metrics import OUTBOX_FAILURES, OUTBOX_RELAYED
from pricealert.alerts.models import Alert, NewAlert
from pricealert.alerts.pgstore import PgOutboxBatch, PgStore
from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition, utc_now
from pricealert.common.publisher import publish_many

log = structlog.get_logger()

PUBLISH_TIMEOUT_S = 5.0
CONTENDED_RETRY_S = 0.005


def alert_event(alert: Alert | NewAlert, event_type: AlertEventType) -> AlertEvent:
    """The alert-events entry describing `alert` after `event_type`."""
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
        expires_at=alert.expires_at,
        occurred_at=utc_now(),
    )


def stage_event(session: AsyncSession, alert: Alert | NewAlert, event_type: AlertEventType) -> None:
    """Put the event in the outbox, in the same transaction as the change it reports."""
    repository.add_outbox(session, names.ALERT_EVENTS, alert_event(alert, event_type).to_fields())


class OutboxRelay:
    """Moves outbox rows to their streams in id order, then deletes them (at least once)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        *,
        poll_s: float = 0.5,
        batch_size: int = 500,
        coalesce_s: float = 0.0,
        store: PgStore | None = None,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.poll_s = poll_s
        self.batch_size = batch_size
        self.coalesce_s = coalesce_s
        self.store = store
        self._wake = asyncio.Event()
        self._failing = False
        self._contended = False

    def notify(self) -> None:
        """Ask for a round now (called right after a commit that staged events)."""
        self._wake.set()

    async def _has_rows(self) -> bool:
        if self.store is not None:
            return await self.store.outbox_has_rows()
        async with read_session(self.sessions) as session:
            return await repository.outbox_has_rows(session)

    @asynccontextmanager
    async def _batch(self) -> AsyncIterator[list[repository.OutboxRow] | None]:
        if self.store is not None:
            async with PgOutboxBatch(self.store, self.batch_size) as rows:
                yield rows
            return
        async with write_session(self.sessions) as session:
            yield await repository.take_outbox_batch(session, self.batch_size)

    async def relay_once(self, *, pending: bool = False) -> int:
        """Publish and delete one batch; returns how many events went out.

        `pending` says a commit just staged events, which skips the cheap emptiness check.
        """
        if not pending and not await self._has_rows():
            return 0
        if self._failing:
            # Fail fast while Redis is away instead of holding the database lock for a whole timeout.
            await self.redis.ping()
        async with self._batch() as rows:
            # None: another relay holds the lock (it may have started before our rows were committed).
            self._contended = rows is None
            if not rows:
                return 0
            # Publishing inside the transaction: if it fails the rows come back; if we die after
            # XADD but before COMMIT they are published again (consumers tolerate duplicates).
            try:
                for stream, group in groupby(rows, key=lambda r: r.stream):
                    await asyncio.wait_for(
                        publish_many(self.redis, stream, [r.fields for r in group]), timeout=PUBLISH_TIMEOUT_S
                    )
            except BaseException:
                self._failing = True
                raise
        self._failing = False
        OUTBOX_RELAYED.inc(len(rows))
        log.debug("outbox.relayed", count=len(rows), last_id=rows[-1].id)
        return len(rows)

    async def drain(self) -> int:
        """Relay until the outbox is empty; returns how many events went out."""
        total = 0
        while (sent := await self.relay_once()) > 0:
            total += sent
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay whenever woken, and every poll interval for rows a crashed process left behind."""
        delay = self.poll_s
        woken = False
        while not stop.is_set():
            if woken and self.coalesce_s > 0:
                # Under load, commits arrive faster than rounds: one round per window takes them all.
                await asyncio.sleep(self.coalesce_s)
            self._wake.clear()
            self._contended = False
            try:
                sent = await self.relay_once(pending=woken)
                delay = self.poll_s
            except Exception as exc:  # Redis or the database away: back off, the rows stay put
                OUTBOX_FAILURES.inc()
                log.warning("outbox.relay.failed", error=f"{type(exc).__name__}: {exc}")
                sent = 0
                delay = min(delay * 2, 5.0)
            woken = False
            if sent >= self.batch_size:
                continue
            if self._contended:
                # Our rows may have been committed after the other relay's snapshot: look again shortly
                # (after the coalescing window at the top of the loop).
                if self.coalesce_s <= 0:
                    await asyncio.sleep(CONTENDED_RETRY_S)
                woken = True
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
                woken = True
        log.info("outbox.relay.stopped")


OnCommit = Callable[[], None]
