"""Every SQL statement of the alerts service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.alerts.models import Alert, AlertStatus, OutboxEntry
from pricealert.alerts.store import OutboxRow
from pricealert.common.events import utc_now

# A paused alert's time runs out too (it is out of the index: its alert.expired changes nothing downstream).
EXPIRABLE = (AlertStatus.ACTIVE.value, AlertStatus.PAUSED.value)


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def lock_alerts(session: AsyncSession, alert_ids: Sequence[str]) -> None:
    """Lock these alerts' rows in id order before changing them, as every multi-alert writer does."""
    # Taken all at once and in one order, two batches cannot each hold a row the other waits for, and no
    # batch holds a count row (taken by the change itself) while it waits for an alert another writer holds.
    if _is_postgres(session) and alert_ids:
        await session.execute(
            select(Alert.id).where(Alert.id.in_(sorted(alert_ids))).order_by(Alert.id.collate("C")).with_for_update()
        )


async def count_active(session: AsyncSession, user_id: str) -> int:
    """How many active alerts the user holds."""
    stmt = (
        select(func.count())
        .select_from(Alert)
        .where(Alert.user_id == user_id, Alert.status == AlertStatus.ACTIVE.value)
    )
    return int((await session.execute(stmt)).scalar_one())


def add_alert(session: AsyncSession, alert: Alert) -> None:
    """Stage a new alert for insertion."""
    session.add(alert)


def add_outbox(session: AsyncSession, stream: str, fields: dict[str, str]) -> None:
    """Stage an event for the relay, committed atomically with the change it describes."""
    session.add(OutboxEntry(stream=stream, fields=json.dumps(fields, separators=(",", ":")), created_at=utc_now()))


async def get_alert(session: AsyncSession, alert_id: str, user_id: str | None = None) -> Alert | None:
    """One alert by id, optionally only if it belongs to `user_id`."""
    stmt = select(Alert).where(Alert.id == alert_id)
    if user_id is not None:
        stmt = stmt.where(Alert.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_alert_for_update(session: AsyncSession, alert_id: str, user_id: str) -> Alert | None:
    """One of the user's alerts, its row locked until the transaction ends (SQLite: the write lock does)."""
    stmt = select(Alert).where(Alert.id == alert_id, Alert.user_id == user_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_user(session: AsyncSession, user_id: str) -> None:
    """Postgres: the per-user lock `alerts_create` takes, so the active count stays exact (SQLite: the write lock)."""
    if _is_postgres(session):
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"alerts:{user_id}"))))


async def list_alerts(
    session: AsyncSession,
    user_id: str,
    *,
    status: str | None,
    symbol: str | None,
    offset: int,
    limit: int,
    condition: str | None = None,
) -> tuple[list[Alert], int]:
    """One page of the user's alerts, newest first, and the total that match the filters."""
    conditions = [Alert.user_id == user_id]
    if status is not None:
        conditions.append(Alert.status == status)
    if symbol is not None:
        conditions.append(Alert.symbol == symbol)
    if condition is not None:
        conditions.append(Alert.condition == condition)
    total = int((await session.execute(select(func.count()).select_from(Alert).where(*conditions))).scalar_one())
    if offset >= total:
        return [], total
    stmt = (
        select(Alert).where(*conditions).order_by(Alert.created_at.desc(), Alert.id.desc()).offset(offset).limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all()), total


async def mark_deleted(session: AsyncSession, alert_id: str, user_id: str) -> Alert | None:
    """Soft-delete one of the user's alerts; returns it only when this call changed its status."""
    stmt = (
        update(Alert)
        .where(Alert.id == alert_id, Alert.user_id == user_id, Alert.status != AlertStatus.DELETED.value)
        .values(status=AlertStatus.DELETED.value, updated_at=utc_now())
        .returning(Alert)
    )
    return (await session.execute(stmt, execution_options={"synchronize_session": False})).scalar_one_or_none()


async def expire_due(session: AsyncSession, now: datetime, limit: int) -> list[Alert]:
    """Mark up to `limit` active or paused alerts whose expiry passed as expired; returns those this call changed."""
    due = (
        select(Alert.id)
        .where(Alert.status.in_(EXPIRABLE), Alert.expires_at <= now)
        .order_by(Alert.expires_at)
        .limit(limit)
    )
    if _is_postgres(session):
        # Skip alerts another writer holds (a trigger batch): the sweep never waits on a row, so it cannot
        # deadlock with one; a skipped alert that is still active is expired by the next sweep.
        due = due.with_for_update(skip_locked=True)
    # The status re-check makes concurrent sweepers safe: a row already expired by another is skipped.
    stmt = (
        update(Alert)
        .where(Alert.id.in_(due.scalar_subquery()), Alert.status.in_(EXPIRABLE))
        .values(status=AlertStatus.EXPIRED.value, updated_at=now)
        .returning(Alert)
    )
    return list((await session.execute(stmt, execution_options={"synchronize_session": False})).scalars().all())


async def active_alert_ids_after(session: AsyncSession, after_id: str, limit: int) -> list[Alert]:
    """Active alerts with an id greater than `after_id`, in id order (keyset pagination for resync)."""
    stmt = (
        select(Alert)
        .where(Alert.status == AlertStatus.ACTIVE.value, Alert.id > after_id)
        .order_by(Alert.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def outbox_has_rows(session: AsyncSession) -> bool:
    """Whether any event waits in the outbox (a cheap read, no lock)."""
    return (await session.execute(select(OutboxEntry.id).limit(1))).first() is not None


async def take_outbox_batch(session: AsyncSession, limit: int) -> list[OutboxRow]:
    """Delete and return the oldest outbox rows (undone by rollback), on SQLite, whose write lock orders relays.

    On Postgres the relay takes rows through `alerts_outbox_take` (functions.sql, pgstore.PgOutboxBatch).
    """
    oldest = select(OutboxEntry.id).order_by(OutboxEntry.id).limit(limit)
    stmt = (
        delete(OutboxEntry)
        .where(OutboxEntry.id.in_(oldest.scalar_subquery()))
        .returning(OutboxEntry.id, OutboxEntry.stream, OutboxEntry.fields)
    )
    rows = (await session.execute(stmt, execution_options={"synchronize_session": False})).all()
    return sorted((OutboxRow(int(i), str(s), json.loads(f)) for i, s, f in rows), key=lambda r: r.id)


async def outbox_size(session: AsyncSession) -> int:
    """How many events wait in the outbox."""
    return int((await session.execute(select(func.count()).select_from(OutboxEntry))).scalar_one())
