"""The SQL of the delivery log: each attempt's row, its firing's and alert's delivery, a channel a 410 disabled.

Callers hold the alerts' row locks (repository.lock_alerts) first, as every firing writer does; a channel's row
is locked last. The aggregate over a firing's channels is deliverystate.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.alerts.deliverystate import (
    FAILED,
    PENDING,
    SENT,
    Aggregate,
    ChannelTally,
    aggregate,
    channel_tallies,
    disabled_reason,
    from_row,
    tally,
)
from pricealert.alerts.models import Alert, Channel, Delivery, Firing
from pricealert.alerts.store import DeliveryLog, DeliveryRecord, RecordedDeliveries
from pricealert.common.channels import ChannelStatus, parse_channel_ids
from pricealert.common.events import utc_now

_SYNC: dict[str, Any] = {"synchronize_session": False}
_ORDER = (Delivery.occurred_at, Delivery.channel_id, Delivery.attempt, Delivery.id)


def _insert(session: AsyncSession) -> Callable[..., Any]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _log_attempt(session: AsyncSession, record: DeliveryRecord) -> bool:
    """Add the attempt's row; False when it is there already (a redelivered result)."""
    inserted = await session.execute(
        _insert(session)(Delivery)
        .values(
            trigger_id=record.trigger_id,
            alert_id=record.alert_id,
            channel_id=record.channel_id,
            channel_kind=record.channel_kind,
            attempt=record.attempts,
            status=record.status,
            error=record.error,
            reply=record.reply,
            http_status=record.http_status,
            next_retry_at=record.next_retry_at,
            occurred_at=record.occurred_at or utc_now(),
        )
        .on_conflict_do_nothing(index_elements=["trigger_id", "channel_id", "attempt"])
        .returning(Delivery.id)
    )
    return inserted.first() is not None


async def firing_tallies(session: AsyncSession, trigger_id: str, channel_ids: str | None) -> list[ChannelTally]:
    """The tally of each of the firing's channels (`channel_ids` as its row holds them) from its whole log."""
    rows = (
        (await session.execute(select(Delivery).where(Delivery.trigger_id == trigger_id).order_by(Delivery.attempt)))
        .scalars()
        .all()
    )
    return channel_tallies(parse_channel_ids(channel_ids), tally(rows))


async def firing_outcome(session: AsyncSession, trigger_id: str, channel_ids: str | None) -> Aggregate:
    """The firing's delivery over its channels, from its log."""
    return aggregate(await firing_tallies(session, trigger_id, channel_ids))


async def _refresh_firing(session: AsyncSession, record: DeliveryRecord) -> None:
    """Recompute the firing's delivery (making its row when the result came before the trigger) and its alert's."""
    await session.execute(
        _insert(session)(Firing)
        .values(trigger_id=record.trigger_id, alert_id=record.alert_id, delivery_status=PENDING)
        .on_conflict_do_nothing(index_elements=["trigger_id"])
    )
    fired_at, channel_ids, status = (
        await session.execute(
            select(Firing.fired_at, Firing.channel_ids, Firing.delivery_status).where(
                Firing.trigger_id == record.trigger_id
            )
        )
    ).one()
    if fired_at is None:  # no trigger yet: the alert's channels stand in for the firing's until it comes
        channel_ids = (
            await session.execute(select(Alert.channel_ids).where(Alert.id == record.alert_id))
        ).scalar_one_or_none()
    elif status == SENT:  # recorded sent (before the log existed, or every channel was): never undone
        return
    outcome = await firing_outcome(session, record.trigger_id, channel_ids)
    values = {
        "delivery_status": outcome.status,
        "delivery_error": outcome.error,
        "delivery_attempts": outcome.attempts,
    }
    await session.execute(
        update(Firing).where(Firing.trigger_id == record.trigger_id).values(**values), execution_options=_SYNC
    )
    await session.execute(
        update(Alert)
        .where(
            Alert.id == record.alert_id,
            Alert.trigger_id == record.trigger_id,
            or_(Alert.delivery_status.is_(None), Alert.delivery_status != SENT),
        )
        .values(**values, updated_at=utc_now()),
        execution_options=_SYNC,
    )


async def _disable_channel(session: AsyncSession, record: DeliveryRecord) -> Channel | None:
    """Disable the record's channel if it is active (its webhook answered 410); the row, when this disabled it."""
    where = [Channel.id == record.channel_id, Channel.status == ChannelStatus.ACTIVE.value]
    if record.user_id:
        where.append(Channel.user_id == record.user_id)
    done = await session.execute(
        update(Channel)
        .where(*where)
        .values(
            status=ChannelStatus.DISABLED.value,
            disabled_reason=disabled_reason(record.channel_id, record.occurred_at or utc_now()),
            version=Channel.version + 1,
            updated_at=utc_now(),
        )
        .returning(Channel.id),
        execution_options=_SYNC,
    )
    if done.first() is None:
        return None
    stmt = select(Channel).where(Channel.id == record.channel_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def record_deliveries(session: AsyncSession, records: Sequence[DeliveryRecord]) -> RecordedDeliveries:
    """Log each attempt once, then update each firing a new attempt changed, then disable what a 410 gave up."""
    changed = [await _log_attempt(session, r) for r in records]
    firings: dict[str, DeliveryRecord] = {}
    for record, new in zip(records, changed, strict=True):
        if new:
            firings.setdefault(record.trigger_id, record)
    for record in firings.values():
        await _refresh_firing(session, record)
    disabled: list[Channel] = []
    for record, new in zip(records, changed, strict=True):
        if new and record.channel_disabled and (channel := await _disable_channel(session, record)) is not None:
            disabled.append(channel)
    return RecordedDeliveries(changed, disabled)


async def list_deliveries(
    session: AsyncSession, alert_id: str, trigger_id: str, *, offset: int, limit: int
) -> DeliveryLog | None:
    """One page of the attempts at one of the alert's firings, oldest first (None: no such firing of the alert)."""
    firing = (
        await session.execute(
            select(Firing).where(
                Firing.trigger_id == trigger_id, Firing.alert_id == alert_id, Firing.fired_at.is_not(None)
            )
        )
    ).scalar_one_or_none()
    if firing is None:
        return None
    tallies = await firing_tallies(session, trigger_id, firing.channel_ids)
    channels = from_row(tallies, firing.delivery_status, firing.delivery_error, firing.delivery_attempts)
    total = int(
        (
            await session.execute(select(func.count()).select_from(Delivery).where(Delivery.trigger_id == trigger_id))
        ).scalar_one()
    )
    items: Sequence[Delivery] = []
    if offset < total:
        stmt = select(Delivery).where(Delivery.trigger_id == trigger_id).order_by(*_ORDER).offset(offset).limit(limit)
        items = (await session.execute(stmt)).scalars().all()
    return DeliveryLog(firing=firing, channels=channels, items=items, total=total)


async def firing_channels(session: AsyncSession, firings: Sequence[Firing]) -> dict[str, list[ChannelTally]]:
    """Each firing's channels' tallies (without errors: one grouped read for the page), by trigger id."""
    if not firings:
        return {}
    sent = func.max(case((Delivery.status == SENT, 1), else_=0))
    failed = func.max(case((Delivery.status == FAILED, 1), else_=0))
    kind, attempts = func.max(Delivery.channel_kind), func.max(Delivery.attempt)
    stmt = (
        select(Delivery.trigger_id, Delivery.channel_id, kind, attempts, sent, failed)
        .where(Delivery.trigger_id.in_([f.trigger_id for f in firings]))
        .group_by(Delivery.trigger_id, Delivery.channel_id)
    )
    found: dict[str, dict[str, ChannelTally]] = {f.trigger_id: {} for f in firings}
    for trigger_id, channel_id, channel_kind, most, was_sent, was_failed in (await session.execute(stmt)).all():
        found[trigger_id][channel_id] = ChannelTally(
            channel_id, channel_kind, attempts=int(most), sent=bool(was_sent), failed=bool(was_failed), recorded=True
        )
    return {
        f.trigger_id: from_row(
            channel_tallies(parse_channel_ids(f.channel_ids), found[f.trigger_id]),
            f.delivery_status,
            None,  # the page's firings show their errors
            f.delivery_attempts,
        )
        for f in firings
    }
