"""Outbox relay, trigger and notification-result consumers, expiry, resync."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, alert_events, stream_of
from fastapi import FastAPI
from redis.asyncio import Redis

from pricealert.alerts.metrics import ALERT_CHANGES
from pricealert.common import names
from pricealert.common.events import (
    AlertEventType,
    Condition,
    DeliveryStatus,
    NotificationResult,
    Trigger,
    now_ms,
)
from pricealert.common.publisher import publish
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


async def create(client: httpx.AsyncClient, tokens: Tokens, user: str = "u1", **body: Any) -> dict[str, Any]:
    payload = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above", **body}
    response = await client.post("/alerts", json=payload, headers=tokens.headers(user))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def trigger_for(alert: dict[str, Any], price: str = "100001.5", trigger_id: str | None = None) -> Trigger:
    return Trigger(
        trigger_id=trigger_id or uuid.uuid4().hex,
        alert_id=alert["id"],
        user_id="u1",
        email="u1@example.com",
        symbol=alert["symbol"],
        condition=Condition(alert["condition"]),
        target_price=Decimal(alert["target_price"]),
        name=alert["name"],
        price=Decimal(price),
        trade_id=42,
        exchange_time=now_ms() - 5,
        tick_received_at=now_ms() - 3,
        fired_at=now_ms(),
    )


async def get_alert(client: httpx.AsyncClient, tokens: Tokens, alert_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).json()
    return result


async def test_outbox_publishes_created_and_deleted(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    alert = await create(
        client, tokens, symbol="ethusdt", target_price="3000.10", name="eth", expires_at=expires.isoformat()
    )

    async def one_event() -> bool:
        return len(await alert_events(redis)) == 1

    await eventually(one_event)
    (created,) = await alert_events(redis)
    assert created.type is AlertEventType.CREATED
    assert (created.alert_id, created.user_id, created.email) == (alert["id"], "u1", "u1@example.com")
    assert (created.symbol, created.condition, created.target_price) == ("ETHUSDT", Condition.ABOVE, Decimal("3000.10"))
    assert created.name == "eth" and created.expires_at == expires
    await client.delete(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))
    await client.delete(f"/alerts/{alert['id']}", headers=tokens.headers("u1"))

    async def two_events() -> bool:
        return len(await alert_events(redis)) >= 2

    await eventually(two_events)
    events = await alert_events(redis)
    assert [e.type for e in events] == [AlertEventType.CREATED, AlertEventType.DELETED]
    assert events[1].alert_id == alert["id"] and events[1].event_id != events[0].event_id


async def test_trigger_then_notification_result(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens)
    trigger = trigger_for(alert)
    await publish(redis, stream_of(Trigger, trigger.symbol), trigger)
    await publish(redis, stream_of(Trigger, trigger.symbol), trigger)  # a redelivery changes nothing

    async def triggered() -> bool:
        return bool((await get_alert(client, tokens, alert["id"]))["status"] == "triggered")

    await eventually(triggered)
    shown = await get_alert(client, tokens, alert["id"])
    assert shown["triggered_price"] == "100001.5"
    assert shown["delivery_status"] == "pending" and shown["delivery_error"] is None
    fired = datetime.fromisoformat(shown["triggered_at"].replace("Z", "+00:00"))
    assert abs(fired.timestamp() * 1000 - trigger.fired_at) < 1
    await publish(
        redis,
        stream_of(NotificationResult, trigger.symbol),
        NotificationResult(
            trigger_id=trigger.trigger_id,
            alert_id=alert["id"],
            status=DeliveryStatus.SENT,
            attempts=1,
            occurred_at=datetime.now(UTC),
        ),
    )

    async def sent() -> bool:
        return bool((await get_alert(client, tokens, alert["id"]))["delivery_status"] == "sent")

    await eventually(sent)
    listed = (await client.get("/alerts", params={"status": "triggered"}, headers=tokens.headers("u1"))).json()
    assert [a["id"] for a in listed["items"]] == [alert["id"]]


async def test_failed_delivery_shows_the_reason(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens)
    trigger = trigger_for(alert)
    await publish(redis, stream_of(Trigger, trigger.symbol), trigger)
    await publish(
        redis,
        stream_of(NotificationResult, trigger.symbol),
        NotificationResult(
            trigger_id=trigger.trigger_id,
            alert_id=alert["id"],
            status=DeliveryStatus.FAILED,
            attempts=3,
            error="550 5.1.1 mailbox unavailable",
            occurred_at=datetime.now(UTC),
        ),
    )

    async def failed() -> bool:
        shown = await get_alert(client, tokens, alert["id"])
        return bool(shown["delivery_status"] == "failed" and shown["status"] == "triggered")

    await eventually(failed)
    assert (await get_alert(client, tokens, alert["id"]))["delivery_error"] == "550 5.1.1 mailbox unavailable"


async def test_trigger_for_a_deleted_alert_keeps_it_deleted(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    deleted = await create(client, tokens)
    control = await create(client, tokens)
    await client.delete(f"/alerts/{deleted['id']}", headers=tokens.headers("u1"))
    await publish(redis, stream_of(Trigger, deleted["symbol"]), trigger_for(deleted))
    await publish(redis, stream_of(Trigger, control["symbol"]), trigger_for(control))

    async def control_triggered() -> bool:
        return bool((await get_alert(client, tokens, control["id"]))["status"] == "triggered")

    # Entries are handled in order, so once the later one is applied the earlier one was too.
    await eventually(control_triggered)
    assert (await get_alert(client, tokens, deleted["id"]))["status"] == "deleted"


async def test_the_first_firing_is_kept_and_counted_once(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    service = app.state.alerts.service
    active, deleted = await create(client, tokens), await create(client, tokens)
    await client.delete(f"/alerts/{deleted['id']}", headers=tokens.headers("u1"))
    first = trigger_for(active, price="100001.5")
    before = ALERT_CHANGES.labels("triggered")._value.get()
    await service.record_triggers([first, trigger_for(deleted)])
    assert ALERT_CHANGES.labels("triggered")._value.get() == before + 2  # the deleted one's firing is stored too
    await service.record_triggers([first, trigger_for(active, price="99.5")])  # a redelivery, a second firing
    assert ALERT_CHANGES.labels("triggered")._value.get() == before + 2
    shown = await get_alert(client, tokens, active["id"])
    assert (shown["status"], shown["triggered_price"], shown["delivery_status"]) == ("triggered", "100001.5", "pending")
    fired = datetime.fromisoformat(shown["triggered_at"].replace("Z", "+00:00"))
    assert abs(fired.timestamp() * 1000 - first.fired_at) < 1
    gone = await get_alert(client, tokens, deleted["id"])
    assert (gone["status"], gone["triggered_price"]) == ("deleted", "100001.5")


async def test_malformed_trigger_is_dead_lettered(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens)
    triggers = stream_of(Trigger, alert["symbol"])
    await redis.xadd(triggers, {"alert_id": alert["id"], "price": "not a price"})
    absurd = {**trigger_for(alert).to_fields(), "fired_at": str(10**30)}
    await redis.xadd(triggers, absurd)  # type: ignore[arg-type]

    async def dead() -> bool:  # each, once per group that reads it: alerts and the feed writer
        return int(await redis.xlen(names.dead_letter_stream(triggers))) == 4

    await eventually(dead)
    assert (await get_alert(client, tokens, alert["id"]))["status"] == "active"


async def test_expired_alert_is_marked_and_announced(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    alert = await create(client, tokens, expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    keeper = await create(client, tokens, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())

    async def expired() -> bool:
        return bool((await get_alert(client, tokens, alert["id"]))["status"] == "expired")

    await eventually(expired, within=6)

    async def announced() -> bool:
        return any(e.type is AlertEventType.EXPIRED for e in await alert_events(redis))

    await eventually(announced)
    expired_events = [e for e in await alert_events(redis) if e.type is AlertEventType.EXPIRED]
    assert [e.alert_id for e in expired_events] == [alert["id"]]
    assert (await get_alert(client, tokens, keeper["id"]))["status"] == "active"
    # An expired alert that fires late (a race in the evaluator) stays expired.
    await publish(redis, stream_of(Trigger, alert["symbol"]), trigger_for(alert))
    await publish(redis, stream_of(Trigger, keeper["symbol"]), trigger_for(keeper))

    async def keeper_triggered() -> bool:
        return bool((await get_alert(client, tokens, keeper["id"]))["status"] == "triggered")

    await eventually(keeper_triggered)
    assert (await get_alert(client, tokens, alert["id"]))["status"] == "expired"


async def test_resync_republishes_active_alerts(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, app: FastAPI
) -> None:
    active = await create(client, tokens)
    gone = await create(client, tokens)
    await client.delete(f"/alerts/{gone['id']}", headers=tokens.headers("u1"))

    async def settled() -> bool:
        return len(await alert_events(redis)) == 3

    await eventually(settled)
    assert await app.state.alerts.service.resync() == 1

    async def resynced() -> bool:
        return len(await alert_events(redis)) == 4

    await eventually(resynced)
    last = (await alert_events(redis))[-1]
    assert (last.type, last.alert_id) == (AlertEventType.CREATED, active["id"])
