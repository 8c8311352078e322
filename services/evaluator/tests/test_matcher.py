"""Conditions, exactly-once emission and lifecycle rules of the index and the evaluation script."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from evaluator_testkit import SHARDS, ShardMatchers, alert_event, fired_alert_ids, ticks_on_stream, triggers
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType, Trigger, now_ms, utc_now
from pricealert.common.shards import shard_of
from pricealert.evaluator.index import AlertIndex


async def test_above_fires_at_or_above_target_and_only_once(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("a1", "above", "100"))
    await index.apply(alert_event("a2", "above", "100.5"))
    ticks = await ticks_on_stream(redis, ["99.99", "100", "100.4"])
    assert await matcher.evaluate(ticks) == 1
    assert await matcher.evaluate(ticks) == 0  # a redelivered batch fires nothing again
    assert await fired_alert_ids(redis) == ["a1"]


async def test_below_fires_at_or_below_target(redis: Redis, index: AlertIndex, matcher: ShardMatchers) -> None:
    await index.apply(alert_event("b1", "below", "50"))
    await index.apply(alert_event("b2", "below", "49"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["51", "50.00000000"])) == 1
    assert await fired_alert_ids(redis) == ["b1"]


async def test_cross_side_is_fixed_by_first_tick_then_fires_on_the_other_side(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("up", "cross", "100"))
    await index.apply(alert_event("down", "cross", "90"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["95"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["99", "91"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["100.01", "89"])) == 2
    assert await fired_alert_ids(redis) == ["up", "down"]


async def test_cross_fires_when_the_first_tick_is_exactly_at_target(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("c", "cross", "100"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["100.00"])) == 1


async def test_cross_side_and_fire_can_happen_within_one_batch(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("c", "cross", "100"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["101", "102", "99.5"])) == 1
    [fields] = await triggers(redis)
    assert fields[b"price"] == b"99.5"


async def test_trigger_carries_everything_the_notifier_and_alerts_service_need(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("t1", "above", "100000"))
    await matcher.evaluate(await ticks_on_stream(redis, ["100012.50000000"], exchange_time=1_777_807_004_059))
    [fields] = await triggers(redis)
    trigger = Trigger.from_fields(fields)
    assert (trigger.trigger_id, trigger.alert_id, trigger.email, trigger.symbol) == (
        "t1",
        "t1",
        "u1@example.com",
        "BTCUSDT",
    )
    assert (str(trigger.target_price), str(trigger.price)) == ("100000", "100012.50000000")
    assert trigger.exchange_time == 1_777_807_004_059 and trigger.name == "alert t1"
    assert trigger.fired_at >= trigger.tick_received_at


async def test_deleted_alert_never_fires_even_if_its_create_arrives_late(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("d1", "above", "10"))
    await index.apply(alert_event("d1", "above", "10", kind=AlertEventType.DELETED))
    await index.apply(alert_event("d2", "above", "10", kind=AlertEventType.DELETED))
    await index.apply(alert_event("d2", "above", "10"))  # the create redelivered after the delete
    assert await matcher.evaluate(await ticks_on_stream(redis, ["11"])) == 0
    assert await fired_alert_ids(redis) == []


async def test_expired_alert_never_fires(redis: Redis, index: AlertIndex, matcher: ShardMatchers) -> None:
    await index.apply(alert_event("x1", "above", "10", expires_at=utc_now() - timedelta(seconds=1)))
    await index.apply(alert_event("x2", "above", "10", expires_at=utc_now() + timedelta(hours=1)))
    await index.apply(alert_event("x3", "above", "10"))
    await index.apply(alert_event("x3", "above", "10", kind=AlertEventType.EXPIRED))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["11"], exchange_time=now_ms())) == 1
    assert await fired_alert_ids(redis) == ["x2"]


async def test_an_expired_alert_in_a_walk_does_not_hide_the_reached_alerts_behind_it(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    # The walk reads 8 members a page; an expired one that it removes must not shift the next page past one.
    await index.apply(alert_event("gone", "above", "1", expires_at=utc_now() - timedelta(seconds=1)))
    for n in range(2, 11):
        await index.apply(alert_event(f"a{n:02d}", "above", str(n)))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["11"], exchange_time=now_ms())) == 9
    assert sorted(await fired_alert_ids(redis)) == [f"a{n:02d}" for n in range(2, 11)]


async def test_tick_older_than_the_alert_does_not_judge_it(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    old = await ticks_on_stream(redis, ["11"])
    await asyncio.sleep(0.005)  # indexing times are in ms: the alert's must be later than the tick's
    await index.apply(alert_event("late", "above", "10"))
    assert await matcher.evaluate(old) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["10"])) == 1


async def test_symbols_are_independent(redis: Redis, index: AlertIndex, matcher: ShardMatchers) -> None:
    await index.apply(alert_event("btc", "above", "10", symbol="BTCUSDT"))
    await index.apply(alert_event("eth", "above", "10", symbol="ETHUSDT"))
    ticks = await ticks_on_stream(redis, ["11"], symbol="ETHUSDT")
    assert await matcher.evaluate(ticks) == 1
    assert await fired_alert_ids(redis) == ["eth"]


async def test_malformed_tick_is_refused_before_it_reaches_the_script(matcher: ShardMatchers) -> None:
    from pricealert.common.consumer import Message
    from pricealert.common.events import MalformedEvent

    good = {"symbol": "BTCUSDT", "price": "1.5", "trade_id": "1", "exchange_time": "1", "received_at": "1"}
    for broken in (
        {**good, "price": "NaN"},
        {**good, "price": "1 2"},
        {**good, "symbol": "BTC USDT"},
        {k: v for k, v in good.items() if k != "trade_id"},
        {**good, "price": "0"},
    ):
        with pytest.raises(MalformedEvent):
            await matcher.evaluate([Message("1-0", broken)])


async def test_redelivered_create_of_an_active_alert_indexes_it_once(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("r1", "above", "10"))
    await index.apply(alert_event("r1", "above", "10"))
    await index.apply(alert_event("r2", "cross", "10"))
    await index.apply(alert_event("r2", "cross", "10"))
    assert await redis.zcard(names.eval_above_key(shard_of("BTCUSDT", SHARDS), "BTCUSDT")) == 1
    assert await matcher.evaluate(await ticks_on_stream(redis, ["9", "11"])) == 2
    assert await fired_alert_ids(redis) == ["r1", "r2"]


async def test_alert_names_with_tabs_and_newlines_survive_the_index(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    event = alert_event("n1", "above", "10").model_copy(update={"name": "a\tb\nc"})
    await index.apply(event)
    await matcher.evaluate(await ticks_on_stream(redis, ["10"]))
    [fields] = await triggers(redis)
    assert fields[b"name"] == b"a b c" and fields[b"email"] == b"u1@example.com"


async def test_a_trigger_names_the_channels_of_its_alert(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    with_channels = alert_event("c1", "above", "100").model_copy(update={"channels": "email,9b2e"})
    assert not with_channels.is_compact()  # its channels live in its definition, not in a compact member
    await index.apply(with_channels)
    await index.apply(alert_event("c2", "above", "100"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["100"])) == 2
    fired = {t.alert_id: t for t in (Trigger.from_fields(f) for f in await triggers(redis))}
    assert fired["c1"].channels == "email,9b2e"
    assert fired["c2"].channels is None  # the account's email, as before channels
