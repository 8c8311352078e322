"""The feed writer: every alert event, trigger and delivery result becomes the right FeedEvent on its user's feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alerts_testkit import Tokens, stream_of
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from pricealert.alerts.feedwriter import FEED_TTL_S, from_alert_event, from_result, from_trigger
from pricealert.common import names
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    Condition,
    DeliveryStatus,
    Frequency,
    NotificationResult,
    Trigger,
    now_ms,
)
from pricealert.common.feed import FeedEvent, FeedEventType
from pricealert.common.publisher import publish
from pricealert.testsupport.polling import eventually

pytestmark = pytest.mark.usefixtures("catalog")

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The feed does not touch the database: one backend is enough."""
    return sqlite_url


def alert_event(kind: AlertEventType, *, paused: bool = False) -> AlertEvent:
    return AlertEvent(
        type=kind,
        event_id=f"ev-{kind.value}",
        alert_id="a1",
        user_id="u1",
        email="u1@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        occurred_at=AT,
        paused=paused,
    )


def trigger(*, paused: bool = False, frequency: Frequency = Frequency.EVERY_TIME, user: str = "u1") -> Trigger:
    return Trigger(
        trigger_id="a1:3",
        alert_id="a1",
        user_id=user,
        email=f"{user}@example.com",
        symbol="BTCUSDT",
        condition=Condition.ABOVE,
        target_price=Decimal("100000"),
        frequency=frequency,
        cooldown_s=60 if frequency is not Frequency.ONCE else None,
        price=Decimal("100001.5"),
        trade_id=7,
        exchange_time=now_ms(),
        tick_received_at=now_ms(),
        fired_at=int(AT.timestamp() * 1000),
        firing=3,
        paused=paused,
    )


def result(status: DeliveryStatus, *, user: str | None = "u1", error: str | None = None) -> NotificationResult:
    return NotificationResult(
        trigger_id="a1:3",
        alert_id="a1",
        status=status,
        attempts=2,
        error=error,
        occurred_at=AT,
        user_id=user,
        channel_id="ch1",
        channel_kind="webhook",
    )


@pytest.mark.parametrize(
    ("kind", "paused", "expected", "status"),
    [
        (AlertEventType.CREATED, False, FeedEventType.CREATED, "active"),
        (AlertEventType.UPDATED, False, FeedEventType.UPDATED, "active"),
        (AlertEventType.UPDATED, True, FeedEventType.UPDATED, "paused"),
        (AlertEventType.DELETED, False, FeedEventType.DELETED, "deleted"),
        (AlertEventType.EXPIRED, False, FeedEventType.EXPIRED, "expired"),
    ],
)
def test_alert_events_become_lifecycle_entries(
    kind: AlertEventType, paused: bool, expected: FeedEventType, status: str
) -> None:
    event = from_alert_event(alert_event(kind, paused=paused))
    assert (event.type, event.status, event.source_id) == (expected, status, f"ev-{kind.value}")
    assert (event.alert_id, event.user_id, event.symbol, event.occurred_at) == ("a1", "u1", "BTCUSDT", AT)


def test_a_trigger_is_a_firing_and_a_pause_when_it_reached_the_limit() -> None:
    (fired,) = from_trigger(trigger())
    assert (fired.type, fired.status, fired.source_id, fired.trigger_id) == (
        FeedEventType.FIRED,
        "active",
        "a1:3",
        "a1:3",
    )
    assert (fired.firing, fired.price, fired.occurred_at) == (3, Decimal("100001.5"), AT)
    assert from_trigger(trigger(frequency=Frequency.ONCE))[0].status == "triggered"
    fired, paused = from_trigger(trigger(paused=True))
    assert (fired.type, paused.type) == (FeedEventType.FIRED, FeedEventType.PAUSED)
    assert fired.status == paused.status == "paused"
    assert paused.source_id == "a1:3"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (DeliveryStatus.SENT, FeedEventType.DELIVERED),
        (DeliveryStatus.FAILED, FeedEventType.FAILED),
        (DeliveryStatus.RETRYING, FeedEventType.RETRYING),
    ],
)
def test_each_result_is_a_delivery_entry(status: DeliveryStatus, expected: FeedEventType) -> None:
    event = from_result(result(status, error="HTTP 500"))
    assert event is not None
    assert (event.type, event.source_id, event.channel_id, event.attempt) == (expected, "a1:3@ch1#2", "ch1", 2)
    assert (event.status, event.error, event.trigger_id, event.user_id) == (status.value, "HTTP 500", "a1:3", "u1")


def test_a_result_without_a_user_is_not_fed() -> None:
    assert from_result(result(DeliveryStatus.SENT, user=None)) is None


async def feed_of(redis: Redis, user: str) -> list[FeedEvent]:
    return [FeedEvent.from_fields(fields) for _id, fields in await redis.xrange(names.feed_stream(user))]


async def test_the_worker_feeds_each_users_stream(client: httpx.AsyncClient, tokens: Tokens, redis: Redis) -> None:
    body: dict[str, Any] = {"symbol": "BTCUSDT", "target_price": "100000", "condition": "above"}
    created = (await client.post("/alerts", json=body, headers=tokens.headers("u1"))).json()
    entries = await eventually(lambda: feed_of(redis, "u1"), what="alert.created on u1's feed")
    assert [(e.type, e.alert_id, e.status) for e in entries] == [(FeedEventType.CREATED, created["id"], "active")]

    paused_before = REGISTRY.get_sample_value("pricealert_alerts_feed_events_total", {"type": "alert.paused"}) or 0
    await publish(redis, stream_of(Trigger, "BTCUSDT"), trigger(paused=True, user="u2"))
    await publish(redis, stream_of(NotificationResult, "BTCUSDT"), result(DeliveryStatus.RETRYING, user=None))
    await publish(redis, stream_of(NotificationResult, "BTCUSDT"), result(DeliveryStatus.RETRYING, user="u2"))

    async def u2_feed() -> list[FeedEvent] | None:
        events = await feed_of(redis, "u2")
        return events if len(events) == 3 else None

    u2 = await eventually(u2_feed, what="u2's three entries")
    assert sorted(e.type.value for e in u2) == ["alert.fired", "alert.paused", "delivery.retrying"]
    assert len(await feed_of(redis, "u1")) == 1  # nothing of u2's, and the result without a user went nowhere
    assert 0 < await redis.ttl(names.feed_stream("u2")) <= FEED_TTL_S
    assert (
        REGISTRY.get_sample_value("pricealert_alerts_feed_events_total", {"type": "alert.paused"}) == paused_before + 1
    )


def test_a_firing_price_is_canonical_in_the_entry_and_in_its_json() -> None:
    (fired,) = from_trigger(trigger().model_copy(update={"price": Decimal("64818.28000000")}))
    assert fired.to_fields()["price"] == "64818.28"
    assert fired.model_dump(mode="json")["price"] == "64818.28"
    # An entry written before prices were canonical reads canonical too (the SSE data is this JSON).
    old = {**fired.to_fields(), "price": "1.00000E+5"}
    assert FeedEvent.from_fields(old).model_dump(mode="json")["price"] == "100000"
    tiny = fired.model_copy(update={"price": Decimal("1.234E-5")})
    assert json.loads(tiny.model_dump_json())["price"] == "0.00001234"


async def test_the_worker_feeds_the_exchange_price_canonical(client: httpx.AsyncClient, redis: Redis) -> None:
    await publish(
        redis, stream_of(Trigger, "BTCUSDT"), trigger(user="u3").model_copy(update={"price": Decimal("64818.28000000")})
    )

    async def fed() -> list[Any] | None:
        return await redis.xrange(names.feed_stream("u3")) or None

    [(_id, fields)] = await eventually(fed, what="u3's firing")
    assert fields[b"price"] == b"64818.28"
