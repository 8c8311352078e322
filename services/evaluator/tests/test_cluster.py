"""The evaluator on a 3-master Redis Cluster: its scripts keep to one slot, and symbols of every master fire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from evaluator_testkit import SHARDS, alert_event, hold_lease, publish_alert_events, tick_stream

from pricealert.common import names
from pricealert.common.consumer import Message
from pricealert.common.events import AlertEventType, Tick, Trigger, now_ms
from pricealert.common.ownership import ShardLeaseLost
from pricealert.common.publisher import publish_many
from pricealert.common.redisconn import RedisClient, connect_cluster
from pricealert.common.shards import shard_of
from pricealert.evaluator.handlers import run
from pricealert.evaluator.index import AlertIndex
from pricealert.evaluator.matcher import Matcher
from pricealert.evaluator.settings import EvaluatorSettings
from pricealert.testsupport.cluster import RedisClusterNodes
from pricealert.testsupport.polling import eventually


def symbols_on_every_master(nodes: RedisClusterNodes, each: int = 2) -> list[str]:
    """Symbols of distinct shards served by every master, `each` per master."""
    found: dict[int, list[str]] = {}
    shards: set[int] = set()
    n = 0
    while len(found) < nodes.masters or any(len(symbols) < each for symbols in found.values()):
        symbol, n = f"C{n:03d}USDT", n + 1
        shard = shard_of(symbol, SHARDS)
        port = nodes.master_of(names.eval_done_key(shard)).port
        if shard not in shards and len(found.setdefault(port, [])) < each:
            found[port].append(symbol)
            shards.add(shard)
    return [symbol for symbols in found.values() for symbol in symbols]


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    client = connect_cluster(redis_cluster_url)
    yield client
    await client.aclose()


async def triggered(redis: RedisClient, symbols: list[str]) -> set[str]:
    """Alert ids of the triggers on the symbols' shards."""
    found = set()
    for shard in {shard_of(symbol, SHARDS) for symbol in symbols}:
        found |= {fields[b"alert_id"].decode() for _, fields in await redis.xrange(Trigger.stream_of(shard))}
    return found


def tick(symbol: str, price: str, n: int) -> Tick:
    return Tick(symbol=symbol, price=Decimal(price), trade_id=n, exchange_time=now_ms(), received_at=now_ms())


@pytest.mark.timeout(120)
async def test_index_and_evaluation_on_every_master(
    cluster: RedisClient, redis_cluster_nodes: RedisClusterNodes
) -> None:
    symbols = symbols_on_every_master(redis_cluster_nodes)
    index = AlertIndex(cluster, SHARDS)
    for symbol in symbols:
        await index.apply(alert_event(f"up-{symbol}", "above", "100", symbol=symbol))
        await index.apply(alert_event(f"down-{symbol}", "below", "50", symbol=symbol))
        await index.apply(alert_event(f"cross-{symbol}", "cross", "75", symbol=symbol))
        await index.apply(alert_event(f"gone-{symbol}", "above", "90", symbol=symbol))
        await index.apply(alert_event(f"gone-{symbol}", "above", "90", symbol=symbol, kind=AlertEventType.DELETED))
    for symbol in symbols:
        shard = shard_of(symbol, SHARDS)
        await cluster.xgroup_create(tick_stream(symbol), names.GROUP_EVALUATOR, id="0", mkstream=True)
        await publish_many(cluster, tick_stream(symbol), [tick(symbol, p, n) for n, p in enumerate(["70", "101"])])
        reply = await cluster.xreadgroup(names.GROUP_EVALUATOR, "ev", {tick_stream(symbol): ">"})
        messages = [Message(i.decode(), f) for i, f in reply[0][1]]
        stale = Matcher(
            cluster, shard=shard, count=SHARDS, owner_key=await hold_lease(cluster, shard, "other"), token="me"
        )
        with pytest.raises(ShardLeaseLost):
            await stale.fire(messages)
        owner_key = await hold_lease(cluster, shard, "me")
        matcher = Matcher(cluster, shard=shard, count=SHARDS, owner_key=owner_key, token="me")
        assert {f.alert_id for f in await matcher.fire(messages)} == {f"up-{symbol}", f"cross-{symbol}"}
        assert await matcher.fire(messages) == []  # redelivered: nothing fires twice
        [group] = await cluster.xinfo_groups(tick_stream(symbol))
        assert group["pending"] == 0
    assert await triggered(cluster, symbols) == {f"{kind}-{s}" for s in symbols for kind in ("up", "cross")}
    assert await index.apply(alert_event(f"gone-{symbols[0]}", "above", "90", symbol=symbols[0])) is False


@pytest.mark.timeout(120)
async def test_the_evaluator_runs_on_a_cluster(
    cluster: RedisClient, redis_cluster_url: str, redis_cluster_nodes: RedisClusterNodes
) -> None:
    symbols = symbols_on_every_master(redis_cluster_nodes)
    settings = EvaluatorSettings(
        redis_cluster_url=redis_cluster_url, consumer_name="ev-cluster", EVALUATOR_TICK_BATCH_SIZE=50
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run(cluster, settings, stop))
    try:

        async def groups_ready() -> bool:
            for symbol in symbols:
                if not await cluster.exists(tick_stream(symbol)) or not await cluster.xinfo_groups(tick_stream(symbol)):
                    return False
            return True

        await eventually(groups_ready, alive=task, within=30)
        await publish_alert_events(cluster, [alert_event(f"a-{s}", "above", "100", symbol=s) for s in symbols])

        async def indexed() -> bool:
            keys = [names.eval_above_key(shard_of(s, SHARDS), s) for s in symbols]
            return all([await cluster.zcard(key) == 1 for key in keys])

        await eventually(indexed, alive=task, within=30)
        for symbol in symbols:
            await publish_many(cluster, tick_stream(symbol), [tick(symbol, p, n) for n, p in enumerate(["99", "100"])])

        async def fired() -> bool:
            return await triggered(cluster, symbols) == {f"a-{s}" for s in symbols}

        await eventually(fired, alive=task, within=30)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 20)
