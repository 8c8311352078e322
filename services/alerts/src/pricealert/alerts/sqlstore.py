"""The alert store through SQLAlchemy: every operation on SQLite, and the rarer writes on Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.alerts import deliverysql, firingsql, repository
from pricealert.alerts.database import make_engine, read_session, run_write, write_session
from pricealert.alerts.deliverystate import ChannelTally
from pricealert.alerts.editing import Edit
from pricealert.alerts.models import Alert, Firing, NewAlert
from pricealert.alerts.outbox import alert_event, alert_events_stream
from pricealert.alerts.store import (
    ActiveLimitReached,
    DeliveryLog,
    DeliveryRecord,
    OutboxRow,
    RecordedDeliveries,
    TriggerRecord,
)
from pricealert.alerts.views import AlertView
from pricealert.common.db import session_factory
from pricealert.common.events import AlertEventType
from pricealert.common.settings import Pooler


def stage_event(
    session: AsyncSession, alert: Alert | NewAlert, event_type: AlertEventType, shards: int, edit: Edit | None = None
) -> None:
    """Put the event in the outbox for its symbol's shard's stream, in the same transaction as the change."""
    stream = alert_events_stream(alert.symbol, shards)
    event = (
        alert_event(alert, event_type)
        if edit is None
        else alert_event(alert, event_type, paused=edit.paused, previous_target_price=edit.previous_target_price)
    )
    repository.add_outbox(session, stream, event.to_fields())


class SqlAlertStore:
    """An engine and its sessions; each method is one transaction (writes run again when Postgres aborts them).

    `shards` is the shard count (SHARDS): each staged event names its symbol's shard's alert-events stream.
    """

    def __init__(
        self,
        url: str,
        *,
        shards: int,
        pool_size: int = 10,
        max_overflow: int = 10,
        pooler: Pooler = "none",
        statement_timeout_s: float = 0.0,
    ) -> None:
        self.engine = make_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pooler=pooler, statement_timeout_s=statement_timeout_s
        )
        self.sessions = session_factory(self.engine)
        self.shards = shards

    async def start(self) -> None:
        """Nothing to open: the engine connects on first use."""

    async def close(self) -> None:
        """Close the engine's connections."""
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def create(self, alert: NewAlert, *, limit: int) -> int | None:
        """Store the alert and alert.created unless the user holds `limit` active alerts; returns their count then."""
        # SQLite's write lock serialises the user's writers; on Postgres PgAlertStore creates through alerts_create.
        async with write_session(self.sessions) as session:
            active = await repository.count_active(session, alert.user_id)
            if active >= limit:
                return active
            repository.add_alert(session, Alert(**asdict(alert)))
            stage_event(session, alert, AlertEventType.CREATED, self.shards)
        return None

    async def get(self, alert_id: str, user_id: str) -> AlertView | None:
        """One of the user's alerts."""
        async with read_session(self.sessions) as session:
            return await repository.get_alert(session, alert_id, user_id)

    async def list_alerts(
        self,
        user_id: str,
        *,
        status: str | None,
        symbol: str | None,
        offset: int,
        limit: int,
        condition: str | None = None,
    ) -> tuple[Sequence[AlertView], int]:
        """One page of the user's alerts, newest first, and the total matching."""
        async with read_session(self.sessions) as session:
            return await repository.list_alerts(
                session, user_id, status=status, symbol=symbol, offset=offset, limit=limit, condition=condition
            )

    async def update(
        self, alert_id: str, user_id: str, plan: Callable[[Alert], Edit | None], *, limit: int
    ) -> AlertView | None:
        """Apply `plan`'s edit of the locked alert and stage alert.updated (None: not the user's alert)."""

        async def work(session: AsyncSession) -> AlertView | None:
            alert = await repository.get_alert_for_update(session, alert_id, user_id)
            if alert is None:
                return None
            edit = plan(alert)
            if edit is None:
                return alert
            if edit.resumes:
                await repository.lock_user(session, user_id)
                active = await repository.count_active(session, user_id)
                if active >= limit:
                    raise ActiveLimitReached(active)
            for name, value in edit.values.items():
                setattr(alert, name, value)
            await session.flush()
            stage_event(session, alert, AlertEventType.UPDATED, self.shards, edit)
            return alert

        return await run_write(self.sessions, work)

    async def firings(self, alert_id: str, *, offset: int, limit: int) -> tuple[Sequence[Firing], int]:
        """One page of the alert's firings, newest first, and how many there are."""
        async with read_session(self.sessions) as session:
            return await firingsql.list_firings(session, alert_id, offset=offset, limit=limit)

    async def delete(self, alert_id: str, user_id: str) -> bool | None:
        """Soft-delete and stage alert.deleted: True if this call deleted it, False if it was, None if missing."""

        async def work(session: AsyncSession) -> bool | None:
            alert = await repository.mark_deleted(session, alert_id, user_id)
            if alert is not None:
                stage_event(session, alert, AlertEventType.DELETED, self.shards)
                return True
            return None if await repository.get_alert(session, alert_id, user_id) is None else False

        return await run_write(self.sessions, work)

    async def expire_due(self, now: datetime, limit: int) -> list[Alert]:
        """Expire up to `limit` active alerts due at `now`, staging alert.expired for each; returns them."""

        async def work(session: AsyncSession) -> list[Alert]:
            expired = await repository.expire_due(session, now, limit)
            for alert in expired:
                stage_event(session, alert, AlertEventType.EXPIRED, self.shards)
            return expired

        return await run_write(self.sessions, work)

    async def record_triggers(self, records: Sequence[TriggerRecord]) -> list[bool]:
        """Store each firing (in the given order, one transaction); True where it stored this firing."""

        async def work(session: AsyncSession) -> list[bool]:
            await repository.lock_alerts(session, [r.alert_id for r in records])
            return [await firingsql.record_trigger(session, r) for r in records]

        return await run_write(self.sessions, work)

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> RecordedDeliveries:
        """Log each attempt once and update its firing's and alert's delivery, disabling the channels a 410 gave up
        (one transaction); a success is never undone."""

        async def work(session: AsyncSession) -> RecordedDeliveries:
            await repository.lock_alerts(session, [r.alert_id for r in records])
            return await deliverysql.record_deliveries(session, records)

        return await run_write(self.sessions, work)

    async def deliveries(self, alert_id: str, trigger_id: str, *, offset: int, limit: int) -> DeliveryLog | None:
        """One page of the attempts at one of the alert's firings, oldest first (None: no such firing)."""
        async with read_session(self.sessions) as session:
            return await deliverysql.list_deliveries(session, alert_id, trigger_id, offset=offset, limit=limit)

    async def firing_channels(self, firings: Sequence[Firing]) -> dict[str, list[ChannelTally]]:
        """Each firing's channels' tallies (no errors), by trigger id."""
        async with read_session(self.sessions) as session:
            return await deliverysql.firing_channels(session, firings)

    async def stage_active_after(self, after_id: str, limit: int) -> list[str]:
        """Stage alert.created again for up to `limit` active alerts with ids above `after_id`; their ids, in order."""
        async with write_session(self.sessions) as session:
            batch = await repository.active_alert_ids_after(session, after_id, limit)
            for alert in batch:
                stage_event(session, alert, AlertEventType.CREATED, self.shards)
        return [alert.id for alert in batch]

    async def outbox_has_rows(self) -> bool:
        """Whether any event waits in the outbox (a cheap read, no lock)."""
        async with read_session(self.sessions) as session:
            return await repository.outbox_has_rows(session)

    def take_outbox(self, limit: int) -> AbstractAsyncContextManager[list[OutboxRow] | None]:
        """The oldest rows, deleted when the block exits cleanly (kept otherwise); None if another relay holds them."""
        return self._take_outbox(limit)

    @asynccontextmanager
    async def _take_outbox(self, limit: int) -> AsyncIterator[list[OutboxRow] | None]:
        async with write_session(self.sessions) as session:
            yield await repository.take_outbox_batch(session, limit)
