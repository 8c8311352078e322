"""Hostile entries on the streams the alerts service reads: each ends in the dead letters, and it goes on."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, stream_of
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import Condition, DeliveryStatus, NotificationResult, Trigger, now_ms, utc_now
from pricealert.common.publisher import publish
from pricealert.devstack.poison import send_hostile, wait_dead_lettered
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")


async def create_alert(client: httpx.AsyncClient, tokens: Tokens) -> str:
    response = await client.post(
        "/alerts",
        json={"symbol": "BTCUSDT", "target_price": "100000", "condition": "above"},
        headers=tokens.headers("u1"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def shown(client: httpx.AsyncClient, tokens: Tokens, alert_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get(f"/alerts/{alert_id}", headers=tokens.headers("u1"))).json()
    return result


def trigger_of(alert_id: str) -> Trigger:
    return Trigger(
        trigger_id=uuid.uuid4().hex,
        alert_id=alert_id,
        user_id="u1",
        email="u1@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        name=None,
        price=Decimal("100001.5"),
        trade_id=42,
        exchange_time=now_ms() - 5,
        tick_received_at=now_ms() - 3,
        fired_at=now_ms(),
    )


@pytest.mark.timeout(90)
async def test_hostile_triggers_are_dead_lettered_and_triggers_are_still_recorded(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    alert_id = await create_alert(client, tokens)
    sent = await send_hostile(redis, stream_of(Trigger, "BTCUSDT"), trigger_of(alert_id).to_fields())
    await wait_dead_lettered(redis, sent, [names.GROUP_ALERTS, names.GROUP_FEED])
    assert (await shown(client, tokens, alert_id))["status"] == "active"
    await publish(redis, stream_of(Trigger, "BTCUSDT"), trigger_of(alert_id))

    async def triggered() -> bool:
        return bool((await shown(client, tokens, alert_id))["status"] == "triggered")

    await eventually(triggered, within=15)


@pytest.mark.timeout(90)
async def test_hostile_notification_results_are_dead_lettered_and_results_are_still_recorded(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis
) -> None:
    alert_id = await create_alert(client, tokens)
    trigger = trigger_of(alert_id)
    await publish(redis, stream_of(Trigger, "BTCUSDT"), trigger)

    async def triggered() -> bool:
        return bool((await shown(client, tokens, alert_id))["status"] == "triggered")

    await eventually(triggered, within=15)
    result = NotificationResult(
        trigger_id=trigger.trigger_id, alert_id=alert_id, status=DeliveryStatus.SENT, attempts=1, occurred_at=utc_now()
    )
    sent = await send_hostile(redis, stream_of(NotificationResult, "BTCUSDT"), result.to_fields())
    await wait_dead_lettered(redis, sent, [names.GROUP_ALERTS, names.GROUP_FEED])
    assert (await shown(client, tokens, alert_id))["delivery_status"] == "pending"
    await publish(redis, stream_of(NotificationResult, "BTCUSDT"), result)

    async def delivered() -> bool:
        return bool((await shown(client, tokens, alert_id))["delivery_status"] == "sent")

    await eventually(delivered, within=15)
