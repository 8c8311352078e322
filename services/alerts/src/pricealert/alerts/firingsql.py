"""The SQL of firings: a trigger's firing and its alert's count and status, the history (the delivery log's SQL is
deliverysql.py's).

Writers lock the alerts' rows first (repository.lock_alerts, in id order), then firings, then (through the
status-count triggers) count rows: one order for every writer, so two batches never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pricealert.alerts import deliverysql
from pricealert.alerts.models import Alert, AlertStatus, Firing
from pricealert.alerts.store import TriggerRecord
from pricealert.common.events import DeliveryStatus, utc_now

_SYNC: dict[str, Any] = {"synchronize_session": False}
# A once firing ends an active or a paused alert; a deleted or expired one keeps its status (its mail goes out).
ENDED_BY_ONCE = (AlertStatus.ACTIVE.value, AlertStatus.PAUSED.value)


def _insert(session: AsyncSession) -> Callable[..., Any]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _store_firing(session: AsyncSession, record: TriggerRecord) -> tuple[str, str | None, int | None] | None:
    """Store the firing unless it is stored; its delivery (status, error, attempts), or None when it was stored."""
    firing = {
        "firing": record.firing,
        "fired_at": record.fired_at,
        "price": record.price,
        "trade_id": record.trade_id,
        "exchange_time": record.exchange_time,
        "version": record.version,
        "paused": record.paused,
        "channel_ids": record.channel_ids,
    }
    inserted = await session.execute(
        _insert(session)(Firing)
        .values(
            trigger_id=record.trigger_id,
            alert_id=record.alert_id,
            delivery_status=DeliveryStatus.PENDING.value,
            **firing,
        )
        .on_conflict_do_nothing(index_elements=["trigger_id"])
        .returning(Firing.id)
    )
    if inserted.first() is not None:
        return DeliveryStatus.PENDING.value, None, None
    # The row exists: a redelivered trigger (nothing to do), or a result that came first (its outcome is kept; with
    # the trigger's channels known, its log's aggregate is).
    filled = await session.execute(
        update(Firing)
        .where(Firing.trigger_id == record.trigger_id, Firing.fired_at.is_(None))
        .values(**firing)
        .returning(Firing.delivery_status, Firing.delivery_error, Firing.delivery_attempts),
        execution_options=_SYNC,
    )
    row = filled.first()
    if row is None:
        return None
    outcome = await deliverysql.firing_outcome(session, record.trigger_id, record.channel_ids)
    if outcome.attempts is None:  # no attempt in the log: an outcome stored before it (migration 0007) stays
        return row[0] or DeliveryStatus.PENDING.value, row[1], row[2]
    delivery = {
        "delivery_status": outcome.status,
        "delivery_error": outcome.error,
        "delivery_attempts": outcome.attempts,
    }
    await session.execute(
        update(Firing).where(Firing.trigger_id == record.trigger_id).values(**delivery), execution_options=_SYNC
    )
    return outcome.status, outcome.error, outcome.attempts


async def _paused_reason(session: AsyncSession, record: TriggerRecord) -> str:
    """Why the evaluator paused the alert: the firings of its hour reached the limit (the trigger's count, else the
    firings stored within the hour up to this one)."""
    fired = record.hour_firings
    if fired is None:
        since = record.fired_at - timedelta(hours=1)
        stmt = (
            select(func.count()).select_from(Firing).where(Firing.alert_id == record.alert_id, Firing.fired_at > since)
        )
        fired = int((await session.execute(stmt)).scalar_one())
    return f"fired {fired} times within an hour; resume it to go on"


async def record_trigger(session: AsyncSession, record: TriggerRecord) -> bool:
    """Store the firing (once per trigger id) and count it on its alert. True if it stored this firing.

    A once firing is the alert's last: a second once firing of the alert (another trigger id) is not stored.
    """
    found = (
        await session.execute(
            select(Alert.status, Alert.triggered_at, Alert.last_fired_at, Alert.version).where(
                Alert.id == record.alert_id
            )
        )
    ).first()
    if found is None:
        return False
    status, triggered_at, last_fired_at, version = found
    if record.once and triggered_at is not None:
        return False
    delivery = await _store_firing(session, record)
    if delivery is None:
        return False
    values: dict[str, Any] = {"firing_count": Alert.firing_count + 1, "updated_at": utc_now()}
    if last_fired_at is None or record.fired_at >= last_fired_at:
        values.update(
            last_fired_at=record.fired_at,
            trigger_id=record.trigger_id,
            delivery_status=delivery[0],
            delivery_error=delivery[1],
            delivery_attempts=delivery[2],
        )
    if record.once:
        values.update(
            triggered_at=record.fired_at, triggered_price=record.price, triggered_exchange_time=record.exchange_time
        )
        if status in ENDED_BY_ONCE:
            values["status"] = AlertStatus.TRIGGERED.value
    elif record.paused and status == AlertStatus.ACTIVE.value and record.version == version:
        # A newer version (a PATCH the evaluator applied after this firing) put the alert back in the index.
        values.update(status=AlertStatus.PAUSED.value, paused_reason=await _paused_reason(session, record))
    await session.execute(update(Alert).where(Alert.id == record.alert_id).values(**values), execution_options=_SYNC)
    return True


async def list_firings(session: AsyncSession, alert_id: str, *, offset: int, limit: int) -> tuple[list[Firing], int]:
    """One page of the alert's firings, newest first, and how many there are (rows of early results excluded)."""
    where = (Firing.alert_id == alert_id, Firing.fired_at.is_not(None))
    total = int((await session.execute(select(func.count()).select_from(Firing).where(*where))).scalar_one())
    if offset >= total:
        return [], total
    stmt = select(Firing).where(*where).order_by(Firing.firing.desc(), Firing.id.desc()).offset(offset).limit(limit)
    return list((await session.execute(stmt)).scalars().all()), total
