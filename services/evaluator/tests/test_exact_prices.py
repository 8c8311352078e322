"""Targets and trade prices are compared as the decimals they are, even where doubles cannot tell them apart."""

from __future__ import annotations

import asyncio

import pytest
from evaluator_testkit import SHARDS, ShardMatchers, alert_event, fired_alert_ids, ticks_on_stream, triggers
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType
from pricealert.common.shards import shard_of
from pricealert.evaluator.index import AlertIndex, member_alert_id

# 65000 and 65000 ± 1e-14 are the same double (a double's step at 65000 is about 7e-12).
JUST_ABOVE, JUST_BELOW = "65000.00000000000001", "64999.99999999999999"
assert float(JUST_ABOVE) == float("65000") == float(JUST_BELOW)
BTC_SHARD = shard_of("BTCUSDT", SHARDS)


async def trigger_prices(redis: Redis) -> dict[str, str]:
    """Each fired alert's id and the price that fired it."""
    return {fields[b"alert_id"].decode(): fields[b"price"].decode() for fields in await triggers(redis)}


@pytest.mark.parametrize(
    ("price", "fires"),
    [
        ("65000", False),
        ("65000.00000000", False),
        ("64999.99999999999999", False),
        (JUST_ABOVE, True),
        ("65000.000000000000010", True),
        ("65000.00000000000002", True),
        ("65000.0000001", True),
    ],
)
async def test_above_compares_exactly(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers, price: str, fires: bool
) -> None:
    await index.apply(alert_event("a", "above", JUST_ABOVE))
    assert await matcher.evaluate(await ticks_on_stream(redis, [price])) == int(fires)


@pytest.mark.parametrize(
    ("price", "fires"),
    [
        ("65000", False),
        ("65000.00000000", False),
        ("65000.00000000000001", False),
        (JUST_BELOW, True),
        ("64999.999999999999990", True),
        ("64999.99999999999998", True),
        ("64999.9999999", True),
    ],
)
async def test_below_compares_exactly(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers, price: str, fires: bool
) -> None:
    await index.apply(alert_event("b", "below", JUST_BELOW))
    assert await matcher.evaluate(await ticks_on_stream(redis, [price])) == int(fires)


async def test_an_alert_at_the_boundary_stays_until_a_price_reaches_it(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("a", "above", JUST_ABOVE))
    await index.apply(alert_event("b", "below", JUST_BELOW))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000", "65000.0", "65000"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000", JUST_ABOVE, JUST_BELOW])) == 2
    assert await trigger_prices(redis) == {"a": JUST_ABOVE, "b": JUST_BELOW}


async def test_cross_takes_its_side_from_the_exact_first_price(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    # The first trade (65000) is below one target and above the other, though all three are one double.
    await index.apply(alert_event("up", "cross", JUST_ABOVE))
    await index.apply(alert_event("down", "cross", JUST_BELOW))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000", "65000.000000000000005"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000.00000000000002"])) == 1
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_BELOW])) == 1
    assert await trigger_prices(redis) == {"up": "65000.00000000000002", "down": JUST_BELOW}


async def test_cross_fixed_far_away_fires_only_at_the_exact_target(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("up", "cross", JUST_ABOVE))
    await index.apply(alert_event("down", "cross", JUST_BELOW, symbol="ETHUSDT"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["60000"])) == 0  # "up" waits for >= its target
    assert await matcher.evaluate(await ticks_on_stream(redis, ["70000"], symbol="ETHUSDT")) == 0  # "down": <=
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000"])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000"], symbol="ETHUSDT")) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_BELOW])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_ABOVE], symbol="ETHUSDT")) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_ABOVE])) == 1
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_BELOW], symbol="ETHUSDT")) == 1
    assert await fired_alert_ids(redis) == ["up", "down"]


async def test_cross_at_exactly_the_target_fires_whatever_the_digits(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("c", "cross", JUST_ABOVE))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000.000000000000010"])) == 1


@pytest.mark.parametrize(
    ("target", "below_it", "at_it"),
    [
        ("0.100000000000000001", "0.1", "0.100000000000000001"),
        ("9007199254740993", "9007199254740992", "9007199254740993.000"),  # 2^53 + 1: no double of its own
        ("12345678901234567890.000000000000000001", "12345678901234567890", "12345678901234567890.000000000000000001"),
    ],
)
async def test_exact_at_the_ends_of_the_accepted_range(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers, target: str, below_it: str, at_it: str
) -> None:
    await index.apply(alert_event("a", "above", target))
    assert await matcher.evaluate(await ticks_on_stream(redis, [below_it])) == 0
    assert await matcher.evaluate(await ticks_on_stream(redis, [at_it])) == 1


async def members(redis: Redis, key: str) -> list[str]:
    return [m.decode() for m in await redis.zrange(key, 0, -1)]


async def test_unreached_neighbours_are_parked_in_exact_order_and_fire_when_reached(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    targets = {f"a{n}": f"65000.0000000000000{n % 3 + 1}" for n in range(20)}  # 20 > one walk's page of 8
    for alert_id, target in targets.items():
        await index.apply(alert_event(alert_id, "above", target))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000", "65000.00000000"])) == 0
    parked = await members(redis, names.eval_above_key(BTC_SHARD, "BTCUSDT"))
    assert all(m.startswith("~") for m in parked)
    assert [m.split("\t")[0] for m in parked] == sorted(f"~E{t}" for t in targets.values())
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000.00000000000002"])) == 14
    assert {fired for fired in await fired_alert_ids(redis)} == {a for a, t in targets.items() if t[-1] in "12"}
    await index.apply(alert_event("fresh", "above", "65000"))  # unparked, it sorts before the parked ones
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000"])) == 1
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000.00000000000003"])) == 6


async def test_unreached_below_neighbours_are_parked_and_fire_when_reached(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    targets = {f"b{n}": f"64999.9999999999999{n % 3 + 7}" for n in range(20)}
    for alert_id, target in targets.items():
        await index.apply(alert_event(alert_id, "below", target))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["65000", "65000"])) == 0
    assert all(m.startswith("!") for m in await members(redis, names.eval_below_key(BTC_SHARD, "BTCUSDT")))
    await index.apply(alert_event("fresh", "below", "65000"))
    assert await matcher.evaluate(await ticks_on_stream(redis, ["64999.99999999999998"])) == 14
    assert set(await fired_alert_ids(redis)) == {"fresh"} | {a for a, t in targets.items() if t[-1] in "89"}


async def test_a_parked_alert_is_deleted_and_never_indexed_twice(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("p", "above", JUST_ABOVE))
    await index.apply(alert_event("q", "below", JUST_BELOW))
    await matcher.evaluate(await ticks_on_stream(redis, ["65000"]))
    assert await index.apply(alert_event("p", "above", JUST_ABOVE)) is False  # a redelivered create
    assert await index.apply(alert_event("q", "below", JUST_BELOW)) is False
    assert await redis.zcard(names.eval_above_key(BTC_SHARD, "BTCUSDT")) == 1
    assert member_alert_id((await redis.zrange(names.eval_above_key(BTC_SHARD, "BTCUSDT"), 0, 0))[0]) == "p"
    assert await index.apply(alert_event("p", "above", JUST_ABOVE, kind=AlertEventType.DELETED)) is True
    assert await index.apply(alert_event("q", "below", JUST_BELOW, kind=AlertEventType.DELETED)) is True
    assert await matcher.evaluate(await ticks_on_stream(redis, [JUST_ABOVE, JUST_BELOW])) == 0


async def test_reached_alerts_too_new_for_a_tick_do_not_hide_older_ones(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    await index.apply(alert_event("old", "above", "100"))
    ticks = await ticks_on_stream(redis, ["100"])
    await asyncio.sleep(0.005)  # indexing times are in ms: the next ones must be later than the tick
    for n in range(20):  # nearer the price than "old", but indexed after the tick: it does not judge them
        await index.apply(alert_event(f"new{n}", "above", "99.5"))
    assert await matcher.evaluate(ticks) == 1
    assert await fired_alert_ids(redis) == ["old"]
