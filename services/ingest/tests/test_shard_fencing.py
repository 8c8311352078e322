"""Tick appends are fenced by the shard's lease and skip trade ids already written; the scripts work on a cluster."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ingest_testkit import Ingest, emit_alert, emit_trigger, make_settings, read_shard_ticks, shard
from redis.asyncio import Redis

from pricealert.common import names
from pricealert.common.events import AlertEventType, Tick
from pricealert.common.ownership import ShardOwnership
from pricealert.common.redisconn import RedisClient
from pricealert.common.shards import shard_of
from pricealert.devstack.fakeexchange import FakeExchange
from pricealert.ingest.frames import Trade
from pricealert.ingest.handlers import IngestService
from pricealert.ingest.stats import Stats
from pricealert.ingest.subscriptions import AlertState, Change, SymbolRegistry
from pricealert.ingest.tickwriter import TickPipeline
from pricealert.testsupport.polling import eventually

Start = Callable[..., Ingest]
SHARDS = 4


def trade(symbol: str, trade_id: int) -> Trade:
    return Trade(symbol, Decimal("1.5"), trade_id, 1_700_000_000_000 + trade_id, 1_700_000_000_100 + trade_id)


async def owner(
    redis: RedisClient, consumer: str, *, take: bool = True
) -> tuple[ShardOwnership, TickPipeline, list[int]]:
    """A replica's ownership (all shards taken if `take`) and tick writer; the list collects its lost shards."""
    ownership = ShardOwnership(redis, service="ingest", consumer=consumer, count=SHARDS)
    if take:
        ownership.owned |= await ownership.try_take(SHARDS)
    lost: list[int] = []
    writer = TickPipeline(
        redis,
        Stats(),
        ownership=ownership,
        queue_size=100,
        batch_size=100,
        dedupe_window=100,
        on_lease_lost=lost.append,
    )
    return ownership, writer, lost


async def trade_ids(redis: RedisClient, symbol: str) -> list[int]:
    return [t.trade_id for t in await read_shard_ticks(redis, shard_of(symbol, SHARDS)) if t.symbol == symbol]


async def test_a_stale_owner_is_refused_and_the_new_owner_skips_what_was_written(redis: Redis) -> None:
    old, old_writer, old_lost = await owner(redis, "old")
    assert await old_writer.publish([trade("BTCUSDT", 1), trade("BTCUSDT", 2), trade("ETHUSDT", 7)]) == 3
    # The old owner stalls past its lease; a new one takes the shards.
    await redis.delete(*(old.owner_key(k) for k in range(SHARDS)))
    new, new_writer, _ = await owner(redis, "new")
    assert new.owned == set(range(SHARDS))

    assert await old_writer.publish([trade("BTCUSDT", 3), trade("ETHUSDT", 8)]) == 0
    assert sorted(old_lost) == sorted({shard_of("BTCUSDT", SHARDS), shard_of("ETHUSDT", SHARDS)})
    assert old_writer.stats.refused == 2 and old_writer.stats.published == 3

    # The new owner resubscribed and receives trades the old one wrote: only the newer ones are appended.
    batch = [trade("BTCUSDT", 2), trade("BTCUSDT", 3), trade("BTCUSDT", 3), trade("ETHUSDT", 7), trade("ETHUSDT", 9)]
    assert await new_writer.publish(batch) == 2
    assert new_writer.stats.duplicates == 3
    assert await trade_ids(redis, "BTCUSDT") == [1, 2, 3]
    assert await trade_ids(redis, "ETHUSDT") == [7, 9]
    last = await redis.hgetall(names.ingest_last_trade_key(shard_of("BTCUSDT", SHARDS)))
    assert last[b"BTCUSDT"] == b"3"


async def test_a_lease_that_lapsed_unclaimed_is_taken_again_by_the_append(redis: Redis) -> None:
    ownership, writer, lost = await owner(redis, "paused")
    btc = shard_of("BTCUSDT", SHARDS)
    # Its renewals failed (Redis unreachable) past the lease, and no other replica took the shard meanwhile.
    await redis.delete(ownership.owner_key(btc))
    assert await writer.publish([trade("BTCUSDT", 1)]) == 1
    assert lost == [] and writer.stats.refused == 0
    assert await redis.get(ownership.owner_key(btc)) == ownership.token.encode()
    assert 0 < await redis.pttl(ownership.owner_key(btc)) <= ownership.lease_ms
    assert await trade_ids(redis, "BTCUSDT") == [1]


async def test_ticks_of_a_shard_not_owned_are_not_written(redis: Redis) -> None:
    ownership, writer, _ = await owner(redis, "some", take=False)
    btc = shard_of("BTCUSDT", SHARDS)
    await redis.set(ownership.owner_key(btc), ownership.token)
    ownership.owned.add(btc)
    others = [s for s in ("ETHUSDT", "ADAUSDT", "BNBUSDT") if shard_of(s, SHARDS) != btc]
    assert await writer.publish([trade("BTCUSDT", 1), *(trade(s, 1) for s in others)]) == 1
    assert writer.stats.unowned == len(others)
    for symbol in others:
        assert await trade_ids(redis, symbol) == []


async def test_a_replica_whose_lease_was_taken_stops_publishing_and_unsubscribes(
    redis: Redis, redis_url: str, exchange: FakeExchange, start_ingest: Start
) -> None:
    ingest = start_ingest(make_settings(exchange, redis_url, shards=SHARDS))
    await emit_alert(redis, AlertEventType.CREATED, "BTCUSDT", shards=SHARDS)
    await emit_alert(redis, AlertEventType.CREATED, "ADAUSDT", shards=SHARDS)
    btc, ada = shard("BTCUSDT", SHARDS), shard("ADAUSDT", SHARDS)
    assert btc != ada
    await eventually(lambda: exchange.subscriptions() == {"btcusdt@trade", "adausdt@trade"}, what="subscribed")
    first = await exchange.play_trade("BTCUSDT", "10")
    await eventually(lambda: trade_ids(redis, "BTCUSDT"), what="first tick")
    # Another replica holds BTCUSDT's shard now (this one was paused past its lease, say).
    await redis.set(names.shard_owner_key("ingest", btc), "thief", px=60_000)
    stale = await exchange.play_trade("BTCUSDT", "11")
    await eventually(lambda: exchange.subscriptions() == {"adausdt@trade"}, what="BTCUSDT unsubscribed")
    assert ingest.service.stats.refused >= 1 or ingest.service.stats.unowned >= 1
    assert btc not in ingest.service.working_shards() and ada in ingest.service.working_shards()
    await exchange.play_trade("ADAUSDT", "0.5")
    await eventually(lambda: trade_ids(redis, "ADAUSDT"), what="the other shard still publishes")
    assert await trade_ids(redis, "BTCUSDT") == [first]
    assert stale not in await trade_ids(redis, "BTCUSDT")


async def test_registry_and_append_scripts_work_on_a_cluster(redis_cluster: RedisClient) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "ADAUSDT", "BNBUSDT", "DOGEUSDT"]
    assert len({shard_of(s, SHARDS) for s in symbols}) == SHARDS  # every shard, so several masters
    registry = SymbolRegistry(redis_cluster, shards=SHARDS, gone_ttl_s=60)
    changed = await registry.apply(
        [Change(AlertState.ACTIVE, f"a-{s}", s) for s in symbols] + [Change(AlertState.ACTIVE, "b", "BTCUSDT")]
    )
    assert changed == [True] * len(symbols) + [False]
    assert await registry.symbols() == set(symbols)
    assert await registry.apply(
        [Change(AlertState.GONE, "a-ETHUSDT", "ETHUSDT"), Change(AlertState.GONE, "a-BTCUSDT", "BTCUSDT")]
    ) == [True, False]
    assert await registry.apply([Change(AlertState.ACTIVE, "a-ETHUSDT", "ETHUSDT")]) == [
        False
    ]  # tombstoned: stays gone
    assert await registry.symbols() == set(symbols) - {"ETHUSDT"}
    assert await registry.symbols([shard_of("ETHUSDT", SHARDS)]) == set()
    assert await registry.symbols([shard_of("BNBUSDT", SHARDS)]) == {"BNBUSDT", "DOGEUSDT"}

    old, old_writer, old_lost = await owner(redis_cluster, "old")
    assert await old_writer.publish([trade(s, 5) for s in symbols]) == len(symbols)
    await redis_cluster.delete(old.owner_key(shard_of("BTCUSDT", SHARDS)))
    new, new_writer, _ = await owner(redis_cluster, "new")
    assert new.owned == {shard_of("BTCUSDT", SHARDS)}
    assert await old_writer.publish([trade(s, 6) for s in symbols]) == len(symbols) - 1
    assert old_lost == [shard_of("BTCUSDT", SHARDS)]
    assert await new_writer.publish([trade("BTCUSDT", 5), trade("BTCUSDT", 7)]) == 1
    for symbol in symbols:
        expected = [5, 7] if symbol == "BTCUSDT" else [5, 6]
        assert await trade_ids(redis_cluster, symbol) == expected
    stream = Tick.stream_of(shard_of("BTCUSDT", SHARDS))
    assert await redis_cluster.xlen(stream) == 2


async def test_batched_script_calls_survive_a_script_flush(redis: Redis) -> None:
    registry = SymbolRegistry(redis, shards=SHARDS, gone_ttl_s=60)
    assert await registry.apply(
        [Change(AlertState.ACTIVE, "a", "BTCUSDT"), Change(AlertState.ACTIVE, "b", "ETHUSDT")]
    ) == [True, True]
    await redis.script_flush()  # a restarted Redis forgets its scripts
    assert await registry.apply(
        [Change(AlertState.GONE, "a", "BTCUSDT"), Change(AlertState.ACTIVE, "c", "ADAUSDT")]
    ) == [True, True]
    assert await registry.symbols() == {"ETHUSDT", "ADAUSDT"}


async def test_a_replica_on_a_cluster_follows_alert_events_and_writes_ticks_per_shard(
    redis_cluster: RedisClient, redis_cluster_url: str, exchange: FakeExchange
) -> None:
    settings = make_settings(exchange, "redis://unused", redis_cluster_url=redis_cluster_url, shards=SHARDS)
    ingest = Ingest(IngestService(settings, redis_cluster))
    try:
        symbols = ["BTCUSDT", "ADAUSDT", "BNBUSDT"]
        for symbol in symbols:
            await emit_alert(redis_cluster, AlertEventType.CREATED, symbol, shards=SHARDS)
        streams = {f"{s.lower()}@trade" for s in symbols}
        await eventually(lambda: exchange.subscriptions() == streams, what="subscribed from every shard's events")
        played = {s: await exchange.play_trade(s, "2.5") for s in symbols}
        for symbol, trade_id in played.items():
            await eventually(lambda s=symbol: trade_ids(redis_cluster, s), what=f"{symbol}'s tick")
            assert await trade_ids(redis_cluster, symbol) == [trade_id]
        await emit_alert(redis_cluster, AlertEventType.CREATED, "ETHUSDT", shards=SHARDS)
        alert = await emit_alert(redis_cluster, AlertEventType.CREATED, "DOGEUSDT", shards=SHARDS)
        await eventually(lambda: len(exchange.subscriptions()) == 5, what="more subscribed")
        await emit_trigger(redis_cluster, alert, "DOGEUSDT", shards=SHARDS)
        await eventually(lambda: "dogeusdt@trade" not in exchange.subscriptions(), what="a fired alert unsubscribed")
    finally:
        await ingest.stop()
    assert all([await redis_cluster.get(names.shard_owner_key("ingest", k)) is None for k in range(SHARDS)])
