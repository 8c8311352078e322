"""A shard's evaluation runs only for its lease holder; tombstones live in the shard's sorted set, trimmed when due."""

from __future__ import annotations

import pytest
from evaluator_testkit import (
    SHARDS,
    ShardMatchers,
    alert_event,
    fired_alert_ids,
    hold_lease,
    tick_stream,
    ticks_on_stream,
)
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import AlertEventType, MalformedEvent, now_ms
from pricealert.common.ownership import ShardLeaseLost
from pricealert.common.shards import shard_of
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher

BTC = shard_of("BTCUSDT", SHARDS)


async def pending(redis: Redis, stream: str) -> int:
    groups = await redis.xinfo_groups(stream)
    return int(next(g for g in groups if g["name"] == names.GROUP_EVALUATOR.encode())["pending"])


async def test_a_stale_owner_is_refused_and_writes_nothing(redis: Redis, index: AlertIndex) -> None:
    await index.apply(alert_event("a1", "above", "100"))
    owner_key = await hold_lease(redis, BTC, "old-owner")
    stale = Matcher(redis, shard=BTC, count=SHARDS, owner_key=owner_key, token="old-owner")
    await redis.xgroup_create(tick_stream("BTCUSDT"), names.GROUP_EVALUATOR, id="0", mkstream=True)
    ticks = await ticks_on_stream(redis, ["101"])
    await redis.xreadgroup(names.GROUP_EVALUATOR, "old", {tick_stream("BTCUSDT"): ">"})
    await hold_lease(redis, BTC, "new-owner")  # the old lease lapsed and another replica took the shard
    before = await redis.zrange(names.eval_above_key(BTC, "BTCUSDT"), 0, -1)

    with pytest.raises(ShardLeaseLost):
        await stale.fire(ticks)

    assert await fired_alert_ids(redis) == []
    assert await redis.zrange(names.eval_above_key(BTC, "BTCUSDT"), 0, -1) == before
    assert await redis.zcard(names.eval_done_key(BTC)) == 0
    assert await pending(redis, tick_stream("BTCUSDT")) == 1  # not acknowledged: the new owner takes it over
    new = Matcher(redis, shard=BTC, count=SHARDS, owner_key=owner_key, token="new-owner")
    assert [f.alert_id for f in await new.fire(ticks)] == ["a1"]
    assert await pending(redis, tick_stream("BTCUSDT")) == 0


async def test_a_lapsed_lease_is_refused_too(redis: Redis, index: AlertIndex) -> None:
    await index.apply(alert_event("a1", "above", "100"))
    owner_key = await hold_lease(redis, BTC, "me")
    matcher = Matcher(redis, shard=BTC, count=SHARDS, owner_key=owner_key, token="me")
    await redis.delete(owner_key)
    with pytest.raises(ShardLeaseLost):
        await matcher.fire(await ticks_on_stream(redis, ["101"]))
    assert await fired_alert_ids(redis) == []


async def test_a_tick_of_another_shards_symbol_is_malformed_here(redis: Redis) -> None:
    other = next(s for s in ("ETHUSDT", "SOLUSDT", "XRPUSDT") if shard_of(s, SHARDS) != BTC)
    matcher = Matcher(redis, shard=BTC, count=SHARDS, owner_key=await hold_lease(redis, BTC), token="test-owner")
    tick = {"symbol": other, "price": "1.5", "trade_id": "1", "exchange_time": "1", "received_at": "1"}
    with pytest.raises(MalformedEvent, match="not of shard"):
        await matcher.fire([Message("1-0", tick)])


async def test_every_key_carries_the_shards_tag(redis: Redis, index: AlertIndex, matcher: ShardMatchers) -> None:
    await index.apply(alert_event("a1", "above", "100"))
    await index.apply(alert_event("a2", "cross", "100", symbol="ETHUSDT"))
    await index.apply(alert_event("a3", "below", "1", kind=AlertEventType.DELETED))
    await matcher.evaluate(await ticks_on_stream(redis, ["101"]))
    keys = [k.decode() for k in await redis.keys("*")]
    tagged = {k for k in keys if names.stream_shard(k) is not None}
    assert set(keys) == tagged
    assert {names.stream_shard(k) for k in keys} == {BTC, shard_of("ETHUSDT", SHARDS)}


async def test_tombstones_are_scored_by_expiry_and_expired_ones_are_trimmed(
    redis: Redis, index: AlertIndex, matcher: ShardMatchers
) -> None:
    done = names.eval_done_key(BTC)
    await redis.zadd(done, {"old": now_ms() - 1, "gone": now_ms() - 1})  # tombstones whose time is over
    assert await index.apply(alert_event("old", "above", "100")) is True  # an expired tombstone blocks nothing
    await index.apply(alert_event("d1", "above", "100", kind=AlertEventType.DELETED))
    assert set(await redis.zrange(done, 0, -1)) == {b"d1"}  # added, and the expired ones trimmed
    [(_, expiry)] = await redis.zrange(done, 0, -1, withscores=True)
    assert abs(expiry - (now_ms() + 30 * 24 * 3600 * 1000)) < 60_000
    assert await index.apply(alert_event("d1", "above", "100")) is False  # a live tombstone: a late create
    assert await matcher.evaluate(await ticks_on_stream(redis, ["100"])) == 1
    assert set(await redis.zrange(done, 0, -1)) == {b"d1", b"old"}
    assert await index.apply(alert_event("old", "above", "100")) is False  # fired: never indexed again
