"""Ingest against the fake exchange misbehaving: ticks flow again, nothing is duplicated, limits are kept."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from ingest_testkit import (
    Ingest,
    emit_alert,
    emit_trigger,
    make_settings,
    max_messages_per_second,
    read_ticks,
)
from redis.asyncio import Redis

from pricealert.common.events import AlertEventType
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]


async def subscribed(exchange: FakeExchange, stream: str, sessions: int = 1) -> None:
    await eventually(lambda: len(exchange.subscribers(stream)) >= sessions, what=f"{stream} on {sessions} sessions")


async def test_dropped_connection_resubscribes_and_ticks_flow_without_duplicates(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    first = await exchange.play_trade("BTCUSDT", "1")
    await eventually(lambda: read_ticks(redis))
    assert exchange.drop_connections() == 1
    await eventually(
        lambda: len(exchange.sessions) == 2 and exchange.subscribers("btcusdt@trade"),
        within=5.0,
        what="resubscribed after the drop",
    )
    second = await exchange.play_trade("BTCUSDT", "2")
    ticks = await eventually(lambda: _ticks_when(redis, 2))
    assert [t.trade_id for t in ticks] == [first, second]


async def _ticks_when(redis: Redis, count: int) -> list[object] | None:
    ticks = await read_ticks(redis)
    return ticks if len(ticks) >= count else None


async def test_replayed_trades_are_published_once(redis: Redis, exchange: FakeExchange, start_ingest: Start) -> None:
    ingest = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    first = await exchange.play_trade("BTCUSDT", "1")
    exchange.drop_connections()
    await eventually(lambda: len(exchange.sessions) == 2 and exchange.subscribers("btcusdt@trade"))
    # What an overlapping connection (or a replaying server) delivers a second time is dropped.
    await exchange.play_trade("BTCUSDT", "1", trade_id=first)
    second = await exchange.play_trade("BTCUSDT", "2")
    await eventually(lambda: ingest.service.stats.duplicates == 1 and ingest.service.stats.published == 2)
    assert [t.trade_id for t in await read_ticks(redis)] == [first, second]


async def test_server_shutdown_makes_before_it_breaks(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "ETHUSDT")
    await subscribed(exchange, "ethusdt@trade")
    played = [await exchange.play_trade("ETHUSDT", "3000")]
    await eventually(lambda: read_ticks(redis))
    shutdown = asyncio.create_task(exchange.server_shutdown(grace_s=1.0))
    await eventually(lambda: len(exchange.sessions) == 2 and not exchange.sessions[0].open, what="rotated")
    old, new = exchange.sessions
    assert old.closed_at is not None and new.opened_at < old.closed_at and new.open
    assert "ethusdt@trade" in new.streams
    played.append(await exchange.play_trade("ETHUSDT", "3001"))
    await shutdown
    await eventually(lambda: _ticks_when(redis, 2))
    assert [t.trade_id for t in await read_ticks(redis)] == played
    assert ingest.service.stats.rotations == 1 and ingest.service.stats.disconnects == 0


async def test_connection_lifetime_rotation_is_make_before_break(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest(make_settings(exchange, redis_url, max_connection_age_s=1.0))
    await emit_alert(redis, AlertEventType.CREATED, "SOLUSDT")
    await eventually(lambda: len(exchange.sessions) >= 2 and not exchange.sessions[0].open, within=5.0, what="rotated")
    old, new = exchange.sessions[0], exchange.sessions[1]
    assert old.closed_at is not None and new.opened_at < old.closed_at
    await subscribed(exchange, "solusdt@trade")
    trade = await exchange.play_trade("SOLUSDT", "150")
    ticks = await eventually(lambda: read_ticks(redis))
    assert [t.trade_id for t in ticks] == [trade]


async def test_silent_connection_is_replaced_by_the_watchdog(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest(make_settings(exchange, redis_url, watchdog_s=0.5))
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    exchange.go_silent()
    await eventually(lambda: len(exchange.sessions) >= 2, within=5.0, what="a replacement connection")
    exchange.go_silent(False)
    await subscribed(exchange, "btcusdt@trade")
    trade = await exchange.play_trade("BTCUSDT", "5")
    ticks = await eventually(lambda: read_ticks(redis))
    assert [t.trade_id for t in ticks] == [trade]
    assert ingest.service.stats.watchdog_reconnects >= 1


async def test_malformed_frames_are_counted_and_skipped(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    exchange.send_garbage()
    trade = await exchange.play_trade("BTCUSDT", "7")
    ticks = await eventually(lambda: read_ticks(redis))
    assert [t.trade_id for t in ticks] == [trade]
    assert ingest.service.stats.malformed >= 5
    assert len(exchange.sessions) == 1 and exchange.sessions[0].open


async def test_streams_are_sharded_under_the_cap_and_shards_retire(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest(make_settings(exchange, redis_url, max_streams_per_connection=2))
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]
    alerts = {s: await emit_alert(redis, AlertEventType.CREATED, s) for s in symbols}
    wanted = {f"{s.lower()}@trade" for s in symbols}
    await eventually(lambda: exchange.subscriptions() == wanted, what="all subscribed")
    assert all(len(s.streams) <= 2 for s in exchange.open_sessions())
    assert len(exchange.open_sessions()) == 3
    for symbol in symbols[1:]:
        await emit_alert(redis, AlertEventType.DELETED, symbol, alerts[symbol])
    await eventually(
        lambda: exchange.subscriptions() == {"btcusdt@trade"} and len(exchange.open_sessions()) <= 2,
        what="unsubscribed and retired",
    )
    assert all(s.close_code != 1008 for s in exchange.sessions)


async def test_control_messages_stay_under_five_per_second(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest(make_settings(exchange, redis_url, subscribe_batch_size=1, control_messages_per_s=4.5))
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT"]
    for symbol in symbols:
        await emit_alert(redis, AlertEventType.CREATED, symbol)
    await eventually(lambda: len(exchange.subscriptions()) == len(symbols), within=5.0, what="all subscribed")
    (session,) = exchange.sessions
    assert session.open and len(session.received) >= len(symbols)
    assert max_messages_per_second(session) <= 5


async def test_refused_handshakes_are_retried_with_backoff(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    exchange.refuse_connections(3, status=503)
    start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    statuses = [a.status for a in exchange.attempts]
    assert statuses[:4] == [503, 503, 503, 101]
    gaps = [b.at - a.at for a, b in zip(exchange.attempts, exchange.attempts[1:], strict=False)]
    assert gaps[2] > gaps[0] / 2  # the delays grow (jittered)


async def test_rate_limited_handshake_waits_for_retry_after(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    exchange.refuse_connections(1, status=429, retry_after_s=1)
    ingest = start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    refused, accepted = exchange.attempts[:2]
    assert (refused.status, accepted.status) == (429, 101)
    assert accepted.at - refused.at >= 0.95
    assert ingest.service.stats.connect_failures == 1


async def test_subscriptions_converge_to_the_active_alerts(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    rng = random.Random(7)
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    active: dict[str, str] = {}
    start_ingest()
    for step in range(40):
        if active and rng.random() < 0.5:
            alert_id = rng.choice(sorted(active))
            symbol = active.pop(alert_id)
            if rng.random() < 0.5:
                await emit_trigger(redis, alert_id, symbol)
            else:
                await emit_alert(redis, AlertEventType.DELETED, symbol, alert_id)
        else:
            symbol = rng.choice(symbols)
            active[await emit_alert(redis, AlertEventType.CREATED, symbol, f"a{step}")] = symbol
    expected = {f"{s.lower()}@trade" for s in active.values()}
    await eventually(lambda: exchange.subscriptions() == expected, what="converged")
    (session,) = exchange.open_sessions()
    assert list(session.streams) == [s for s in session.streams if s in expected]
    assert session.close_code is None


async def test_geo_blocked_handshake_is_retried_slowly(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    exchange.refuse_connections(1, status=451)
    start_ingest(make_settings(exchange, redis_url, reconnect_max_delay_s=0.6))
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    refused, accepted = exchange.attempts[:2]
    assert refused.status == 451 and accepted.at - refused.at >= 0.55  # the slow lane, not the quick first retry


def test_ws_url_may_carry_a_path(redis_url: str, exchange: FakeExchange) -> None:
    for url in (exchange.ws_url, exchange.ws_url + "/", exchange.ws_url + "/ws", exchange.ws_url + "/stream"):
        assert make_settings(exchange, redis_url, binance_ws_url=url).ws_stream_url == exchange.ws_url + "/stream"


async def test_fragmented_shards_are_compacted_make_before_break(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest(make_settings(exchange, redis_url, max_streams_per_connection=2))
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"]
    alerts = {s: await emit_alert(redis, AlertEventType.CREATED, s) for s in symbols}
    await eventually(lambda: len(exchange.subscriptions()) == 6 and len(exchange.open_sessions()) == 3)
    # Leave one stream on each connection: three streams fit on two connections.
    for symbol in ("ETHUSDT", "SOLUSDT", "ADAUSDT"):
        await emit_alert(redis, AlertEventType.DELETED, symbol, alerts[symbol])
    wanted = {"btcusdt@trade", "bnbusdt@trade", "xrpusdt@trade"}
    await eventually(
        lambda: exchange.subscriptions() == wanted and len(exchange.open_sessions()) == 2,
        what="compacted onto two connections",
    )
    assert all(len(s.streams) <= 2 for s in exchange.open_sessions())
    played = [await exchange.play_trade(s, "1") for s in ("BTCUSDT", "BNBUSDT", "XRPUSDT")]
    ticks = await eventually(lambda: _ticks_when(redis, 3))
    assert sorted(t.trade_id for t in ticks) == sorted(played)


async def test_server_pings_are_answered_and_the_connection_lives_on(
    redis: Redis, redis_url: str, start_ingest: Start
) -> None:
    # The fake pings often and drops a client that does not pong in time: ingest must keep its one connection.
    async with FakeExchange(ping_interval=0.2, ping_timeout=0.5) as fake:
        start_ingest(make_settings(fake, redis_url))
        await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
        await subscribed(fake, "btcusdt@trade")
        await asyncio.sleep(2.0)  # ten ping rounds
        trade = await fake.play_trade("BTCUSDT", "1")
        ticks = await eventually(lambda: read_ticks(redis))
        assert [t.trade_id for t in ticks] == [trade]
        assert len(fake.sessions) == 1 and fake.sessions[0].closed_at is None


async def test_slow_sends_still_deliver_every_trade_once(
    redis: Redis, exchange: FakeExchange, start_ingest: Start
) -> None:
    start_ingest()
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT")
    await subscribed(exchange, "btcusdt@trade")
    exchange.slow_down(0.05)
    trades = [await exchange.play_trade("BTCUSDT", str(n + 1)) for n in range(20)]
    ticks = await eventually(lambda: _ticks_when(redis, 20), within=10.0)
    assert [t.trade_id for t in ticks] == trades
    assert len(exchange.sessions) == 1, "a slow but live connection is not replaced"
