"""Ingest follows alert events and triggers: subscribes, publishes ticks, unsubscribes, survives restarts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ingest_testkit import Ingest, emit_alert, emit_trigger, read_ticks, shard
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType, Tick
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.subscriptions import AlertState, Change
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]


async def test_created_alert_subscribes_and_trades_become_ticks(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await eventually(lambda: exchange.subscriptions() == {"btcusdt@trade"}, within=2.0, what="subscribed")
    trade_id = await exchange.play_trade("BTCUSDT", "70123.45", trade_time=1_700_000_000_123)
    ticks = await eventually(lambda: read_ticks(redis), what="tick published")
    (tick,) = ticks
    assert tick.symbol == "BTCUSDT" and tick.price == Decimal("70123.45") and tick.trade_id == trade_id
    assert tick.exchange_time == 1_700_000_000_123 and tick.received_at > 1_700_000_000_000
    entries = await redis.xrange(Tick.stream_of(shard("BTCUSDT")))
    assert entries[0][1][b"price"] == b"70123.45000000"


async def test_symbol_is_unsubscribed_when_its_last_alert_goes(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    first = await emit_alert(redis, AlertEventType.CREATED, "ethusdt")
    second = await emit_alert(redis, AlertEventType.CREATED, "ETHUSDT")
    await emit_alert(redis, AlertEventType.CREATED, "SOLUSDT")
    await eventually(lambda: exchange.subscriptions() == {"ethusdt@trade", "solusdt@trade"}, what="subscribed")
    await emit_alert(redis, AlertEventType.DELETED, "ETHUSDT", first)
    await eventually(lambda: ingest.service.sync.synced > 3)
    assert "ethusdt@trade" in exchange.subscriptions()
    await emit_alert(redis, AlertEventType.EXPIRED, "ETHUSDT", second)
    await eventually(lambda: exchange.subscriptions() == {"solusdt@trade"}, what="unsubscribed")
    assert await redis.smembers(names.ingest_symbols_key(shard("SOLUSDT"))) == {b"SOLUSDT"}
    assert await ingest.service.registry.symbols() == {"SOLUSDT"}


async def test_trigger_unsubscribes_a_fired_alert(redis: Redis, exchange: FakeExchange, start_ingest: Start) -> None:
    start_ingest()
    alert_id = await emit_alert(redis, AlertEventType.CREATED, "BNBUSDT")
    await eventually(lambda: exchange.subscriptions() == {"bnbusdt@trade"}, what="subscribed")
    await emit_trigger(redis, alert_id, "BNBUSDT")
    await eventually(lambda: not exchange.subscriptions(), what="unsubscribed")
    assert await redis.scard(names.ingest_symbol_key(shard("BNBUSDT"), "BNBUSDT")) == 0


async def test_late_created_event_does_not_revive_a_fired_alert(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    await emit_trigger(redis, "a-1", "XRPUSDT")
    await emit_alert(redis, AlertEventType.CREATED, "XRPUSDT", "a-1")
    await emit_alert(redis, AlertEventType.CREATED, "ADAUSDT")
    await eventually(lambda: exchange.subscriptions() == {"adausdt@trade"}, what="subscribed")
    await eventually(lambda: ingest.service.sync.synced > 3)
    assert exchange.subscriptions() == {"adausdt@trade"}


async def test_redelivered_events_are_idempotent(redis: Redis, exchange: FakeExchange, start_ingest: Start) -> None:
    ingest = start_ingest()
    registry = ingest.service.registry
    await registry.apply(
        [
            Change(AlertState.ACTIVE, "a", "BTCUSDT"),
            Change(AlertState.ACTIVE, "a", "BTCUSDT"),
            Change(AlertState.ACTIVE, "b", "BTCUSDT"),
        ]
    )
    await registry.apply([Change(AlertState.GONE, "a", "BTCUSDT"), Change(AlertState.GONE, "a", "BTCUSDT")])
    assert await registry.symbols() == {"BTCUSDT"}
    await registry.apply([Change(AlertState.GONE, "b", "BTCUSDT")])
    assert await registry.symbols() == set()


async def test_restart_rebuilds_subscriptions_from_redis(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    first = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await emit_alert(redis, AlertEventType.CREATED, "ETHUSDT")
    await eventually(lambda: len(exchange.subscriptions()) == 2, what="subscribed")
    await first.stop()
    await eventually(lambda: not exchange.open_sessions(), what="first ingest disconnected")
    # An event that arrives while ingest is down is consumed after the restart.
    await emit_alert(redis, AlertEventType.CREATED, "SOLUSDT")
    start_ingest()
    await eventually(
        lambda: exchange.subscriptions() == {"btcusdt@trade", "ethusdt@trade", "solusdt@trade"},
        what="resubscribed after restart",
    )
    await exchange.play_trade("SOLUSDT", "150.5")
    await eventually(lambda: read_ticks(redis), what="tick after restart")
