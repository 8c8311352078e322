"""alert-events: what the alerts service's producer writes (the outbox, on Postgres through its SQL function, and
the relay) reads back as the AlertEvent it staged, on its symbol's shard's stream, on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from contracts_testkit import assert_written_as, entries
from redis.asyncio import Redis

from pricealert.alerts.auth import User
from pricealert.alerts.deps import AppState
from pricealert.alerts.maintenance import prepare
from pricealert.alerts.outbox import OutboxRelay
from pricealert.alerts.schemas import AlertCreate, AlertPatch
from pricealert.alerts.settings import AlertsSettings
from pricealert.alerts.state import build_state, close_state
from pricealert.common import names
from pricealert.common.events import (
    AlertEvent,
    AlertEventType,
    CatalogSnapshot,
    CatalogSymbol,
    Condition,
    Frequency,
)
from pricealert.common.publisher import publish
from pricealert.common.shards import shard_of

USER = User(id="user-1", email="owner@example.com")
SYMBOL = CatalogSymbol(
    symbol="ETHBTC", min_price=Decimal("0.00001"), max_price=Decimal("922327"), tick_size=Decimal("0.00001")
)


@pytest.fixture
async def state(database_url: str, redis_url: str, redis: Redis) -> AsyncIterator[AppState]:
    """The alerts service's store and service on a fresh database (SQLite, then Postgres), the catalog published."""
    await publish(redis, names.SYMBOL_CATALOG, CatalogSnapshot.build([SYMBOL], datetime.now(UTC)))
    settings = AlertsSettings(database_url=database_url, redis_url=redis_url, catalog_min_refresh_s=0)
    app_state = build_state(settings)
    await prepare(app_state)
    try:
        yield app_state
    finally:
        await close_state(app_state)


def shard_stream(state: AppState) -> str:
    """The alert-events stream of the symbol's shard."""
    return AlertEvent.stream_of(shard_of(SYMBOL.symbol, state.settings.shards))


async def stream(state: AppState, redis: Redis) -> list[AlertEvent]:
    """The shard stream's entries as AlertEvents, each written with exactly the class's fields, in order; no other
    shard's stream holds any."""
    others = [AlertEvent.stream_of(k) for k in range(state.settings.shards)]
    others.remove(shard_stream(state))
    assert [await redis.xlen(other) for other in others] == [0] * len(others)
    raw = await entries(redis, shard_stream(state))
    for fields in raw:
        assert_written_as(AlertEvent, fields)
    return [AlertEvent.from_fields(fields) for fields in raw]


async def test_each_change_reads_back_as_the_alert_event_it_staged(state: AppState, redis: Redis) -> None:
    relay = OutboxRelay(state.store, state.redis, shards=state.settings.shards)
    expires = datetime.now(UTC) + timedelta(hours=1)
    body = AlertCreate(
        symbol="ethbtc", target_price="0.05000", condition=Condition.BELOW, name="dip", expires_at=expires
    )
    alert = await state.service.create(USER, body)
    await state.service.delete(USER, alert.id)

    assert await relay.drain() == 2
    created, deleted = await stream(state, redis)

    for event, event_type in ((created, AlertEventType.CREATED), (deleted, AlertEventType.DELETED)):
        assert (event.type, event.alert_id, event.user_id, event.email) == (
            event_type,
            alert.id,
            USER.id,
            USER.email,
        )
        assert (event.symbol, event.condition, event.name) == ("ETHBTC", Condition.BELOW, "dip")
        assert str(event.target_price) == "0.05000"  # the decimal as written, through JSON and the stream
        assert event.expires_at == expires
        assert event.occurred_at.tzinfo is not None
    assert created.event_id != deleted.event_id


async def test_an_expired_alert_and_a_resync_read_back_too(state: AppState, redis: Redis) -> None:
    relay = OutboxRelay(state.store, state.redis, shards=state.settings.shards)
    kept = await state.service.create(USER, AlertCreate(symbol="ETHBTC", target_price="1"))
    soon = await state.service.create(
        USER, AlertCreate(symbol="ETHBTC", target_price="2", expires_at=datetime.now(UTC) + timedelta(seconds=1))
    )
    await relay.drain()
    await redis.delete(shard_stream(state))

    expired = await state.store.expire_due(datetime.now(UTC) + timedelta(seconds=2), 10)
    assert [a.id for a in expired] == [soon.id]
    assert await state.service.resync() == 1
    assert await relay.drain() == 2

    events = await stream(state, redis)
    assert [(e.type, e.alert_id) for e in events] == [
        (AlertEventType.EXPIRED, soon.id),
        (AlertEventType.CREATED, kept.id),
    ]
    assert events[0].expires_at == soon.expires_at


async def test_the_new_definitions_and_an_update_read_back_whole(state: AppState, redis: Redis) -> None:
    relay = OutboxRelay(state.store, state.redis, shards=state.settings.shards)
    body = AlertCreate(
        symbol="ETHBTC",
        condition=Condition.PCT_MOVE,
        percent="2.5",
        window="15m",
        frequency=Frequency.EVERY_TIME,
        message="{{symbol}} moved {{change_pct}} %",
    )
    moving = await state.service.create(USER, body)
    level = await state.service.create(USER, AlertCreate(symbol="ETHBTC", target_price="0.05", condition="above"))
    band = await state.service.create(
        USER, AlertCreate(symbol="ETHBTC", condition="exit_range", low="0.04", high="0.06")
    )
    await state.service.update(USER, moving.id, AlertPatch(percent="3", status="paused"))
    await state.service.update(USER, level.id, AlertPatch(target_price="0.055", frequency="every_time"))
    await state.service.delete(USER, band.id)

    assert await relay.drain() == 6
    events = await stream(state, redis)

    assert [(e.type, e.alert_id, e.version) for e in events] == [
        (AlertEventType.CREATED, moving.id, 1),
        (AlertEventType.CREATED, level.id, 1),
        (AlertEventType.CREATED, band.id, 1),
        (AlertEventType.UPDATED, moving.id, 2),
        (AlertEventType.UPDATED, level.id, 2),
        (AlertEventType.DELETED, band.id, 1),
    ]
    created_move, created_level, created_band, updated_move, updated_level, deleted_band = events
    assert (created_move.percent, created_move.window, created_move.target_price) == (Decimal("2.5"), "15m", None)
    assert (created_move.frequency, created_move.cooldown_s, created_move.message) == (
        Frequency.EVERY_TIME,
        300,
        "{{symbol}} moved {{change_pct}} %",
    )
    assert created_level.is_compact() and not created_move.is_compact()
    assert (created_band.low, created_band.high) == (Decimal("0.04"), Decimal("0.06"))
    assert (updated_move.percent, updated_move.paused, updated_move.previous_target_price) == (Decimal("3"), True, None)
    assert updated_move.message == created_move.message and updated_move.window == "15m"
    assert (updated_level.target_price, updated_level.previous_target_price) == (Decimal("0.055"), Decimal("0.05"))
    assert (updated_level.frequency, updated_level.cooldown_s, updated_level.paused) == (
        Frequency.EVERY_TIME,
        300,
        False,
    )
    assert (deleted_band.low, deleted_band.high, deleted_band.condition) == (
        Decimal("0.04"),
        Decimal("0.06"),
        Condition.EXIT_RANGE,
    )
