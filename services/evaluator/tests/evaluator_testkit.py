"""Builders for evaluator tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Tick, now_ms, utc_now


def alert_event(
    alert_id: str,
    condition: str,
    target: str,
    *,
    symbol: str = "BTCUSDT",
    kind: AlertEventType = AlertEventType.CREATED,
    expires_at: datetime | None = None,
) -> AlertEvent:
    """An alert event as the alerts service publishes it."""
    return AlertEvent(
        type=kind,
        event_id=f"e-{alert_id}-{kind.value}",
        alert_id=alert_id,
        user_id="u1",
        email="u1@example.com",
        symbol=symbol,
        condition=Condition(condition),
        target_price=Decimal(target),
        name=f"alert {alert_id}",
        expires_at=expires_at,
        occurred_at=utc_now(),
    )


async def ticks_on_stream(
    redis: Redis, prices: list[str], *, symbol: str = "BTCUSDT", exchange_time: int | None = None
) -> list[Message]:
    """Append ticks to the real ticks stream (their ids carry Redis's clock) and return them as entries."""
    out = []
    for n, price in enumerate(prices):
        tick = Tick(
            symbol=symbol,
            price=Decimal(price),
            trade_id=n + 1,
            exchange_time=exchange_time or now_ms(),
            received_at=now_ms(),
        )
        entry_id = await redis.xadd(names.TICKS, tick.to_fields())  # type: ignore[arg-type]
        out.append(Message(entry_id.decode(), tick.to_fields()))
    return out


async def fired_alert_ids(redis: Redis) -> list[str]:
    """Alert ids of every trigger on the stream, in order."""
    return [fields[b"alert_id"].decode() for _, fields in await redis.xrange(names.TRIGGERS)]
