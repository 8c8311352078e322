"""Hostile entries on the streams ingest reads: each ends in the dead letters, and ingest goes on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ingest_testkit import Ingest, emit_alert, emit_trigger, make_trigger, shard
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEvent, AlertEventType, Condition, Trigger
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.devstack.poison import send_hostile, wait_dead_lettered
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]


def alert_fields(symbol: str) -> dict[str, str]:
    return AlertEvent(
        type=AlertEventType.CREATED,
        event_id=uuid.uuid4().hex,
        alert_id=uuid.uuid4().hex,
        user_id="u1",
        email="u@example.com",
        symbol=symbol,
        condition=Condition.ABOVE,
        target_price=Decimal("1"),
        occurred_at=datetime.now(UTC),
    ).to_fields()


def trigger_fields(symbol: str) -> dict[str, str]:
    return make_trigger("a", symbol, "t").to_fields()


async def running(ingest: Ingest) -> bool:
    assert not ingest.task.done(), f"ingest stopped: {ingest.task.exception()!r}"
    return True


@pytest.mark.timeout(90)
async def test_hostile_alert_events_are_dead_lettered_and_subscriptions_go_on(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    sent = await send_hostile(redis, AlertEvent.stream_of(shard("BTCUSDT")), alert_fields("BTCUSDT"))
    await wait_dead_lettered(redis, sent, [names.GROUP_INGEST])
    await emit_alert(redis, AlertEventType.CREATED, "ETHUSDT")
    await eventually(lambda: exchange.subscriptions() == {"ethusdt@trade"}, what="subscribed after the poison")
    assert await running(ingest)


@pytest.mark.timeout(90)
async def test_hostile_triggers_are_dead_lettered_and_unsubscribing_goes_on(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    alert_id = await emit_alert(redis, AlertEventType.CREATED, "BNBUSDT")
    await eventually(lambda: exchange.subscriptions() == {"bnbusdt@trade"}, what="subscribed")
    sent = await send_hostile(redis, Trigger.stream_of(shard("BNBUSDT")), trigger_fields("BNBUSDT"))
    await wait_dead_lettered(redis, sent, [names.GROUP_INGEST])
    await emit_trigger(redis, alert_id, "BNBUSDT")
    await eventually(lambda: not exchange.subscriptions(), what="unsubscribed after the poison")
    assert await running(ingest)
